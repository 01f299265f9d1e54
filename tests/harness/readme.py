"""The commands of a generated repository's README and how-to page (docs/how-to.md), their fenced
shell blocks, run as a user would run them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.harness.commands import run
from tests.harness.services import api_command, free_port, http_ok, service

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


# The generated pages whose shell commands a user copies: the team's README, the template's how-to.
PAGES = ("README.md", "docs/how-to.md")
# Where `poe serve` listens: a command sending a request there runs against the served model.
SERVED = "127.0.0.1:8000"


def run_readme_commands(project: Path, not_run: dict[str, str], env: dict[str, str]) -> None:
    """Run each shell command of project's README.md and docs/how-to.md with bash in the
    project, except those in not_run (command -> why: the external system it needs, or the test
    that runs it); print what happened to each, and fail on a failing command, a page without
    commands or a stale not_run entry."""
    commands = []
    for page in PAGES:
        found = shell_commands(project / page)
        assert found, f"{page} has no shell commands: the harness reads none of it"
        commands += [(page, command) for command in found]
    stale = set(not_run) - {command for _, command in commands}
    assert not stale, f"not_run lists commands the pages no longer have: {sorted(stale)}"
    for page, command in commands:
        if command in not_run:
            print(f"{page}: not run here: {command}  ({not_run[command]})")
            continue
        print(f"{page}: $ {command}")
        if SERVED in command:
            run_against_the_served_model(project, command, env)
        else:
            run(["bash", "-euo", "pipefail", "-c", command], project, env)


def run_against_the_served_model(project: Path, command: str, env: dict[str, str]) -> None:
    """A command sending a request to `poe serve`'s address, run while the project's model is
    served as `poe serve` serves it, on a free port (the one change made to the command)."""
    package = yaml.safe_load((project / ".copier-answers.yml").read_text())["package_name"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = project / ".git" / "readme-api.log"
    with service(
        api_command(package, port), lambda: http_ok(f"{base}/health"), project, env, 120, log
    ):
        request = command.replace(SERVED, f"127.0.0.1:{port}")
        run(["bash", "-euo", "pipefail", "-c", request], project, env)
