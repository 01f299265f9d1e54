"""DVC remote access that degrades gracefully: CI and new clones pull when they can.

When the default remote cannot be reached (a CI runner and a local-directory remote, or no
credentials), say so in one line and let `dvc repro` recompute instead of failing.
"""

import subprocess
from pathlib import Path
from urllib.parse import urlparse


def _dvc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", *args], capture_output=True, text=True)


def default_remote() -> tuple[str, str] | None:
    """(name, url) of the default DVC remote from the merged DVC config, or None."""
    from dvc.repo import Repo

    with Repo() as repo:
        name = repo.config["core"].get("remote")
        if not name:
            return None
        return name, str(repo.config["remote"][name]["url"])


def _local_path(url: str) -> Path | None:
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else url).expanduser()
    return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no details"


def _dvc_error(stderr: str) -> str:
    """DVC's own error lines (`ERROR:`), not the support footer it ends with: the cause (e.g.
    "Unable to locate credentials") comes first, a summary ("6 files failed") last."""
    errors = [
        line.strip().removeprefix("ERROR:").strip()
        for line in stderr.splitlines()
        if line.strip().startswith("ERROR:")
    ]
    return "; ".join(dict.fromkeys(errors)) if errors else _last_line(stderr)


def sync(direction: str) -> int:
    """`dvc pull` or `dvc push` when the remote is reachable. Returns an exit code."""
    remote = default_remote()
    if remote is None:
        print(f"dvc {direction}: no default DVC remote configured; skipping")
        return 0
    name, url = remote
    local = _local_path(url)
    if local is not None and direction == "pull" and not local.is_dir():
        print(
            f"dvc pull: remote '{name}' ({url}) is not reachable from this machine; "
            "dvc repro will recompute the pipeline"
        )
        return 0
    args = ["pull", "--allow-missing"] if direction == "pull" else ["push"]
    result = _dvc(*args)
    if result.returncode == 0:
        print(f"dvc {direction}: {_last_line(result.stdout)} (remote '{name}')")
        return 0
    if direction == "pull":
        print(
            f"dvc pull: remote '{name}' ({url}) could not be read "
            f"({_dvc_error(result.stderr)}); dvc repro will recompute the pipeline"
        )
        return 0
    print(f"dvc push to remote '{name}' ({url}) failed: {_dvc_error(result.stderr)}")
    return 1
