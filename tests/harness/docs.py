"""Commands as the docs write them: a Markdown file's fenced bash blocks, read at test time so
a test runs what a user would copy."""

from __future__ import annotations

import re
from pathlib import Path


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
