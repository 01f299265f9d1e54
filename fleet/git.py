"""git as the fleet uses it: read-only on the repositories, writes only in temporary clones."""

from __future__ import annotations

import subprocess
from pathlib import Path


class GitError(RuntimeError):
    pass


def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise GitError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "")
    return result.stdout.strip()


def clone(location: str, dst: Path) -> Path:
    git("clone", "--quiet", location, str(dst))
    return dst


def origin_url(repo: Path) -> str | None:
    """The repository's `origin` remote, or None when it has none."""
    try:
        return git("config", "--get", "remote.origin.url", cwd=repo) or None
    except GitError:
        return None


def remote_branches(remote: str, pattern: str) -> list[str]:
    """Branch names on `remote` matching `pattern` (e.g. `template-update/*`)."""
    output = git("ls-remote", "--heads", remote, pattern)
    return sorted(line.split("refs/heads/", 1)[1] for line in output.splitlines() if line)


def is_dirty(repo: Path) -> bool:
    return bool(git("status", "--porcelain", cwd=repo))
