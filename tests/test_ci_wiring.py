"""The wiring check itself (tests/harness/wiring.py), which each provider's static test runs
on every distinct rendering of its files: it splits shell blocks as the shell runs them, and
it fails on a long block or on project work done outside a poe task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.wiring import assert_blocks_are_wiring, commands


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


@dataclass
class _Rendering:
    answers: dict
    directory: Path


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("uv run poe ci\nuv run poe push\nuv run poe report\nuv run poe gate", "over three lines"),
        ("git fetch origin main && uv run poe ci", "git fetch origin main"),
    ],
)
def test_the_check_fails_on_work_outside_poe(script, message, tmp_path):
    (tmp_path / ".gitlab-ci.yml").write_text(
        "validate:\n  script:\n    - |\n"
        + "".join(f"      {line}\n" for line in script.split("\n"))
    )
    with pytest.raises(AssertionError, match=message):
        assert_blocks_are_wiring([_Rendering({}, tmp_path)])
