"""The one git helper of the tests: git(cwd, *args) with a test identity, and commits."""

from __future__ import annotations

import subprocess
from pathlib import Path

IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]


def git(cwd: Path, *args: str) -> str:
    """Run git in cwd as the test identity; its stdout without trailing whitespace. A failure
    raises with git's own message."""
    result = subprocess.run(["git", *IDENTITY, *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}:\n{result.stderr}")
    return result.stdout.rstrip()


def commit(cwd: Path, message: str, *, add_all: bool = True, allow_empty: bool = False) -> str:
    """Commit without hooks (CI runs what is committed) every change, new files included, or
    with add_all=False only changes to tracked files (a CI run's untracked outputs stay out);
    the new sha."""
    if add_all:
        git(cwd, "add", "--all")
    options = ["--quiet", "--no-verify", "--all"] + ["--allow-empty"] * allow_empty
    git(cwd, "commit", *options, "-m", message)
    return git(cwd, "rev-parse", "HEAD")
