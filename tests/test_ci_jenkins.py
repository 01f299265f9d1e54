"""The generated Jenkinsfile, run for real without a Jenkins controller.

tests/harness/jenkins.py evaluates the REAL generated Jenkinsfile with the real Groovy parser
and executes it the way Jenkins does (environment with fake credentials, stages in order, `when`,
`post`, `sh` steps that really run in a multibranch-like workspace). Steps that need a controller
are recorded, never counted as passed. The runs here have no Docker daemon: the harness is told
so, the `sh` steps that call docker are reported as not run (never as passed) and the Image
stage shows "not run (no Docker daemon)"; tests/test_deploy.py runs them on a real daemon.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.harness.broken_changes import BROKEN_CHANGES
from tests.harness.ci_run import record_and_assert
from tests.harness.ci_variants import param, provider_variants
from tests.harness.dvc import remote_dir, use_remote_locally
from tests.harness.git import git
from tests.harness.jenkins import (
    GROOVY,
    LINTER,
    NODE22,
    jenkins_checkout,
    run_groovy,
    run_jenkinsfile,
    stage,
)
from tests.harness.matrix import effective_answer
from tests.harness.render import clone, generated_from_release
from tests.harness.renderings import distinct_renderings
from tests.harness.retraining import ALERT, assert_retrain_branch, origin_with_retraining
from tests.harness.traffic import drifted_traffic
from tests.harness.wiring import assert_blocks_are_wiring

JENKINS_VARIANTS = provider_variants("jenkins")
# Main, tag, timer and broken-change runs: a variant whose local DVC remote this runner reaches
# (so Publish really pushes), with Docker (so the docker steps' handling is exercised too).
MAIN_VARIANT = max(
    JENKINS_VARIANTS,
    key=lambda v: (
        v.data["dvc_remote"] == "local",
        v.data["use_docker"],
        v.data["ml_framework"] == "sklearn",
    ),
)

pytestmark = pytest.mark.skipif(
    GROOVY is None, reason="groovy is not installed (scripts/install-ci-tools)"
)


def tail(log: str) -> str:
    return log[-4000:]


def assert_docker_not_run(run, variant) -> None:
    if variant.data["use_docker"]:
        image = stage(run, "Image")
        assert image["status"] == "NOT_RUN", image
        assert image["reason"] == "not run (no Docker daemon)"
    assert not any(
        sh.get("exit") is not None and "docker" in sh["script"] for sh in run.details["sh"]
    )


@pytest.mark.parametrize("jvariant", [param(v) for v in JENKINS_VARIANTS])
def test_feature_branch(jvariant, generated_projects, offline_uv_env, tmp_path, record_property):
    project = generated_projects(jvariant)
    workspace = jenkins_checkout(project, tmp_path / "workspace", branch="feature")
    run = run_jenkinsfile(
        workspace,
        {"BRANCH_NAME": "feature"},
        variant=jvariant.id,
        env=offline_uv_env,
    )
    record_and_assert(run, record_property)
    summary, log = run.details, run.log
    assert "quality gate: passed" in log
    # The CI stage fetches the base branch itself (a multibranch checkout has only its own).
    assert "base revision 'origin/main' not found" not in log, tail(log)
    assert summary["stages_run"] == ["Install", "CI"], summary["stages"]
    assert_docker_not_run(run, jvariant)
    for skipped in ("Publish", "Release", "Monitor"):
        assert stage(run, skipped)["status"] == "SKIPPED"
    assert summary["triggers"] == ["cron('')"]  # the nightly monitor is scheduled on main only
    junit = next(r for r in summary["recorded"] if r["step"].startswith("junit"))
    assert junit["stage"] == "CI post always" and ", 0 failed" in junit["note"], junit


@pytest.mark.parametrize("jvariant", [param(MAIN_VARIANT)])
def test_main_branch_publishes(
    jvariant, generated_projects, offline_uv_env, tmp_path, record_property
):
    project = generated_projects(jvariant)
    workspace = jenkins_checkout(project, tmp_path / "workspace", branch="main")
    remote = tmp_path / "remote"  # empty: every object in it after the run was pushed by it
    remote.mkdir()
    use_remote_locally(workspace, remote)
    run = run_jenkinsfile(
        workspace,
        {"BRANCH_NAME": "main"},
        variant=jvariant.id,
        env=offline_uv_env,
    )
    record_and_assert(run, record_property)
    summary, log = run.details, run.log
    deploys = effective_answer(jvariant.data, "deploy_target")
    expected = ["Install", "CI", "Publish"] + (["Deploy staging"] if deploys != "none" else [])
    assert summary["stages_run"] == expected, summary["stages"]
    if deploys != "none":  # no settings configured: the stage says which, and passes
        assert "deploy staging skipped: set DEPLOY_HOST, DEPLOY_SSH_KEY, DEPLOY_URL" in log
    assert summary["triggers"] == ["cron('H 5 * * *')"]
    assert_docker_not_run(run, jvariant)
    publish = stage(run, "Publish")
    if jvariant.data["use_docker"]:
        assert any("poe docker-login" in s for s in publish["not_run"]), publish
        assert any("poe docker-push" in s for s in publish["not_run"]), publish
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())
    outs = [out for st in lock["stages"].values() for out in st.get("outs", []) if "md5" in out]
    pushed = [o for o in outs if _is_cached_out(workspace, o["path"])]
    assert pushed, outs
    missing = [
        o["path"]
        for o in pushed
        if not (remote / "files" / "md5" / o["md5"][:2] / o["md5"][2:]).is_file()
    ]
    assert not missing, f"not pushed to the DVC remote: {missing}\n{tail(log)}"


def _is_cached_out(workspace: Path, path: str) -> bool:
    """Outputs with `cache: false` in dvc.yaml are not pushed."""
    text = (workspace / "dvc.yaml").read_text()
    return not re.search(rf"- {re.escape(path)}:\s*\n\s*cache: false", text)


@pytest.mark.parametrize("jvariant", [param(MAIN_VARIANT)])
def test_tag_releases(jvariant, generated_projects, offline_uv_env, tmp_path, record_property):
    """A tag build packages the release and registers the model version: GTO's tags for the
    version and its staging stage reach origin (a local bare repository; the agent's own git
    credentials are what a real Jenkins pushes with)."""
    project = generated_projects(jvariant)
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(project), str(origin))
    workspace = jenkins_checkout(origin, tmp_path / "workspace", tag="v1.0.0")
    remote = tmp_path / "remote"  # a copy: the shared project's remote stays untouched
    shutil.copytree(remote_dir(project), remote)
    use_remote_locally(workspace, remote)
    run = run_jenkinsfile(
        workspace,
        {"TAG_NAME": "v1.0.0"},
        variant=jvariant.id,
        env=offline_uv_env,
    )
    record_and_assert(run, record_property)
    summary, log = run.details, run.log
    deploys = effective_answer(jvariant.data, "deploy_target")
    staging, production = (
        (["Deploy staging"], ["Deploy production"]) if deploys != "none" else ([], [])
    )
    expected = ["Install", "CI", "Publish", "Register", *staging, "Release", *production]
    assert summary["stages_run"] == expected, summary["stages"]
    assert "push-tags: model#staging#1, model@v1.0.0" in log, tail(log)
    registry_tags = git(origin, "tag", "--list", "model*").split()
    assert registry_tags == ["model#staging#1", "model@v1.0.0"], registry_tags
    if deploys != "none":  # behind an approval, then skipped for want of settings
        approval = next(r for r in summary["recorded"] if r["step"].startswith("input("))
        assert approval["stage"] == "Deploy production", approval
        assert "deploy production skipped: set DEPLOY_HOST" in log
        # An environment with no settings is not deployed, so its stage does not move.
        assert "promote: production" not in log
    card = workspace / "dist" / "release" / "MODEL_CARD.md"
    assert card.is_file(), tail(log)
    assert "v1.0.0" in card.read_text()
    archived = next(r for r in summary["recorded"] if "dist/release/**" in r["step"])
    assert "file(s) found" in archived["note"], archived


@pytest.mark.parametrize("jvariant", [param(MAIN_VARIANT)])
def test_nightly_timer_monitors_and_checks_template_updates(
    jvariant, generated_projects, template_releases, offline_uv_env, tmp_path, record_property
):
    project = clone(generated_projects(jvariant), tmp_path / "project")
    generated_from_release(project, template_releases, "v1.0.0")  # v2.0.0 is out
    workspace = jenkins_checkout(project, tmp_path / "workspace", branch="main")
    run = run_jenkinsfile(
        workspace,
        {"BRANCH_NAME": "main"},
        variant=jvariant.id,
        env=offline_uv_env,
        causes=["hudson.triggers.TimerTrigger$TimerTriggerCause"],
    )
    record_and_assert(run, record_property)
    summary, log = run.details, run.log
    # Install has no `when` (it sets up uv for them); the other stages are skipped.
    scoring = ["Batch scoring"] if jvariant.data.get("batch_inference") else []
    expected = ["Install", *scoring, "Monitor", "Template update"]
    assert summary["stages_run"] == expected, summary["stages"]
    assert [s["script"] for s in summary["sh"] if s["stage"] == "Monitor"] == [
        "uv run poe monitoring"
    ]
    if effective_answer(jvariant.data, "deploy_target") != "none":  # the sequence's middle task
        assert "Poe => python scripts/deploy.py fetch-traffic production" in log, tail(log)
    assert all(s["exit"] == 0 for s in summary["sh"] if s["stage"] == "Monitor")
    drift = next(r for r in summary["recorded"] if "drift.json" in r["step"])
    assert "3 file(s) found" in drift["note"] and "monitoring.html" in drift["note"], drift
    (verdict,) = [s for s in summary["sh"] if s["stage"] == "Monitor post always"]
    assert verdict["script"].endswith("uv run poe monitoring-summary") and verdict["exit"] == 0
    assert "## Monitoring: " in log, tail(log)
    update = next(s for s in summary["sh"] if s["stage"] == "Template update")
    assert update["script"] == "uv run poe template-update" and update["exit"] == 0, update
    assert "version 2.0.0 is available" in log, tail(log)
    if scoring:  # predict-batch on the default input, the test split, archived
        (score,) = [s for s in summary["sh"] if s["stage"] == "Batch scoring"]
        assert score["script"] == "uv run poe batch-scoring" and score["exit"] == 0, score
        scored = (workspace / "reports" / "batch" / "predictions.csv").read_text().splitlines()
        test_split = workspace / "data" / "prepared" / "test.csv"
        assert len(scored) == len(test_split.read_text().splitlines())
        archived = next(r for r in summary["recorded"] if "reports/batch/**" in r["step"])
        assert "2 file(s) found" in archived["note"], archived


@pytest.mark.parametrize("jvariant", [param(MAIN_VARIANT)])
def test_nightly_timer_retrains_on_drift_and_fails(
    jvariant, generated_projects, offline_uv_env, tmp_path, record_property
):
    """The Monitor stage with retraining enabled, on production traffic that has drifted and
    whose outcomes show a performance drop (MONITOR_BATCH in the agent's environment): `poe
    monitoring` runs `poe retrain`, whose challenger beats the model; its branch reaches origin
    (a local bare repository, pushed with the agent's own git credentials) with the new data
    version, whose data reaches the DVC remote; Jenkins has no pull request API, so the log
    says to open the request by hand. The stage still fails, as the alert."""
    generated = generated_projects(jvariant)
    origin, _, remote = origin_with_retraining(generated, tmp_path)
    workspace = jenkins_checkout(origin, tmp_path / "workspace", branch="main")
    traffic = drifted_traffic(generated, tmp_path / "traffic")
    run = run_jenkinsfile(
        workspace,
        {"BRANCH_NAME": "main"},
        variant=jvariant.id,
        env={**offline_uv_env, "MONITOR_BATCH": str(traffic)},
        causes=["hudson.triggers.TimerTrigger$TimerTriggerCause"],
    )
    record_and_assert(run, record_property, fails_with=ALERT)
    monitor = [s for s in run.details["sh"] if s["stage"] == "Monitor"]
    assert [(s["script"], s["exit"] != 0) for s in monitor] == [("uv run poe monitoring", True)]
    assert "retrain: the challenger beats the champion" in run.log, tail(run.log)
    branch = assert_retrain_branch(origin, remote)
    assert f"retrain: branch {branch} pushed; open its pull request by hand" in run.log


@pytest.mark.parametrize("scenario", list(BROKEN_CHANGES))
@pytest.mark.xdist_group(MAIN_VARIANT.id)
def test_broken_change_fails(
    scenario, generated_projects, offline_uv_env, tmp_path, record_property
):
    project = generated_projects(MAIN_VARIANT)
    workspace = clone(project, tmp_path / "change")
    expected = BROKEN_CHANGES[scenario](workspace)  # commits the broken change
    workspace = jenkins_checkout(workspace, tmp_path / "workspace", branch="feature")
    # The change's clone has the project's DVC remote configured; pulls read it, nothing pushes.
    run = run_jenkinsfile(
        workspace,
        {"BRANCH_NAME": "feature"},
        variant=f"{MAIN_VARIANT.id} ({scenario})",
        env=offline_uv_env,
    )
    record_and_assert(run, record_property, fails_with=expected)
    summary = run.details
    assert summary["result"] == "FAILURE", tail(run.log)
    assert stage(run, "CI")["status"] == "FAILURE"
    assert any(e.startswith("CI: script returned exit code") for e in summary["errors"]), summary[
        "errors"
    ]
    # post { always { junit ... } } still ran after the failure; later stages did not run.
    assert any(
        r["stage"] == "CI post always" and r["step"].startswith("junit")
        for r in summary["recorded"]
    )
    later = [s for s in summary["stages"] if s["name"] not in ("Install", "CI")]
    assert later and all(s["status"] == "SKIPPED" for s in later), later
    assert not [s for s in summary["sh"] if s["stage"] not in ("Install", "CI")]


@pytest.fixture(scope="module")
def rendered_jenkinsfiles(template_src, tmp_path_factory):
    """Every distinct Jenkinsfile copier.yml's answers render (tests/harness/renderings.py)."""
    root = tmp_path_factory.mktemp("jenkinsfiles")
    return distinct_renderings(template_src, root, "jenkins", cycle_values=False)


def test_jenkinsfile_steps_are_wiring(rendered_jenkinsfiles):
    assert_blocks_are_wiring(rendered_jenkinsfiles)


def test_jenkinsfiles_lint(rendered_jenkinsfiles):
    if not LINTER.is_file():
        pytest.skip("npm-groovy-lint is not installed (scripts/install-ci-tools)")
    node = str(NODE22) if NODE22.exists() else shutil.which("node")
    files = [str(r.directory / "Jenkinsfile") for r in rendered_jenkinsfiles]
    proc = subprocess.run(
        [node, str(LINTER), "--noserver", "--failon", "error", *files],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


# The stages that pull or push DVC data: the only ones the remote's credentials are bound in
# (and, with batch_inference, Batch scoring).
DVC_STAGES = {"CI", "Publish", "Monitor"}


def test_jenkinsfiles_parse(rendered_jenkinsfiles):
    """Parse-only run: evaluates every block of each distinct file, sh not run, `when` ignored.
    Credentials are bound in the stages that use them, never for the whole pipeline; the
    production approval names who may give it; uv is installed at one version."""
    for rendering in rendered_jenkinsfiles:
        path = rendering.directory / "Jenkinsfile"
        run = run_jenkinsfile(
            path.parent,
            {"BRANCH_NAME": "main"},
            variant=str(rendering.answers),
            dry_run=True,
            jenkinsfile=path,
        )
        assert run.passed, f"{rendering.answers}: {run.details['errors']}\n{tail(run.log)}"
        names = [s["name"] for s in run.details["model"]]
        assert names[:2] == ["Install", "CI"] and "Release" in names and "Monitor" in names, names
        use_docker = effective_answer(rendering.answers, "use_docker")
        assert ("Image" in names) == use_docker, (rendering.answers, names)
        recorded = run.details["recorded"]
        bound = {r["stage"] for r in recorded if "= credentials(" in r["step"]}
        dvc_remote = effective_answer(rendering.answers, "dvc_remote")
        dvc_stages = DVC_STAGES | ({"Batch scoring"} if "Batch scoring" in names else set())
        assert bound == (set() if dvc_remote == "local" else dvc_stages), rendering.answers
        assert ("Batch scoring" in names) == rendering.answers.get("batch_inference", False)
        approvals = [r["step"] for r in recorded if r["step"].startswith("input(")]
        assert all("submitter(" in step for step in approvals), approvals
        assert len(approvals) == ("Deploy production" in names), (rendering.answers, approvals)
        assert re.search(r"pip install --user uv==\d+\.\d+\.\d+'", path.read_text())


SEMANTICS_JENKINSFILE = r"""
pipeline {
    agent any
    environment {
        GREETING = "hello ${env.BRANCH_NAME}"
        TOKEN = credentials('token')
        DERIVED = "${GREETING}!"
    }
    stages {
        stage('Env') {
            steps {
                sh 'test "$GREETING" = "hello feature" && test "$DERIVED" = "hello feature!" && test "${#TOKEN}" = 12'
                sh 'echo "token is $TOKEN"; test "$(pwd)" = "$WORKSPACE"'
            }
        }
        stage('MainOnly') { when { branch 'main' }; steps { sh 'echo NOT-EXPECTED-main' } }
        stage('Glob') { when { branch 'feat*' }; steps { sh 'echo glob' } }
        stage('Tag') { when { tag pattern: 'v\\d+', comparator: 'REGEXP' }; steps { sh 'echo NOT-EXPECTED-tag' } }
        stage('Combo') {
            when {
                allOf {
                    not { buildingTag() }
                    anyOf { branch 'main'; expression { env.BRANCH_NAME.startsWith('fea') } }
                }
            }
            steps { sh 'echo combo' }
        }
        stage('Creds') {
            steps {
                withCredentials([usernamePassword(credentialsId: 'reg', usernameVariable: 'U', passwordVariable: 'P')]) {
                    sh 'test "$U" = bot && test "${#P}" = 11 && echo "password is $P"'
                }
                sh 'test -z "$P"'
            }
        }
        stage('Fail') {
            steps { sh 'echo about to fail; exit 3' }
            post {
                always { junit allowEmptyResults: true, testResults: 'none.xml' }
                failure { echo 'stage failed' }
                success { echo 'NOT-EXPECTED-success' }
            }
        }
        stage('After') { steps { sh 'echo NOT-EXPECTED-after' } }
    }
    post {
        always { echo 'pipeline always' }
        failure { echo 'pipeline failure' }
        success { echo 'NOT-EXPECTED-pipeline-success' }
    }
}
"""


def test_harness_semantics(tmp_path):
    """The harness itself: environment and credentials, when conditions, a failing sh, post."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    jenkinsfile = workspace / "Jenkinsfile"
    jenkinsfile.write_text(SEMANTICS_JENKINSFILE)
    config = {
        "jenkinsfile": str(jenkinsfile),
        "workspace": str(workspace),
        "context": {"BRANCH_NAME": "feature"},
        "baseEnv": {"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
        "credentials": {
            "token": "tok-secret-1",
            "reg": {"username": "bot", "password": "pw-secret-2"},
        },
    }
    summary, log, code = run_groovy(config, tmp_path / "config.json")
    assert code == 1 and summary["result"] == "FAILURE", log
    stages = {s["name"]: s for s in summary["stages"]}
    assert summary["stages_run"] == ["Env", "Glob", "Combo", "Creds", "Fail"], summary["stages"]
    assert stages["After"]["reason"] == "skipped due to earlier failure(s)"
    assert stages["MainOnly"]["status"] == stages["Tag"]["status"] == "SKIPPED"
    assert summary["errors"] == ["Fail: script returned exit code 3"], summary["errors"]
    assert [s["exit"] for s in summary["sh"]] == [0, 0, 0, 0, 0, 0, 3]
    assert (
        "token is ****" in log
        and "password is ****" in log
        and "secret-1" not in log
        and "pw-secret-2" not in log
    )
    for expected in ("about to fail", "stage failed", "pipeline always", "pipeline failure"):
        assert expected in log
    assert "NOT-EXPECTED" not in log.replace("echo NOT-EXPECTED", "")
    junit = next(r for r in summary["recorded"] if r["step"].startswith("junit"))
    assert junit["stage"] == "Fail post always" and junit["note"] == "no test report found"
