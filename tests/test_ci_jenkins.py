"""The generated Jenkinsfile, run for real without a Jenkins controller.

No Jenkins controller is installable offline, so tests/jenkins/PipelineHarness.groovy evaluates
the REAL generated Jenkinsfile with the real Groovy parser (Debian's groovy 2.4, the Groovy line
Jenkins uses) and executes it the way Jenkins does: environment (with fake credentials given
here), stages in order, `when` conditions, `post` blocks, and `sh` steps that really run in a
Jenkins-like workspace (a detached checkout whose refspec fetches only the built branch, as a
multibranch job does). Steps that need a controller (junit, archiveArtifacts, ...) are recorded,
never counted as passed; junit and archiveArtifacts are checked against the files they name.

The runner has no Docker daemon yet: the harness is told so, and the `sh` steps that call docker
are reported as not run (never as passed); the Image stage shows "not run (no Docker daemon)".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, clone, generated_from_release, render
from tests.covering import covering_variants
from tests.scenarios import SCENARIOS
from tests.variants import effective_answer

HARNESS_DIR = Path(__file__).parent / "jenkins"
GROOVY = shutil.which("groovy")
LINTER = REPO_ROOT / ".tools" / "node_modules" / "npm-groovy-lint" / "lib" / "index.js"
# npm-groovy-lint 18 needs Node >= 22.15 (its import-fresh 4 refuses older ones); Node 22 from
# npm (package `node@22`) is used when installed there, else the system node.
NODE22 = REPO_ROOT / ".tools" / "node22" / "node_modules" / ".bin" / "node"
NO_DOCKER = {"docker": "no Docker daemon"}

JENKINS_VARIANTS = [v for v in covering_variants() if "jenkins" in v.data["ci_providers"]]
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


def _param(variant):
    return pytest.param(variant, marks=pytest.mark.xdist_group(variant.id), id=variant.id)


def java_home() -> str:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    assert java, "no java on PATH: Debian's groovy needs a JDK"
    return str(Path(os.path.realpath(java)).parents[1])


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def jenkins_checkout(
    project: Path, dst: Path, branch: str | None = None, tag: str | None = None
) -> Path:
    """A workspace as a multibranch job checks it out: detached HEAD, and a refspec that fetches
    only the built branch or tag (so origin/main exists only if the Jenkinsfile fetches it)."""
    clone(project, dst)
    if tag:
        _git(dst, "tag", tag)
        refspec = f"+refs/tags/{tag}:refs/tags/{tag}"
    else:
        refspec = f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
    _git(dst, "config", "remote.origin.fetch", refspec)
    _git(dst, "checkout", "--quiet", "--detach")
    for ref in _git(
        dst, "for-each-ref", "--format=%(refname)", "refs/remotes", "refs/heads"
    ).split():
        _git(dst, "update-ref", "-d", ref)
    return dst


def use_dvc_remote(workspace: Path, remote_dir: Path) -> None:
    """Point the workspace's default DVC remote at remote_dir (git-ignored .dvc/config.local),
    so a run's pushes land in a directory of its own instead of the shared project's remote."""
    name = re.search(r"remote\s*=\s*(\S+)", (workspace / ".dvc" / "config").read_text()).group(1)
    (workspace / ".dvc" / "config.local").write_text(
        f"['remote \"{name}\"']\n    url = {remote_dir}\n"
    )


def shared_remote(project: Path) -> Path:
    url = re.search(r"url\s*=\s*(\S+)", (project / ".dvc" / "config").read_text()).group(1)
    return Path(url)


def fake_credentials(jenkinsfile: str) -> dict:
    """A fake value for every credential ID the Jenkinsfile reads (never real secrets)."""
    secrets: dict = {}
    for cid in re.findall(r"credentials\('([^']+)'\)", jenkinsfile):
        # An endpoint that refuses at once: DVC then reports the remote unreachable quickly.
        secrets[cid] = (
            "http://127.0.0.1:9" if cid.endswith("ENDPOINT_URL") else f"fake-secret-{cid}"
        )
    for cid in re.findall(r"usernamePassword\(credentialsId: '([^']+)'", jenkinsfile):
        secrets[cid] = {"username": "ci-bot", "password": f"fake-password-{cid}"}
    return secrets


def run_harness(
    workspace: Path,
    context: dict[str, str],
    env: dict[str, str] | None = None,
    causes: list[str] | None = None,
    dry_run: bool = False,
    jenkinsfile: Path | None = None,
    credentials: dict | None = None,
    unavailable: dict[str, str] | None = None,
) -> tuple[dict, str]:
    """Run the Jenkinsfile; credentials the test gives (real ones, e.g. a deploy key made by
    the test) are added to fake values for every other credential ID the file reads."""
    jenkinsfile = jenkinsfile or workspace / "Jenkinsfile"
    credentials = {**fake_credentials(jenkinsfile.read_text()), **(credentials or {})}
    if not dry_run and "GIT_COMMIT" not in context:
        context = {**context, "GIT_COMMIT": _git(workspace, "rev-parse", "HEAD")}
    config = {
        "jenkinsfile": str(jenkinsfile),
        "workspace": str(workspace),
        "context": context,
        "causes": causes or ["BranchEventCause"],
        "baseEnv": {**os.environ, **(env or {})},
        "credentials": credentials,
        # Tools whose `sh` steps are recorded as not run: docker, unless the test gives the
        # pipeline a daemon (the deployment tests do, through DOCKER_HOST in env).
        "unavailable": NO_DOCKER if unavailable is None else unavailable,
        "dryRun": dry_run,
    }
    config_file = workspace.parent / f"{workspace.name}-harness.json"
    config_file.write_text(json.dumps(config))
    proc = subprocess.run(
        [
            GROOVY,
            "-cp",
            str(HARNESS_DIR),
            str(HARNESS_DIR / "run_pipeline.groovy"),
            str(config_file),
        ],
        env={**os.environ, "JAVA_HOME": java_home()},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    log = proc.stdout + proc.stderr
    (workspace.parent / f"{workspace.name}-jenkins.log").write_text(log)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"the harness printed nothing:\n{proc.stderr[-3000:]}"
    summary = json.loads(lines[-1])
    assert proc.returncode == (0 if summary["result"] == "SUCCESS" else 1), log[-3000:]
    for secret in credentials.values():
        value = secret["password"] if isinstance(secret, dict) else secret
        assert value not in log, "a credential leaked into the build log unmasked"
    return summary, log


def substituted(summary: dict) -> list[str]:
    """What a real controller would have done that this run only recorded or did not run."""
    items = []
    for stage in summary["stages"]:
        if stage["status"] == "NOT_RUN":
            items.append(f"{stage['name']}: {stage['reason']}")
        elif stage["not_run"]:
            names = sorted(
                {re.search(r"docker[\w-]*(?: login)?", s).group() for s in stage["not_run"]}
            )
            items.append(f"{stage['name']}: {', '.join(names)} not run (no Docker daemon)")
    for step in summary["recorded"]:
        if "not run (" in step["note"]:
            continue  # already listed per stage
        name = step["step"].split("(")[0]
        stage = step["stage"].replace(" post ", " post:")
        if "credentials" in name.lower():
            items.append(f"{stage}: fake credentials")
        else:
            items.append(f"{stage} {name} (recorded)")
    return list(dict.fromkeys(items))


def stage(summary: dict, name: str) -> dict:
    return next(s for s in summary["stages"] if s["name"] == name)


def tail(log: str) -> str:
    return log[-4000:]


def assert_docker_not_run(summary: dict, variant) -> None:
    if variant.data["use_docker"]:
        image = stage(summary, "Image")
        assert image["status"] == "NOT_RUN", image
        assert image["reason"] == "not run (no Docker daemon)"
    assert not any(
        run.get("exit") is not None and "docker" in run["script"] for run in summary["sh"]
    )


@pytest.mark.parametrize("jvariant", [_param(v) for v in JENKINS_VARIANTS])
def test_feature_branch(jvariant, generated_projects, offline_uv_env, tmp_path, record_ci_run):
    project = generated_projects(jvariant)
    workspace = jenkins_checkout(project, tmp_path / "workspace", branch="feature")
    summary, log = run_harness(workspace, {"BRANCH_NAME": "feature"}, env=offline_uv_env)
    record_ci_run(
        jvariant.id, "jenkins", summary["stages_run"], substituted(summary), summary["result"]
    )
    assert summary["result"] == "SUCCESS", tail(log)
    assert "quality gate: passed" in log
    # The CI stage fetches the base branch itself (a multibranch checkout has only its own).
    assert "base revision 'origin/main' not found" not in log, tail(log)
    assert summary["stages_run"] == ["Install", "CI"], summary["stages"]
    assert_docker_not_run(summary, jvariant)
    for skipped in ("Publish", "Release", "Monitor"):
        assert stage(summary, skipped)["status"] == "SKIPPED"
    assert summary["triggers"] == ["cron('')"]  # the nightly monitor is scheduled on main only
    junit = next(r for r in summary["recorded"] if r["step"].startswith("junit"))
    assert junit["stage"] == "CI post always" and ", 0 failed" in junit["note"], junit


@pytest.mark.parametrize("jvariant", [_param(MAIN_VARIANT)])
def test_main_branch_publishes(
    jvariant, generated_projects, offline_uv_env, tmp_path, record_ci_run
):
    project = generated_projects(jvariant)
    workspace = jenkins_checkout(project, tmp_path / "workspace", branch="main")
    remote = tmp_path / "remote"  # empty: every object in it after the run was pushed by it
    remote.mkdir()
    use_dvc_remote(workspace, remote)
    summary, log = run_harness(workspace, {"BRANCH_NAME": "main"}, env=offline_uv_env)
    record_ci_run(
        f"{jvariant.id} (main)",
        "jenkins",
        summary["stages_run"],
        substituted(summary),
        summary["result"],
    )
    assert summary["result"] == "SUCCESS", tail(log)
    deploys = effective_answer(jvariant.data, "deploy_target")
    expected = ["Install", "CI", "Publish"] + (["Deploy staging"] if deploys != "none" else [])
    assert summary["stages_run"] == expected, summary["stages"]
    if deploys != "none":  # no settings configured: the stage says which, and passes
        assert "deploy staging skipped: set DEPLOY_HOST, DEPLOY_SSH_KEY, DEPLOY_URL" in log
    assert summary["triggers"] == ["cron('H 5 * * *')"]
    assert_docker_not_run(summary, jvariant)
    publish = stage(summary, "Publish")
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


@pytest.mark.parametrize("jvariant", [_param(MAIN_VARIANT)])
def test_tag_releases(jvariant, generated_projects, offline_uv_env, tmp_path, record_ci_run):
    project = generated_projects(jvariant)
    workspace = jenkins_checkout(project, tmp_path / "workspace", tag="v1.0.0")
    remote = tmp_path / "remote"  # a copy: the shared project's remote stays untouched
    shutil.copytree(shared_remote(project), remote)
    use_dvc_remote(workspace, remote)
    summary, log = run_harness(workspace, {"TAG_NAME": "v1.0.0"}, env=offline_uv_env)
    record_ci_run(
        f"{jvariant.id} (tag v1.0.0)",
        "jenkins",
        summary["stages_run"],
        substituted(summary),
        summary["result"],
    )
    assert summary["result"] == "SUCCESS", tail(log)
    deploys = effective_answer(jvariant.data, "deploy_target")
    expected = ["Install", "CI", "Publish", "Release"]
    expected += ["Deploy production"] if deploys != "none" else []
    assert summary["stages_run"] == expected, summary["stages"]
    if deploys != "none":  # behind an approval, then skipped for want of settings
        approval = next(r for r in summary["recorded"] if r["step"].startswith("input("))
        assert approval["stage"] == "Deploy production", approval
        assert "deploy production skipped: set DEPLOY_HOST" in log
    card = workspace / "dist" / "release" / "MODEL_CARD.md"
    assert card.is_file(), tail(log)
    assert "v1.0.0" in card.read_text()
    archived = next(r for r in summary["recorded"] if "dist/release/**" in r["step"])
    assert "file(s) found" in archived["note"], archived


@pytest.mark.parametrize("jvariant", [_param(MAIN_VARIANT)])
def test_nightly_timer_monitors_and_checks_template_updates(
    jvariant, generated_projects, template_releases, offline_uv_env, tmp_path, record_ci_run
):
    project = clone(generated_projects(jvariant), tmp_path / "project")
    generated_from_release(project, template_releases, "v1.0.0")  # v2.0.0 is out
    workspace = jenkins_checkout(project, tmp_path / "workspace", branch="main")
    summary, log = run_harness(
        workspace,
        {"BRANCH_NAME": "main"},
        env=offline_uv_env,
        causes=["hudson.triggers.TimerTrigger$TimerTriggerCause"],
    )
    record_ci_run(
        f"{jvariant.id} (timer)",
        "jenkins",
        summary["stages_run"],
        substituted(summary),
        summary["result"],
    )
    assert summary["result"] == "SUCCESS", tail(log)
    # Install has no `when` (it sets up uv for Monitor); every other stage but Monitor is skipped.
    assert summary["stages_run"] == ["Install", "Monitor", "Template update"], summary["stages"]
    assert [s["script"] for s in summary["sh"] if s["stage"] == "Monitor"] == [
        "uv run poe monitoring"
    ]
    if effective_answer(jvariant.data, "deploy_target") != "none":  # the sequence's middle task
        assert "Poe => python scripts/deploy.py fetch-traffic production" in log, tail(log)
    assert all(s["exit"] == 0 for s in summary["sh"] if s["stage"] == "Monitor")
    drift = next(r for r in summary["recorded"] if "drift.json" in r["step"])
    assert "1 file(s) found" in drift["note"], drift
    update = next(s for s in summary["sh"] if s["stage"] == "Template update")
    assert update["script"] == "uv run poe template-update" and update["exit"] == 0, update
    assert "version 2.0.0 is available" in log, tail(log)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.xdist_group(MAIN_VARIANT.id)
def test_broken_change_fails(scenario, generated_projects, offline_uv_env, tmp_path, record_ci_run):
    project = generated_projects(MAIN_VARIANT)
    workspace = clone(project, tmp_path / "change")
    expected = SCENARIOS[scenario](workspace)  # commits the broken change
    workspace = jenkins_checkout(workspace, tmp_path / "workspace", branch="feature")
    # The change's clone has the project's DVC remote configured; pulls read it, nothing pushes.
    summary, log = run_harness(workspace, {"BRANCH_NAME": "feature"}, env=offline_uv_env)
    record_ci_run(
        f"{MAIN_VARIANT.id} ({scenario})",
        "jenkins",
        summary["stages_run"],
        substituted(summary),
        f"{summary['result']} (expected)" if summary["result"] == "FAILURE" else summary["result"],
    )
    assert summary["result"] == "FAILURE", tail(log)
    assert expected in log, tail(log)
    assert stage(summary, "CI")["status"] == "FAILURE"
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
def rendered_jenkinsfiles(template_src, tmp_path_factory) -> list[tuple[str, Path]]:
    """Every distinct Jenkinsfile the covering variants render (tasks skipped: text only)."""
    root = tmp_path_factory.mktemp("jenkinsfiles")
    distinct: dict[str, tuple[str, Path]] = {}
    for variant in JENKINS_VARIANTS:
        dst = render(template_src, root / variant.id, variant.data)
        text = (dst / "Jenkinsfile").read_text()
        distinct.setdefault(text, (variant.id, dst / "Jenkinsfile"))
    return list(distinct.values())


def test_jenkinsfiles_lint(rendered_jenkinsfiles):
    if not LINTER.is_file():
        pytest.skip("npm-groovy-lint is not installed (scripts/install-ci-tools)")
    node = str(NODE22) if NODE22.exists() else shutil.which("node")
    files = [str(path) for _, path in rendered_jenkinsfiles]
    proc = subprocess.run(
        [node, str(LINTER), "--noserver", "--failon", "error", *files],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def test_jenkinsfiles_parse(rendered_jenkinsfiles):
    """Parse-only run: evaluates every block of each distinct file, sh not run, `when` ignored."""
    for variant_id, path in rendered_jenkinsfiles:
        summary, log = run_harness(
            path.parent, {"BRANCH_NAME": "main"}, dry_run=True, jenkinsfile=path
        )
        assert summary["result"] == "SUCCESS", f"{variant_id}: {summary['errors']}\n{tail(log)}"
        names = [s["name"] for s in summary["model"]]
        assert names[:2] == ["Install", "CI"] and "Release" in names and "Monitor" in names, names
        assert ("Image" in names) == ("use_docker" in variant_id.split("-")), names


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
    (tmp_path / "config.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [
            GROOVY,
            "-cp",
            str(HARNESS_DIR),
            str(HARNESS_DIR / "run_pipeline.groovy"),
            str(tmp_path / "config.json"),
        ],
        env={**os.environ, "JAVA_HOME": java_home()},
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 1 and summary["result"] == "FAILURE", log
    assert summary["stages_run"] == ["Env", "Glob", "Combo", "Creds", "Fail"], summary["stages"]
    assert stage(summary, "After")["reason"] == "skipped due to earlier failure(s)"
    assert stage(summary, "MainOnly")["status"] == stage(summary, "Tag")["status"] == "SKIPPED"
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
