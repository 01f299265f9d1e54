"""Print the CHANGELOG.md entry of one version (for release notes); exit 1 if it has none.

Usage: python scripts/changelog_entry.py v1.2.0
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CHANGELOG = Path(__file__).resolve().parents[1] / "CHANGELOG.md"


def entry(version: str, text: str) -> str | None:
    version = version.removeprefix("v")
    heading = re.compile(rf"^## \[{re.escape(version)}\][^\n]*\n", re.MULTILINE)
    match = heading.search(text)
    if match is None:
        return None
    following = re.compile(r"^## \[", re.MULTILINE).search(text, match.end())
    body = text[match.end() : following.start() if following else len(text)].strip()
    return body or None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: changelog_entry.py VERSION", file=sys.stderr)
        return 2
    body = entry(argv[0], CHANGELOG.read_text())
    if body is None:
        print(f"CHANGELOG.md has no entry for {argv[0]}: add one before releasing", file=sys.stderr)
        return 1
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
