"""CI files are wiring: every step that does project work is one `uv run poe` task.

Each provider's static test hands the shell blocks of its distinct renderings (GitHub `run:`,
GitLab `script` / `before_script` / `after_script` items, Jenkins `sh` steps) to
`assert_blocks_are_wiring`: a block is at most three lines, and each command in it is a
`uv run poe` task or one of the few wiring commands allowed below.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

MAX_LINES = 3
POE = re.compile(r"^uv run( --[\w-]+)* poe [\w-]+")
# Commands that set up the runner or hand results to the CI provider itself, not project work
# a developer would run locally:
WIRING = (
    re.compile(r"^uv sync\b"),  # install the locked environment the poe tasks run in
    re.compile(r"^command -v \w+$"),  # ...checking for a tool (uv, docker) the agent may lack
    re.compile(r"^python3 -m pip install --user uv==[\d.]+$"),  # ...installing it, pinned
    re.compile(r"^apt-get (update|install)\b"),
    # Publishing to GitHub's release page: delivery wiring (GitLab uses its `release:` keyword).
    re.compile(r"^gh release create\b"),
    # GitLab's release job needs a script (its release: keyword does the work); it only prints.
    re.compile(r'^echo "Releasing model \$CI_COMMIT_TAG"$'),
)
SEPARATORS = re.compile(r"\n|;|&&|\|\||\|")
SHELL_KEYWORDS = re.compile(r"^(if|then|else|fi)\b\s*")
ASSIGNMENTS = re.compile(r"^(\w+=\S*\s+)+")


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


def assert_blocks_are_wiring(renderings: list) -> None:
    """Every shell block of these renderings (tests.harness.renderings.Rendering) is short and
    runs only poe tasks or allowed wiring; at least one block was found."""
    readers = (github_blocks, gitlab_blocks, jenkins_blocks)
    found: dict[tuple[str, str], list[str]] = {}
    for rendering in renderings:
        for reader in readers:
            for where, script in reader(rendering.directory):
                found.setdefault((where, script.strip()), []).append(str(rendering.answers))
    assert found, "no shell block found: a reader no longer understands the provider's files"
    long = [
        f"{where} ({names[0]}):\n{script}"
        for (where, script), names in found.items()
        if len(script.splitlines()) > MAX_LINES
    ]
    assert not long, "shell blocks over three lines (make them a poe task):\n" + "\n".join(long)
    work = [
        f"{where} ({names[0]}): {command}"
        for (where, script), names in found.items()
        for command in commands(script)
        if not POE.match(command) and not any(allowed.match(command) for allowed in WIRING)
    ]
    assert not work, "project work outside a poe task:\n" + "\n".join(work)
