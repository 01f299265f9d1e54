"""Run the generated .gitlab-ci.yml for real with gitlab-ci-local (shell executor, on this
machine) and check it statically against GitLab's schema.

What runs, and what is substituted or recorded instead (each run is a row of the summary table):
- Jobs run on the host (`--force-shell-executor`) instead of in the `ghcr.io/astral-sh/uv`
  image: the host has uv, git and every Python the projects target.
- No `--shell-isolation`: with it, gitlab-ci-local 4.72 re-syncs the build directory from the
  git-tracked files before `after_script`, deleting the job's untracked outputs (the JUnit
  report, the model) before they are exported as artifacts. Jobs run in the fresh clone instead,
  and the artifacts are still collected from the declared `artifacts:paths`.
- `CI_PROJECT_DIR` is set to the clone: gitlab-ci-local gives jobs with `image:` the container
  path /builds/<group>/<project> even in the shell executor, so `$CI_PROJECT_DIR/...` paths
  (the uv cache) would land in /builds on this machine.
- The local DVC remote of the generated project is a directory on this machine, so the runner
  reaches it: `poe pull`/`poe push` run for real.
- `publish-release` (GitLab's release-cli image and the `release:` keyword) needs a GitLab
  server; `docker-image` needs a Docker daemon: both are recorded as not run, never as passed.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, clone, generated_from_release, render
from tests.covering import covering_variants
from tests.scenarios import SCENARIOS
from tests.variants import answer_space, effective_answer

GITLAB_CI_LOCAL = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "gitlab-ci-local"
CHECK_JSONSCHEMA = REPO_ROOT / ".venv" / "bin" / "check-jsonschema"
RUN_TIMEOUT = 1200  # seconds for one pipeline run (a loaded machine runs several at once)

GITLAB_VARIANTS = [v for v in covering_variants() if "gitlab" in v.data["ci_providers"]]


def _pick(prefer) -> object:
    return next((v for v in GITLAB_VARIANTS if prefer(v.data)), GITLAB_VARIANTS[0])


# Default-branch, tag and schedule pipelines: a variant whose local DVC remote the runner
# reaches (so `poe push` is observable), sklearn for speed.
PIPELINE_VARIANT = _pick(lambda d: d["dvc_remote"] == "local" and d["ml_framework"] == "sklearn")
# Broken changes: another variant, so the two groups of long runs land on different workers.
SCENARIO_VARIANT = _pick(lambda d: d["ml_framework"] == "sklearn" and d != PIPELINE_VARIANT.data)

SHELL_EXECUTOR = "shell executor instead of the uv image"
PUBLISH_NOT_RUN = "publish-release: not run (release-cli image and release: need a GitLab server)"
NO_DAEMON = "docker-image: not run (no Docker daemon)"
# Predefined variables the tests set, as GitLab would for the pipeline they emulate.
OVERRIDDEN = (
    "CI_PROJECT_DIR",
    "CI_DEFAULT_BRANCH",
    "CI_COMMIT_BRANCH",
    "CI_COMMIT_REF_NAME",
    "CI_COMMIT_TAG",
    "CI_PIPELINE_SOURCE",
)


def _deploys(variant) -> bool:
    return effective_answer(variant.data, "deploy_target") != "none"


def _param(variant, *extra):
    return pytest.param(
        variant,
        *extra,
        marks=pytest.mark.xdist_group(variant.id),
        id="-".join([variant.id, *extra]),
    )


@pytest.fixture(scope="module")
def gitlab_ci_local() -> Path:
    if not os.access(GITLAB_CI_LOCAL, os.X_OK):
        pytest.fail(f"{GITLAB_CI_LOCAL} is missing: run scripts/install-ci-tools")
    return GITLAB_CI_LOCAL


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _pipeline_args(variables: dict[str, str], unset: tuple[str, ...]) -> list[str]:
    args = ["--force-shell-executor", "--no-color", "--max-job-name-padding", "0"]
    for name, value in variables.items():
        args += ["--variable", f"{name}={value}"]
    for name in unset:
        args += ["--unset-variable", name]
    return [*args, "--ignore-predefined-vars", ",".join(OVERRIDDEN)]


def _variables(project: Path, **pipeline: str) -> dict[str, str]:
    return {"CI_PROJECT_DIR": str(project), "CI_DEFAULT_BRANCH": "main", **pipeline}


def selected_jobs(
    tool: Path, project: Path, env: dict, variables: dict, unset: tuple[str, ...] = ()
) -> set[str]:
    """Jobs the pipeline's rules select for these variables (no job runs)."""
    result = subprocess.run(
        [
            str(tool),
            "--list-json",
            "--json-schema-validation=false",
            *_pipeline_args(variables, unset),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listing = json.loads(result.stdout[result.stdout.index("[") :])
    return {job["name"] for job in listing if job["when"] != "never"}


def run_pipeline(
    tool: Path,
    project: Path,
    jobs: list[str],
    env: dict,
    variables: dict,
    unset: tuple[str, ...] = (),
) -> tuple[int, str]:
    """Run jobs (all the pipeline selects when jobs is empty) with cwd = the clone, so
    gitlab-ci-local reads the project's own .gitlab-ci.yml. Returns (exit code, log)."""
    result = subprocess.run(
        [str(tool), *jobs, *_pipeline_args(variables, unset)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    (project.parent / f"gitlab-ci-local-{'-'.join(jobs) or 'pipeline'}.log").write_text(
        result.stdout
    )
    return result.returncode, result.stdout


def _tail(log: str, lines: int = 60) -> str:
    return "\n".join(log.splitlines()[-lines:])


def _ran_and_passed(log: str, job: str) -> bool:
    return re.search(rf"^\s*PASS\s+{re.escape(job)}\s*$", log, re.MULTILINE) is not None


def _junit_ok(path: Path) -> None:
    assert path.is_file(), f"no JUnit report at {path}"
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = sum(int(s.get("tests", 0)) for s in suites)
    bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    assert tests > 0 and bad == 0, f"{path}: {tests} tests, {bad} failures or errors"


@pytest.fixture
def job_env(offline_uv_env) -> dict[str, str]:
    return {**os.environ, **offline_uv_env}


def docker_daemon_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_docker_image_job(tool, project, env, variables) -> tuple[list[str], list[str], str]:
    """The docker-image job, only against a reachable daemon with a docker client on PATH:
    its before_script installs docker.io with apt when the client is missing, which in the
    shell executor would modify this machine. Returns (jobs run, recorded, failure or "")."""
    if not docker_daemon_available():
        return [], [NO_DAEMON], ""
    assert shutil.which("docker"), "the docker-image job would apt-get install docker.io here"
    # The dind service is a container; the shell executor talks to the daemon of this machine.
    overrides = {
        name: env[name]
        for name in ("DOCKER_HOST", "BASE_IMAGE", "DOCKER_BUILD_FLAGS")
        if env.get(name)
    }
    if "DOCKER_HOST" not in overrides:
        overrides["DOCKER_HOST"] = "unix:///var/run/docker.sock"
    code, log = run_pipeline(tool, project, ["docker-image"], env, {**variables, **overrides})
    recorded = [f"docker-image: local daemon ({overrides['DOCKER_HOST']}) instead of docker:dind"]
    failure = "" if code == 0 and _ran_and_passed(log, "docker-image") else _tail(log)
    return ["docker-image"], recorded, failure


# --- 1. Every covering variant: the feature-branch pipeline's validate job -----------------------


@pytest.mark.parametrize("gitlab_variant", [_param(v) for v in GITLAB_VARIANTS])
def test_feature_branch_validate(
    gitlab_variant, generated_projects, tmp_path, gitlab_ci_local, job_env, record_ci_run
):
    project = clone(generated_projects(gitlab_variant), tmp_path / "clone")
    _git(project, "checkout", "--quiet", "-b", "feature/ci-check")
    variables = _variables(
        project,
        CI_COMMIT_BRANCH="feature/ci-check",
        CI_COMMIT_REF_NAME="feature/ci-check",
        CI_PIPELINE_SOURCE="push",
    )
    use_docker = gitlab_variant.data["use_docker"]
    expected = {"validate"} | ({"docker-image"} if use_docker else set())
    assert selected_jobs(gitlab_ci_local, project, job_env, variables) == expected

    code, log = run_pipeline(gitlab_ci_local, project, ["validate"], job_env, variables)
    jobs, recorded, result = ["validate"], [SHELL_EXECUTOR], "passed"
    try:
        assert code == 0 and _ran_and_passed(log, "validate"), _tail(log)
        # Poe prints each task as the command it runs (lint is pre-commit).
        for task in (
            "pre-commit run",
            "pytest",
            "dvc repro",
            "validate data/raw/dataset.csv",
            "gate",
        ):
            assert re.search(rf"Poe => .*{re.escape(task)}", log), f"poe {task} did not run"
        assert "quality gate: passed" in log
        assert not re.search(r"Poe => python -m \w+ push", log), "a branch pipeline pushed"
        _junit_ok(project / "reports" / "junit.xml")
        # ... and it is among the job's artifacts (artifacts:reports:junit points at it).
        _junit_ok(project / ".gitlab-ci-local" / "artifacts" / "validate" / "reports" / "junit.xml")
        if use_docker:
            ran, notes, failure = run_docker_image_job(gitlab_ci_local, project, job_env, variables)
            jobs += ran
            recorded += notes
            assert not failure, failure
    except AssertionError:
        result = "FAILED"
        raise
    finally:
        record_ci_run(gitlab_variant.id, "gitlab", jobs, recorded, result)


# --- 2. One variant: default-branch, tag and schedule pipelines ---------------------------------


def _remote_objects(project: Path) -> set[str]:
    """md5s of the objects in the project's local DVC remote (files/md5/ab/cdef...)."""
    url = re.search(r"^\s*url\s*=\s*(.+)$", (project / ".dvc" / "config").read_text(), re.M)
    remote = Path(url.group(1).strip()) if url else None
    assert remote and remote.is_dir(), f"the DVC remote {remote} is not a directory on this runner"
    return {p.parent.name + p.name.removesuffix(".dir") for p in remote.rglob("*") if p.is_file()}


def _model_md5(project: Path) -> str:
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    (md5,) = [
        out["md5"] for out in lock["stages"]["train"]["outs"] if out["path"].startswith("models/")
    ]
    return md5


def _retrain_change(project: Path) -> None:
    """A change merged to main that retrains the model (committed without running DVC)."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    if "n_estimators" in params["train"]:
        params["train"]["n_estimators"] += 20
    else:
        params["train"]["epochs"] += 5
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git(project, "commit", "--quiet", "--no-verify", "-am", "Retrain with more estimators")


@pytest.mark.parametrize("gitlab_variant", [_param(PIPELINE_VARIANT)])
def test_default_branch_pipeline_pushes_to_dvc_remote(
    gitlab_variant, generated_projects, tmp_path, gitlab_ci_local, job_env, record_ci_run
):
    project = clone(generated_projects(gitlab_variant), tmp_path / "clone")
    _retrain_change(project)
    before = _remote_objects(project)
    variables = _variables(
        project, CI_COMMIT_BRANCH="main", CI_COMMIT_REF_NAME="main", CI_PIPELINE_SOURCE="push"
    )
    use_docker = gitlab_variant.data["use_docker"]
    deploys = _deploys(gitlab_variant)
    assert selected_jobs(gitlab_ci_local, project, job_env, variables) == {"validate"} | (
        {"docker-image"} if use_docker else set()
    ) | ({"deploy-staging"} if deploys else set())
    code, log = run_pipeline(gitlab_ci_local, project, ["validate"], job_env, variables)
    jobs, recorded, result = ["validate (main, poe push)"], [SHELL_EXECUTOR], "passed"
    try:
        assert code == 0 and _ran_and_passed(log, "validate"), _tail(log)
        assert "quality gate: passed" in log
        assert "Poe => python -m" in log and re.search(r"dvc push: .*\(remote 'storage'\)", log), (
            "poe push did not push: " + _tail(log)
        )
        received = _remote_objects(project) - before
        assert received, "the DVC remote received no objects"
        # The retrained model (dvc.lock as the job's `dvc repro` left it) is among them.
        assert _model_md5(project) in received, f"retrained model not pushed: {sorted(received)}"
        recorded.append(f"DVC remote received {len(received)} objects")
        if use_docker:
            ran, notes, failure = run_docker_image_job(gitlab_ci_local, project, job_env, variables)
            jobs += ran
            recorded += notes
            assert not failure, failure
    except AssertionError:
        result = "FAILED"
        raise
    finally:
        record_ci_run(gitlab_variant.id, "gitlab", jobs, recorded, result)


@pytest.mark.parametrize("gitlab_variant", [_param(PIPELINE_VARIANT)])
def test_tag_pipeline_packages_release(
    gitlab_variant, generated_projects, tmp_path, gitlab_ci_local, job_env, record_ci_run
):
    project = clone(generated_projects(gitlab_variant), tmp_path / "clone")
    _git(project, "tag", "v1.0.0")
    _git(project, "checkout", "--quiet", "v1.0.0")  # a tag pipeline checks out the tag
    variables = _variables(
        project, CI_COMMIT_TAG="v1.0.0", CI_COMMIT_REF_NAME="v1.0.0", CI_PIPELINE_SOURCE="push"
    )
    unset = ("CI_COMMIT_BRANCH",)  # GitLab does not set it in tag pipelines
    use_docker = gitlab_variant.data["use_docker"]
    assert selected_jobs(gitlab_ci_local, project, job_env, variables, unset) == {
        "validate",
        "package-release",
        "publish-release",
    } | ({"docker-image"} if use_docker else set()) | (
        {"deploy-production"} if _deploys(gitlab_variant) else set()
    )
    code, log = run_pipeline(
        gitlab_ci_local, project, ["validate", "package-release"], job_env, variables, unset
    )
    jobs, recorded, result = ["validate", "package-release"], [SHELL_EXECUTOR], "passed"
    try:
        assert code == 0, _tail(log)
        assert _ran_and_passed(log, "validate") and _ran_and_passed(log, "package-release"), _tail(
            log
        )
        assert "release v1.0.0:" in log
        release = (
            project / ".gitlab-ci-local" / "artifacts" / "package-release" / "dist" / "release"
        )
        card = (release / "MODEL_CARD.md").read_text()
        manifest = json.loads((release / "manifest.json").read_text())
        assert "v1.0.0" in card
        assert "v1.0.0" in json.dumps(manifest)
        if use_docker:
            ran, notes, failure = run_docker_image_job(gitlab_ci_local, project, job_env, variables)
            jobs += ran
            recorded += notes
            assert not failure, failure
        recorded.append(PUBLISH_NOT_RUN)
    except AssertionError:
        result = "FAILED"
        raise
    finally:
        record_ci_run(gitlab_variant.id, "gitlab", jobs, recorded, result)


@pytest.mark.parametrize("gitlab_variant", [_param(PIPELINE_VARIANT)])
def test_schedule_pipeline_monitors_drift_and_checks_template_updates(
    gitlab_variant,
    generated_projects,
    template_releases,
    tmp_path,
    gitlab_ci_local,
    job_env,
    record_ci_run,
):
    project = clone(generated_projects(gitlab_variant), tmp_path / "clone")
    generated_from_release(project, template_releases, "v1.0.0")  # v2.0.0 is out
    variables = _variables(
        project, CI_COMMIT_BRANCH="main", CI_COMMIT_REF_NAME="main", CI_PIPELINE_SOURCE="schedule"
    )
    scheduled = {"drift-monitoring", "template-update"}
    assert selected_jobs(gitlab_ci_local, project, job_env, variables) == scheduled
    # The whole pipeline: its rules leave only the scheduled jobs.
    code, log = run_pipeline(gitlab_ci_local, project, [], job_env, variables)
    result = "passed"
    try:
        assert code == 0 and _ran_and_passed(log, "drift-monitoring"), _tail(log)
        assert not _ran_and_passed(log, "validate")
        assert re.search(r"drift: \d+/\d+ features drifted", log), _tail(log)
        drift = (
            project
            / ".gitlab-ci-local"
            / "artifacts"
            / "drift-monitoring"
            / "reports"
            / "drift.json"
        )
        assert json.loads(drift.read_text())["drift_detected"] is False
        assert _ran_and_passed(log, "template-update"), _tail(log)
        assert "version 2.0.0 is available" in log, _tail(log)
        assert "set GITLAB_TOKEN to let CI do it" in log, _tail(log)
    except AssertionError:
        result = "FAILED"
        raise
    finally:
        record_ci_run(
            gitlab_variant.id,
            "gitlab",
            ["drift-monitoring, template-update (schedule)"],
            [SHELL_EXECUTOR],
            result,
        )


# --- 4. Broken changes turn the validate job red -------------------------------------------------


@pytest.mark.parametrize(
    ("gitlab_variant", "scenario"), [_param(SCENARIO_VARIANT, name) for name in SCENARIOS]
)
def test_broken_change_fails_validate(
    gitlab_variant, scenario, generated_projects, tmp_path, gitlab_ci_local, job_env, record_ci_run
):
    project = clone(generated_projects(gitlab_variant), tmp_path / "clone")
    _git(project, "checkout", "--quiet", "-b", "feature/broken")
    expected = SCENARIOS[scenario](project)
    variables = _variables(
        project,
        CI_COMMIT_BRANCH="feature/broken",
        CI_COMMIT_REF_NAME="feature/broken",
        CI_PIPELINE_SOURCE="push",
    )
    code, log = run_pipeline(gitlab_ci_local, project, ["validate"], job_env, variables)
    result = f"failed as expected ({scenario})"
    try:
        assert code != 0, f"validate passed despite '{scenario}':\n{_tail(log)}"
        assert re.search(r"^\s*FAIL\s+validate\s*$", log, re.MULTILINE), _tail(log)
        assert expected in log, f"'{expected}' not in the log:\n{_tail(log)}"
    except AssertionError:
        result = f"WRONG ({scenario})"
        raise
    finally:
        record_ci_run(
            gitlab_variant.id, "gitlab", [f"validate ({scenario})"], [SHELL_EXECUTOR], result
        )


# --- 5. Static: every distinct rendering against GitLab's schema ---------------------------------

# The answers .gitlab-ci.yml depends on (dvc_secrets is computed from dvc_remote).
GITLAB_CI_ANSWERS = ("dvc_remote", "use_docker", "python_version")
RESERVED = (
    "default",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
    "variables",
    "stages",
    "workflow",
    "include",
)


def test_every_distinct_gitlab_ci_rendering_matches_the_schema(template_src, tmp_path):
    renderings: dict[str, list[str]] = {}
    for combo in itertools.product(*(answer_space(name) for name in GITLAB_CI_ANSWERS)):
        answers = dict(zip(GITLAB_CI_ANSWERS, combo, strict=True))
        label = "-".join(str(v) for v in combo)
        dst = render(template_src, tmp_path / label, {"ci_providers": ["gitlab"], **answers})
        renderings.setdefault((dst / ".gitlab-ci.yml").read_text(), []).append(label)
    files = []
    for index, (text, labels) in enumerate(renderings.items()):
        path = tmp_path / "distinct" / f"{index}-{labels[0]}" / ".gitlab-ci.yml"
        path.parent.mkdir(parents=True)
        path.write_text(text)
        files.append(path)
        # A job under a reserved top-level keyword (a job named `image`) is not a job at all.
        config = yaml.safe_load(text)
        misnamed = [
            k for k in RESERVED if isinstance(config.get(k), dict) and "script" in config[k]
        ]
        assert not misnamed, f"jobs named after reserved keywords: {misnamed} ({labels})"
    # dvc_remote (secrets comment), use_docker and python_version all change the file.
    assert len(files) >= 2 * len(answer_space("python_version"))
    result = subprocess.run(
        [
            str(CHECK_JSONSCHEMA),
            "--builtin-schema",
            "vendor.gitlab-ci",
            "--data-transform",
            "gitlab-ci",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
