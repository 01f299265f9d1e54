"""A generated project's local DVC remote: where it is, what it holds, pointing it elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

URL = re.compile(r"(?m)^(\s*url\s*=\s*)(.+)$")


def remote_dir(project: Path) -> Path:
    """The directory of the project's (local) DVC remote, from .dvc/config."""
    match = URL.search((project / ".dvc" / "config").read_text())
    assert match, f"no remote url in {project / '.dvc' / 'config'}"
    return Path(match.group(2).strip())


def remote_objects(remote: Path) -> set[str]:
    """md5s of the objects in a local DVC remote (files/md5/ab/cdef..., `.dir` dropped)."""
    assert remote.is_dir(), f"the DVC remote {remote} is not a directory on this runner"
    return {
        path.parent.name + path.name.removesuffix(".dir")
        for path in remote.rglob("*")
        if path.is_file() and path.parent.parent.name == "md5"
    }


def point_remote(project: Path, directory: Path) -> None:
    """Make .dvc/config (tracked: commit it) name directory as the remote's url."""
    config = project / ".dvc" / "config"
    config.write_text(URL.sub(lambda m: f"{m.group(1)}{directory}", config.read_text()))


def use_remote_locally(workspace: Path, directory: Path) -> None:
    """Point the workspace's default DVC remote at directory in the git-ignored
    .dvc/config.local, so a run's pushes land there instead of the shared project's remote."""
    name = re.search(r"remote\s*=\s*(\S+)", (workspace / ".dvc" / "config").read_text()).group(1)
    (workspace / ".dvc" / "config.local").write_text(
        f"['remote \"{name}\"']\n    url = {directory}\n"
    )
