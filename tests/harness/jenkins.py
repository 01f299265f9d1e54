"""Run a generated Jenkinsfile for real without a Jenkins controller.

No Jenkins controller is installable offline, so jenkins/PipelineHarness.groovy evaluates the
REAL Jenkinsfile with the real Groovy parser (Debian's groovy 2.4, the Groovy line Jenkins uses)
and executes it the way Jenkins does: environment (with fake credentials given here), stages in
order, `when` conditions, `post` blocks, and `sh` steps that really run in a Jenkins-like
workspace (jenkins_checkout: a detached checkout whose refspec fetches only the built branch, as
a multibranch job does). Steps that need a controller (junit, archiveArtifacts, ...) are
recorded, never counted as passed; junit and archiveArtifacts are checked against the files they
name. Tools the runner lacks (docker, unless the test gives it a daemon) make their `sh` steps
"not run", never passed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tests.harness.ci_run import CiRun
from tests.harness.git import git
from tests.harness.render import REPO_ROOT, clone

HARNESS_DIR = Path(__file__).resolve().parent / "jenkins"
GROOVY = shutil.which("groovy")
LINTER = REPO_ROOT / ".tools" / "node_modules" / "npm-groovy-lint" / "lib" / "index.js"
# npm-groovy-lint 18 needs Node >= 22.15 (its import-fresh 4 refuses older ones); Node 22 from
# npm (package `node@22`) is used when installed there, else the system node.
NODE22 = REPO_ROOT / ".tools" / "node22" / "node_modules" / ".bin" / "node"
PROVIDER = "jenkins"
NO_DOCKER = {"docker": "no Docker daemon"}
STATUS = {"SUCCESS": "success", "FAILURE": "failure", "SKIPPED": "skipped", "NOT_RUN": "not run"}


def java_home() -> str:
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    assert java, "no java on PATH: Debian's groovy needs a JDK"
    return str(Path(os.path.realpath(java)).parents[1])


def jenkins_checkout(
    project: Path, dst: Path, branch: str | None = None, tag: str | None = None
) -> Path:
    """A workspace as a multibranch job checks it out: detached HEAD, and a refspec that fetches
    only the built branch or tag (so origin/main exists only if the Jenkinsfile fetches it)."""
    clone(project, dst)
    if tag:
        git(dst, "tag", tag)
        refspec = f"+refs/tags/{tag}:refs/tags/{tag}"
    else:
        refspec = f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
    git(dst, "config", "remote.origin.fetch", refspec)
    git(dst, "checkout", "--quiet", "--detach")
    for ref in git(
        dst, "for-each-ref", "--format=%(refname)", "refs/remotes", "refs/heads"
    ).split():
        git(dst, "update-ref", "-d", ref)
    return dst


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


def run_groovy(config: dict, config_file: Path) -> tuple[dict, str, int]:
    """The harness run on a config: (its JSON summary, the log, the exit code)."""
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
    lines = proc.stdout.strip().splitlines()
    assert lines, f"the harness printed nothing:\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1]), proc.stdout + proc.stderr, proc.returncode


def run_jenkinsfile(
    workspace: Path,
    context: dict[str, str],
    *,
    variant: str,
    env: dict[str, str] | None = None,
    causes: list[str] | None = None,
    dry_run: bool = False,
    jenkinsfile: Path | None = None,
    credentials: dict | None = None,
    unavailable: dict[str, str] | None = None,
) -> CiRun:
    """Run the Jenkinsfile; credentials the test gives (real ones, e.g. a deploy key made by
    the test) are added to fake values for every other credential ID the file reads.
    run.details is the harness's summary (stages, sh, recorded, errors, triggers, model); the
    trigger is the build's cause: a timer, a tag or a branch."""
    jenkinsfile = jenkinsfile or workspace / "Jenkinsfile"
    credentials = {**fake_credentials(jenkinsfile.read_text()), **(credentials or {})}
    if not dry_run and "GIT_COMMIT" not in context:
        context = {**context, "GIT_COMMIT": git(workspace, "rev-parse", "HEAD")}
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
    summary, log, code = run_groovy(config, workspace.parent / f"{workspace.name}-harness.json")
    (workspace.parent / f"{workspace.name}-jenkins.log").write_text(log)
    assert code == (0 if summary["result"] == "SUCCESS" else 1), log[-3000:]
    for secret in credentials.values():
        value = secret["password"] if isinstance(secret, dict) else secret
        assert value not in log, "a credential leaked into the build log unmasked"
    if dry_run:
        trigger = "parse only"
    elif any("TimerTrigger" in cause for cause in causes or []):
        trigger = "timer"
    elif "TAG_NAME" in context:
        trigger = f"tag {context['TAG_NAME']}"
    else:
        trigger = f"branch {context.get('BRANCH_NAME', '?')}"
    return CiRun(
        provider=PROVIDER,
        variant=variant,
        trigger=trigger,
        passed=summary["result"] == "SUCCESS",
        jobs={s["name"]: STATUS.get(s["status"], s["status"]) for s in summary["stages"]},
        steps_run=[s["script"] for s in summary["sh"] if s.get("exit") is not None],
        substituted=substituted(summary),
        log=log,
        command=[GROOVY or "groovy", str(HARNESS_DIR / "run_pipeline.groovy")],
        details=summary,
    )


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


def stage(run: CiRun, name: str) -> dict:
    """One stage of the run's summary (status, reason, not_run)."""
    return next(s for s in run.details["stages"] if s["name"] == name)


def stages_run(run: CiRun) -> list[str]:
    return run.details["stages_run"]
