"""The list of repositories: one a line, `SOURCE [label ...] [github=OWNER/REPO | gitlab=PATH]`.

SOURCE is a local path (relative to the list file) or a git URL; `#` starts a comment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

URL = re.compile(r"^([a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)")  # scheme:// or scp-like user@host:
FORGES = ("github", "gitlab")


@dataclass
class RepoEntry:
    source: str  # as written in the list
    location: str  # absolute path or URL
    labels: list[str] = field(default_factory=list)
    forge: dict[str, str] = field(default_factory=dict)  # {"github": "acme/churn"}

    @property
    def is_local(self) -> bool:
        return not URL.match(self.location)


def read_repos(list_file: Path) -> list[RepoEntry]:
    entries = []
    for line in list_file.read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        source, rest = words[0], words[1:]
        location = source if URL.match(source) else str((list_file.parent / source).resolve())
        forge = dict(w.split("=", 1) for w in rest if w.partition("=")[0] in FORGES)
        labels = [w for w in rest if w.partition("=")[0] not in FORGES]
        entries.append(RepoEntry(source, location, labels, forge))
    return entries
