"""Run the generated .gitlab-ci.yml for real with gitlab-ci-local (shell executor, on this
machine; see tests/harness/gitlab.py) and check every distinct rendering against GitLab's
schema.

What runs, and what is substituted or recorded instead (each run is a row of the summary table):
- Jobs run on the host instead of in the `ghcr.io/astral-sh/uv` image, in a fresh clone.
- The local DVC remote of the generated project is a directory on this machine, so the runner
  reaches it: `poe pull`/`poe push` run for real.
- `publish-release` (GitLab's release-cli image and the `release:` keyword) needs a GitLab
  server; `docker-image` (a Buildah build, minutes per variant) runs for real in
  tests/test_deploy.py: both are recorded as not run here, never as passed.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.harness.broken_changes import BROKEN_CHANGES, on_a_branch
from tests.harness.checkov import assert_checkov_finds_nothing
from tests.harness.ci_run import record_and_assert
from tests.harness.ci_variants import param, pick, provider_variants
from tests.harness.commands import check_jsonschema
from tests.harness.dvc import remote_dir, remote_objects
from tests.harness.git import commit, git
from tests.harness.gitlab import (
    docker_image_not_run,
    job_status,
    merge_request_api,
    pipeline_variables,
    run_pipeline,
    selected_jobs,
)
from tests.harness.matrix import answer_space, effective_answer
from tests.harness.render import clone, generated_from_release
from tests.harness.renderings import distinct_renderings
from tests.harness.retraining import ALERT, assert_retrain_branch, origin_with_retraining
from tests.harness.traffic import drifted_traffic
from tests.harness.wiring import assert_blocks_are_wiring

GITLAB_VARIANTS = provider_variants("gitlab")
# Default-branch, tag and schedule pipelines: a variant whose local DVC remote the runner
# reaches (so `poe push` is observable), sklearn for speed.
PIPELINE_VARIANT = pick(
    GITLAB_VARIANTS, lambda d: d["dvc_remote"] == "local" and d["ml_framework"] == "sklearn"
)
# Broken changes: another variant, so the two groups of long runs land on different workers.
SCENARIO_VARIANT = pick(
    GITLAB_VARIANTS, lambda d: d["ml_framework"] == "sklearn" and d != PIPELINE_VARIANT.data
)
PUBLISH_NOT_RUN = "publish-release: not run (release-cli image and release: need a GitLab server)"


def _deploys(variant) -> bool:
    return effective_answer(variant.data, "deploy_target") != "none"


def _tail(log: str, lines: int = 60) -> str:
    return "\n".join(log.splitlines()[-lines:])


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


# --- 1. Every covering variant: the feature-branch pipeline's validate job -----------------------


@pytest.mark.parametrize("gitlab_variant", [param(v) for v in GITLAB_VARIANTS])
def test_feature_branch_validate(
    gitlab_variant, generated_projects, tmp_path, job_env, record_property
):
    project = clone(generated_projects(gitlab_variant), tmp_path / "clone")
    git(project, "checkout", "--quiet", "-b", "feature/ci-check")
    variables = pipeline_variables(
        project,
        CI_COMMIT_BRANCH="feature/ci-check",
        CI_COMMIT_REF_NAME="feature/ci-check",
        CI_PIPELINE_SOURCE="push",
    )
    use_docker = gitlab_variant.data["use_docker"]
    expected = {"validate"} | ({"docker-image"} if use_docker else set())
    assert selected_jobs(project, job_env, variables) == expected

    pipeline = {"variant": gitlab_variant.id, "trigger": "push feature/ci-check"}
    run = run_pipeline(project, ["validate"], job_env, variables, **pipeline)
    if use_docker:
        run = run.then(docker_image_not_run(**pipeline))
    record_and_assert(run, record_property, jobs=["validate"])
    log = run.log
    # Poe prints each task as the command it runs (lint is pre-commit).
    for task in (
        "pre-commit run",
        "pytest",
        "pipeline",  # pull and `dvc repro` in one process
        "validate data/raw/dataset.csv",
        "gate",
    ):
        assert re.search(rf"Poe => .*{re.escape(task)}", log), f"poe {task} did not run"
    assert "quality gate: passed" in log
    assert not re.search(r"Poe => python -m \w+ push", log), "a branch pipeline pushed"
    _junit_ok(project / "reports" / "junit.xml")
    # ... and it is among the job's artifacts (artifacts:reports:junit points at it).
    _junit_ok(run.artifacts / "validate" / "reports" / "junit.xml")


# --- 2. One variant: default-branch, tag and schedule pipelines ---------------------------------


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
    commit(project, "Retrain with more estimators")


@pytest.mark.parametrize("gitlab_variant", [param(PIPELINE_VARIANT)])
def test_default_branch_pipeline_pushes_to_dvc_remote(
    gitlab_variant, generated_projects, tmp_path, job_env, record_property
):
    project = clone(generated_projects(gitlab_variant), tmp_path / "clone")
    _retrain_change(project)
    before = remote_objects(remote_dir(project))
    variables = pipeline_variables(
        project, CI_COMMIT_BRANCH="main", CI_COMMIT_REF_NAME="main", CI_PIPELINE_SOURCE="push"
    )
    use_docker = gitlab_variant.data["use_docker"]
    deploys = _deploys(gitlab_variant)
    assert selected_jobs(project, job_env, variables) == {"validate"} | (
        {"docker-image"} if use_docker else set()
    ) | ({"deploy-staging"} if deploys else set())
    pipeline = {"variant": gitlab_variant.id, "trigger": "push main, poe push"}
    run = run_pipeline(project, ["validate"], job_env, variables, **pipeline)
    if use_docker:
        run = run.then(docker_image_not_run(**pipeline))
    received = remote_objects(remote_dir(project)) - before
    record_and_assert(
        run,
        record_property,
        jobs=["validate"],
        note=f"DVC remote received {len(received)} objects",
    )
    log = run.log
    assert "quality gate: passed" in log
    assert "Poe => python -m" in log and re.search(r"dvc push: .*\(remote 'storage'\)", log), (
        "poe push did not push: " + _tail(log)
    )
    assert received, "the DVC remote received no objects"
    # The retrained model (dvc.lock as the job's `dvc repro` left it) is among them.
    assert _model_md5(project) in received, f"retrained model not pushed: {sorted(received)}"


@pytest.mark.parametrize("gitlab_variant", [param(PIPELINE_VARIANT)])
def test_tag_pipeline_packages_release(
    gitlab_variant, generated_projects, tmp_path, job_env, record_property
):
    """The tag pipeline packages the release and registers the model version: GTO's tags for
    the version and its staging stage reach the project's repository. GitLab's project URL
    (CI_SERVER_PROTOCOL/HOST, CI_PROJECT_PATH) is substituted by a local bare repository's
    file:// URL, where GITLAB_TOKEN's header goes unused."""
    origin = tmp_path / "origin.git"
    generated = generated_projects(gitlab_variant)
    git(tmp_path, "clone", "--quiet", "--bare", str(generated), str(origin))
    project = clone(origin, tmp_path / "clone")
    git(project, "tag", "v1.0.0")
    git(project, "push", "--quiet", "origin", "v1.0.0")
    git(project, "checkout", "--quiet", "v1.0.0")  # a tag pipeline checks out the tag
    variables = pipeline_variables(
        project, CI_COMMIT_TAG="v1.0.0", CI_COMMIT_REF_NAME="v1.0.0", CI_PIPELINE_SOURCE="push"
    )
    unset = ("CI_COMMIT_BRANCH",)  # GitLab does not set it in tag pipelines
    use_docker = gitlab_variant.data["use_docker"]
    expected = {"validate", "register-release", "package-release", "publish-release"}
    expected |= {"docker-image"} if use_docker else set()
    expected |= {"deploy-staging", "deploy-production"} if _deploys(gitlab_variant) else set()
    assert selected_jobs(project, job_env, variables, unset) == expected
    variables.update(
        CI_SERVER_PROTOCOL="file",
        CI_SERVER_HOST="localhost",
        CI_PROJECT_PATH=str(origin.with_suffix("")).lstrip("/"),
        GITLAB_TOKEN="glpat-local-test-token",
    )
    pipeline = {"variant": gitlab_variant.id, "trigger": "tag v1.0.0"}
    jobs = ["validate", "register-release", "package-release"]
    run = run_pipeline(project, jobs, job_env, variables, unset=unset, **pipeline)
    if use_docker:
        run = run.then(docker_image_not_run(**pipeline))
    run.substituted.append(PUBLISH_NOT_RUN)
    run.substituted.append("the project's URL: a local bare repository (file://)")
    record_and_assert(run, record_property, jobs=jobs)
    assert "release v1.0.0:" in run.log
    assert "push-tags: model#staging#1, model@v1.0.0" in run.log, _tail(run.log)
    registry_tags = git(origin, "tag", "--list", "model*").split()
    assert registry_tags == ["model#staging#1", "model@v1.0.0"], registry_tags
    release = run.artifacts / "package-release" / "dist" / "release"
    card = (release / "MODEL_CARD.md").read_text()
    manifest = json.loads((release / "manifest.json").read_text())
    assert "v1.0.0" in card
    assert "v1.0.0" in json.dumps(manifest)


@pytest.mark.parametrize("gitlab_variant", [param(PIPELINE_VARIANT)])
def test_schedule_pipeline_monitors_drift_and_checks_template_updates(
    gitlab_variant,
    generated_projects,
    template_releases,
    tmp_path,
    job_env,
    record_property,
):
    project = clone(generated_projects(gitlab_variant), tmp_path / "clone")
    generated_from_release(project, template_releases, "v1.0.0")  # v2.0.0 is out
    variables = pipeline_variables(
        project, CI_COMMIT_BRANCH="main", CI_COMMIT_REF_NAME="main", CI_PIPELINE_SOURCE="schedule"
    )
    scheduled = {"drift-monitoring", "template-update"}
    scheduled |= {"batch-scoring"} if gitlab_variant.data.get("batch_inference") else set()
    assert selected_jobs(project, job_env, variables) == scheduled
    # The whole pipeline: its rules leave only the scheduled jobs.
    run = run_pipeline(
        project, [], job_env, variables, variant=gitlab_variant.id, trigger="schedule"
    )
    record_and_assert(run, record_property, jobs=sorted(scheduled))
    log = run.log
    assert job_status(log, "validate") != "success"
    assert re.search(r"drift: \d+/\d+ features drifted", log), _tail(log)
    drift = run.artifacts / "drift-monitoring" / "reports" / "drift.json"
    assert json.loads(drift.read_text())["drift_detected"] is False
    assert (drift.parent / "monitoring.html").is_file()
    assert "## Monitoring: " in log and "/artifacts/file/reports/monitoring.html" in log
    assert "version 2.0.0 is available" in log, _tail(log)
    assert "set GITLAB_TOKEN to let CI do it" in log, _tail(log)
    if "batch-scoring" in scheduled:  # predict-batch on the default input, the test split
        published = run.artifacts / "batch-scoring" / "reports" / "batch"
        scored = (published / "predictions.csv").read_text().splitlines()
        test_split = generated_projects(gitlab_variant) / "data" / "prepared" / "test.csv"
        assert len(scored) == len(test_split.read_text().splitlines()), _tail(log)
        assert "model_version" in scored[0]
        assert (published / "predictions.rejected.csv").is_file()


@pytest.mark.parametrize("gitlab_variant", [param(PIPELINE_VARIANT)])
def test_schedule_pipeline_retrains_on_drift_and_fails(
    gitlab_variant, generated_projects, tmp_path, job_env, record_property
):
    """drift-monitoring on its schedule with retraining enabled, on production traffic that has
    drifted and whose outcomes show a performance drop (MONITOR_BATCH, a pipeline variable):
    `poe retrain`'s challenger beats the model; its branch is pushed with GITLAB_TOKEN to the
    project's repository and the merge request opened through GitLab's API. Substituted: the
    project's URL by a local bare repository's file:// URL (the token's header goes unused
    there), the API (CI_API_V4_URL) by a stand-in that records the merge request. The job still
    fails, as the alert."""
    generated = generated_projects(gitlab_variant)
    origin, project, remote = origin_with_retraining(generated, tmp_path)
    traffic = drifted_traffic(generated, tmp_path / "traffic")
    token = "glpat-local-test-token"
    with merge_request_api(token) as (api, opened):
        variables = pipeline_variables(
            project,
            CI_COMMIT_BRANCH="main",
            CI_COMMIT_REF_NAME="main",
            CI_PIPELINE_SOURCE="schedule",
            CI_SERVER_PROTOCOL="file",
            CI_SERVER_HOST="localhost",
            CI_PROJECT_PATH=str(origin.with_suffix("")).lstrip("/"),
            CI_PROJECT_ID="42",
            CI_API_V4_URL=api,
            GITLAB_TOKEN=token,
            MONITOR_BATCH=str(traffic),
        )
        run = run_pipeline(
            project,
            ["drift-monitoring"],
            job_env,
            variables,
            variant=gitlab_variant.id,
            trigger="schedule, drifted traffic, retraining enabled",
        )
    run.substituted.append("the project's URL: a local bare repository (file://)")
    run.substituted.append("GitLab's merge request API: a recording stand-in")
    record_and_assert(run, record_property, fails_with=ALERT)
    assert run.jobs["drift-monitoring"] == "failure", _tail(run.log)
    assert "retrain: the challenger beats the champion" in run.log, _tail(run.log)
    branch = assert_retrain_branch(origin, remote)
    (request,) = opened
    assert (request["project"], request["source_branch"]) == ("42", branch), request
    assert request["target_branch"] == "main"
    assert "**Result: proposed**" in request["description"]
    assert "retrain: http://gitlab.example.com/42/-/merge_requests/1" in run.log


# --- 4. Broken changes turn the validate job red -------------------------------------------------


@pytest.mark.parametrize(
    ("gitlab_variant", "scenario"), [param(SCENARIO_VARIANT, name) for name in BROKEN_CHANGES]
)
def test_broken_change_fails_validate(
    gitlab_variant, scenario, generated_projects, tmp_path, job_env, record_property
):
    branch = "feature/broken"
    project, expected = on_a_branch(
        generated_projects(gitlab_variant), tmp_path / "clone", branch, scenario
    )
    variables = pipeline_variables(
        project, CI_COMMIT_BRANCH=branch, CI_COMMIT_REF_NAME=branch, CI_PIPELINE_SOURCE="push"
    )
    run = run_pipeline(
        project,
        ["validate"],
        job_env,
        variables,
        variant=f"{gitlab_variant.id} [{scenario}]",
        trigger=f"push {branch}",
    )
    record_and_assert(run, record_property, fails_with=expected)
    assert run.jobs["validate"] == "failure", run.describe()


# --- 5. Static: every distinct rendering against GitLab's schema ---------------------------------

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


@pytest.fixture(scope="module")
def gitlab_renderings(template_src, tmp_path_factory):
    return distinct_renderings(template_src, tmp_path_factory.mktemp("gitlab-ci"), "gitlab")


def test_checkov_finds_nothing_in_any_gitlab_ci_rendering(gitlab_renderings):
    assert_checkov_finds_nothing(gitlab_renderings[0].directory.parent, {"gitlab_ci"})


def test_every_distinct_gitlab_ci_rendering_is_wiring(gitlab_renderings):
    assert_blocks_are_wiring(gitlab_renderings)


def test_every_distinct_gitlab_ci_rendering_matches_the_schema(gitlab_renderings):
    renderings = gitlab_renderings
    files = []
    for rendering in renderings:
        files.append(rendering.directory / ".gitlab-ci.yml")
        # A job under a reserved top-level keyword (a job named `image`) is not a job at all.
        config = yaml.safe_load(rendering.files[".gitlab-ci.yml"])
        misnamed = [
            k for k in RESERVED if isinstance(config.get(k), dict) and "script" in config[k]
        ]
        assert not misnamed, f"jobs named after reserved keywords: {misnamed} ({rendering.answers})"
    # dvc_remote (secrets comment), use_docker and python_version all change the file.
    assert len(files) >= 2 * len(answer_space("python_version"))
    result = check_jsonschema("vendor.gitlab-ci", files, "--data-transform", "gitlab-ci")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_gitlab_image_has_a_version(gitlab_renderings):
    """Every job image and service names a version (Renovate pins each to its digest), never
    `latest`; the uv image carries uv's own version, not only Python's."""
    for rendering in gitlab_renderings:
        config = yaml.safe_load(rendering.files[".gitlab-ci.yml"])
        jobs = [v for v in config.values() if isinstance(v, dict)]  # `default` among them
        images = [job["image"] for job in jobs if "image" in job]
        images += [service for job in jobs for service in job.get("services", [])]
        for image in images:
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest", f"{image} ({rendering.answers})"
        uv_tag = config["default"]["image"].rpartition(":")[2]
        assert re.fullmatch(r"\d+\.\d+\.\d+-python3\.\d+-bookworm", uv_tag), uv_tag
