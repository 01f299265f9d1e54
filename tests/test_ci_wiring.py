"""The generated CI files are wiring: every step that does project work is one `uv run poe` task.

Each provider's files (GitHub workflows, .gitlab-ci.yml, Jenkinsfile) are read from renderings
of the core variants plus the kubernetes and none deploy targets. Every shell block (GitHub
`run:`, GitLab `script` / `before_script` / `after_script` items, Jenkins `sh` steps) must be
at most three lines, and each command in it must be a `uv run poe` task or one of the few
wiring commands allowed below.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.harness.ci_variants import ALL_PROVIDERS, CORE
from tests.harness.render import render

MAX_LINES = 3
POE = re.compile(r"^uv run( --[\w-]+)* poe [\w-]+")
# Commands that set up the runner or hand results to the CI provider itself, not project work
# a developer would run locally:
WIRING = (
    re.compile(r"^uv sync\b"),  # install the locked environment the poe tasks run in
    re.compile(r"^command -v \w+$"),  # ...checking for a tool (uv, docker) the agent may lack
    re.compile(r"^python3 -m pip install --user uv$"),  # ...and installing it when missing
    re.compile(r"^apt-get (update|install)\b"),
    # Publishing to GitHub's release page: delivery wiring (GitLab uses its `release:` keyword).
    re.compile(r"^gh release create\b"),
    # GitLab's release job needs a script (its release: keyword does the work); it only prints.
    re.compile(r'^echo "Releasing model \$CI_COMMIT_TAG"$'),
)
SEPARATORS = re.compile(r"\n|;|&&|\|\||\|")
SHELL_KEYWORDS = re.compile(r"^(if|then|else|fi)\b\s*")
ASSIGNMENTS = re.compile(r"^(\w+=\S*\s+)+")
RENDERINGS = {
    **{variant.id: variant.data for variant in CORE},
    "kubernetes": {**ALL_PROVIDERS.data, "deploy_target": "kubernetes"},
    "no-deploy": {**ALL_PROVIDERS.data, "deploy_target": "none"},
}


def github_blocks(project: Path) -> list[tuple[str, str]]:
    blocks = []
    for workflow in sorted((project / ".github" / "workflows").glob("*.yml")):
        for job_id, job in yaml.safe_load(workflow.read_text())["jobs"].items():
            for index, step in enumerate(job.get("steps", [])):
                if "run" in step:
                    name = step.get("name", f"step {index + 1}")
                    blocks.append((f"{workflow.name} {job_id}: {name}", step["run"]))
    return blocks


def gitlab_blocks(project: Path) -> list[tuple[str, str]]:
    path = project / ".gitlab-ci.yml"
    if not path.is_file():
        return []
    blocks = []
    for job_id, job in yaml.safe_load(path.read_text()).items():
        if not isinstance(job, dict):
            continue
        for key in ("before_script", "script", "after_script"):
            items = job.get(key, [])
            for item in [items] if isinstance(items, str) else items:
                blocks.append((f".gitlab-ci.yml {job_id} {key}", item))
    return blocks


def jenkins_blocks(project: Path) -> list[tuple[str, str]]:
    path = project / "Jenkinsfile"
    if not path.is_file():
        return []
    steps = re.finditer(
        r"\bsh\s*\(?\s*(?:script:\s*)?('''|\"\"\"|'|\")(.*?)\1", path.read_text(), re.S
    )
    return [("Jenkinsfile sh", step.group(2)) for step in steps]


def commands(script: str) -> list[str]:
    """The commands of a shell block: split at separators, without control keywords, tests
    ([ ... ]), subshell parentheses and leading variable assignments."""
    found = []
    for part in SEPARATORS.split(script):
        command = SHELL_KEYWORDS.sub("", part.strip().strip("()").strip())
        command = ASSIGNMENTS.sub("", command)
        if command and not command.startswith("["):
            found.append(command)
    return found


@pytest.fixture(scope="module")
def blocks(template_src, tmp_path_factory) -> dict[tuple[str, str], list[str]]:
    """{(where, shell block): the renderings it appears in} over every rendering."""
    found: dict[tuple[str, str], list[str]] = {}
    for name, answers in RENDERINGS.items():
        project = render(template_src, tmp_path_factory.mktemp("wiring") / name, answers)
        for reader in (github_blocks, gitlab_blocks, jenkins_blocks):
            for where, script in reader(project):
                found.setdefault((where, script.strip()), []).append(name)
    return found


def test_every_provider_has_shell_blocks(blocks):
    """The readers found the steps of each provider (a reader broken by a format change would
    make the checks below pass on nothing)."""
    for provider in (".yml ", ".gitlab-ci.yml", "Jenkinsfile"):
        assert any(provider in where for where, _ in blocks), provider


def test_no_shell_block_over_three_lines(blocks):
    long = [
        f"{where} ({', '.join(names)}):\n{script}"
        for (where, script), names in blocks.items()
        if len(script.splitlines()) > MAX_LINES
    ]
    assert not long, "shell blocks over three lines (make them a poe task):\n" + "\n".join(long)


def test_every_command_is_a_poe_task_or_wiring(blocks):
    work = [
        f"{where} ({', '.join(names)}): {command}"
        for (where, script), names in blocks.items()
        for command in commands(script)
        if not POE.match(command) and not any(allowed.match(command) for allowed in WIRING)
    ]
    assert not work, "project work outside a poe task:\n" + "\n".join(work)


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("uv run poe ci", ["uv run poe ci"]),
        (
            'if [ -n "$X" ]; then uv run --no-sync poe push; fi',
            ["uv run --no-sync poe push"],
        ),
        (
            "command -v uv || PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --user uv",
            ["command -v uv", "python3 -m pip install --user uv"],
        ),
        (
            'echo "$P" | docker login -u u --password-stdin',
            ['echo "$P"', "docker login -u u --password-stdin"],
        ),
    ],
)
def test_commands_are_split_like_the_shell_runs_them(script, expected):
    assert commands(script) == expected
