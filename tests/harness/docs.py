"""Commands as the template's docs and a generated README write them, read at test time, so a
test runs what a user copies."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tests.harness.render import REPO_ROOT


def fenced_block(markdown: Path, heading: str, language: str = "bash") -> str:
    """The first ```language block (bash by default) after the heading, as written."""
    text = markdown.read_text(encoding="utf-8")
    start = text.index(heading)
    match = re.search(rf"```{language}\n(.*?)```", text[start:], re.DOTALL)
    assert match, f"no {language} block under {heading!r} in {markdown}"
    return match.group(1)


def command_line(markdown: Path, heading: str, contains: str) -> str:
    """The line of the first bash block under heading that contains `contains`, without its
    comment."""
    lines = fenced_block(markdown, heading).splitlines()
    return next(line for line in lines if contains in line).split("  #")[0]


def answer_change_command(data: list[str]) -> str:
    """docs/updating.md's command for changing answers, with one `--data` for each of data."""
    updating = REPO_ROOT / "docs" / "updating.md"
    update = command_line(updating, "## Changing an answer", "poe update")
    return re.sub(r"--data \S+", " ".join(f"--data {shlex.quote(d)}" for d in data), update)
