"""Migration steps that `_migrations` in copier.yml run when an update crosses a release.

Usage (cwd = the repository being updated):
    python migrations.py rename OLD NEW   move a file the team owns, keeping its content and
                                          git history (git mv); idempotent

Team-owned files are excluded from updates (copier.yml `_exclude`), so when a release moves one,
only a migration can carry the team's version across. Each step prints one line saying what
it did or why it did nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def rename(old: Path, new: Path) -> str:
    if not old.exists():
        return f"migration: {old} not found (already moved or deleted on purpose); nothing to do"
    if new.exists():
        return f"migration: {new} already exists; {old} left as it is for you to merge"
    new.parent.mkdir(parents=True, exist_ok=True)
    tracked = (
        subprocess.run(
            ["git", "ls-files", "--error-unmatch", str(old)], capture_output=True
        ).returncode
        == 0
    )
    if tracked:
        subprocess.run(["git", "mv", str(old), str(new)], check=True)
    else:
        old.rename(new)
    return f"migration: moved {old} -> {new}"


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "rename":
        print(rename(Path(argv[1]), Path(argv[2])))
        return 0
    print(
        f"migrations.py: unknown step {' '.join(argv)!r}; expected: rename OLD NEW", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
