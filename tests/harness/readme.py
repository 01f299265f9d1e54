"""The commands of a generated README's fenced shell blocks, run as a user would run them."""

from __future__ import annotations

import re
from pathlib import Path

from tests.harness.commands import run

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}


def shell_commands(readme: Path) -> list[str]:
    """Every command line of the file's shell blocks (comments and blank lines left out)."""
    commands = []
    for language, body in _FENCE.findall(readme.read_text(encoding="utf-8")):
        if language in SHELL_LANGUAGES:
            lines = [line.strip() for line in body.replace("\\\n", " ").splitlines()]
            commands += [line for line in lines if line and not line.startswith("#")]
    return commands


def run_readme_commands(project: Path, not_run: dict[str, str], env: dict[str, str]) -> None:
    """Run each shell command of project's README.md with bash in the project, except those in
    not_run (command -> why: the external system it needs, or the test that runs it); print
    what happened to each, and fail on a failing command or a stale not_run entry."""
    commands = shell_commands(project / "README.md")
    stale = set(not_run) - set(commands)
    assert not stale, f"not_run lists commands the README no longer has: {sorted(stale)}"
    for command in commands:
        if command in not_run:
            print(f"README: not run here: {command}  ({not_run[command]})")
            continue
        print(f"README: $ {command}")
        run(["bash", "-euo", "pipefail", "-c", command], project, env)
