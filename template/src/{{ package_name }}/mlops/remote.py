"""DVC remote access that degrades gracefully: CI and new clones pull when they can.

When the default remote cannot be reached (a CI runner and a local-directory remote, or no
credentials), say so in one line and let `dvc repro` recompute instead of failing. The data set
itself cannot be recomputed, except the bundled sample: it is written again when its .dvc file
records the sample's bytes. Pull and repro run through DVC's Python API in this one process:
each `dvc` process would start and import DVC again.
"""

import hashlib
import logging
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from .config import RAW_DATA


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


_ERRNO = re.compile(r"\[Errno \d+\] ([^:']+)")
_FILES_FAILED = re.compile(r"(\d+) files? failed to (?:upload|download)")
_MD5 = re.compile(r"'([0-9a-f]{32})'")
_LONGEST_CAUSE = 300


def _workspace_paths() -> dict[str, str]:
    """md5 -> the workspace path DVC tracks with it (dvc.lock's and the .dvc files' outputs,
    and the files of a directory output, listed in its cached .dir manifest)."""
    import json

    import yaml

    outs = []
    pointers = [Path("dvc.lock"), *Path().glob("**/*.dvc")]
    for pointer in (p for p in pointers if p.is_file()):
        try:
            tracked = yaml.safe_load(pointer.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        stages = tracked.get("stages", {}).values() if pointer.name == "dvc.lock" else [tracked]
        for stage in stages:
            base = pointer.parent
            outs += [(base / out["path"], out.get("md5", "")) for out in stage.get("outs", [])]
    paths = {}
    for path, md5 in outs:
        paths[md5.removesuffix(".dir")] = str(path)
        manifest = Path(".dvc/cache/files/md5", md5[:2], md5[2:])
        if md5.endswith(".dir") and manifest.is_file():
            for entry in json.loads(manifest.read_text()):
                paths[entry["md5"]] = str(path / entry["relpath"])
    return paths


def _summary(errors: list[str]) -> str:
    """DVC's error lines, with its line per file that failed to transfer put in a few words:
    the causes (an OS error's message, e.g. "No space left on device"), how many files failed
    and the first of them. A remote that is full or read-only gives thousands of such lines."""
    transfers = [line for line in errors if line.startswith("failed to transfer")]
    if not transfers:
        return "; ".join(line[:_LONGEST_CAUSE] for line in dict.fromkeys(errors)) or "no details"
    causes: dict[str, None] = {}
    for line in transfers:
        errno = _ERRNO.search(line)
        cause = errno.group(1).strip() if errno else line.split(" - ", 1)[-1]
        causes.setdefault(cause[:_LONGEST_CAUSE], None)
    named = list(causes)
    text = "; ".join(named[:2]) + (f" and {len(named) - 2} other causes" if named[2:] else "")
    counted = next((m.group(0) for line in errors if (m := _FILES_FAILED.search(line))), None)
    counted = counted or f"{len(transfers)} files failed"
    md5 = _MD5.search(transfers[0])
    if md5 is None:
        return f"{text}: {counted}"
    first = _workspace_paths().get(md5.group(1)) or f"the file of md5 {md5.group(1)}"
    return f"{text}: {counted}, the first {first}"


def _dvc_error(stderr: str) -> str:
    """DVC's own error lines (`ERROR:`), not the support footer it ends with, summarised."""
    errors = [
        line.strip().removeprefix("ERROR:").strip()
        for line in stderr.splitlines()
        if line.strip().startswith("ERROR:")
    ]
    return _summary(errors) if errors else _last_line(stderr)[:_LONGEST_CAUSE]


def _remove_partial_files(remote: Path, since: float) -> int:
    """The partial files (`.<id>.tmp`) a failed or stopped push left in a local remote since it
    started: DVC writes each file under such a name, then renames it, and never removes one it
    could not finish. Only this push's (by time): another push may be writing its own."""
    removed = 0
    for partial in remote.glob("files/md5/*/.*.tmp"):
        try:
            if partial.stat().st_mtime >= since:
                partial.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def _pull_summary() -> str:
    """`dvc pull --allow-missing` through the API; DVC's own summary line."""
    from dvc.repo import Repo
    from dvc.utils.humanize import get_summary

    with Repo() as repo:
        result = repo.pull(allow_missing=True)
    return get_summary(result.get("stats", {}).items()) or "Everything is up to date."


def _causes(exc: BaseException | None) -> str:
    """An exception and its causes in one line, as DVC's own error line joins them."""
    messages = []
    while exc is not None:
        messages.append(str(exc))
        exc = exc.__cause__
    return " - ".join(message for message in messages if message)


class _ErrorLines(logging.Handler):
    """ERROR log lines while DVC runs in this process: the cause of a failed transfer (e.g.
    "Unable to locate credentials") is logged there (by dvc_data, not under `dvc`), the exception
    is only a summary."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        cause = _causes(record.exc_info[1]) if record.exc_info else ""
        self.lines.append(" - ".join(part for part in (record.getMessage(), cause) if part))


def sync(direction: str) -> int:
    """`dvc pull` or `dvc push` when the remote is reachable. Returns an exit code."""
    remote = default_remote()
    if remote is None:
        print(f"dvc {direction}: no default DVC remote configured; skipping")
        return 0
    name, url = remote
    local = _local_path(url)
    if direction == "pull":
        if local is not None and not local.is_dir():
            print(
                f"dvc pull: remote '{name}' ({url}) is not reachable from this machine; "
                "dvc repro will recompute the pipeline"
            )
            return 0
        from dvc.exceptions import DvcException

        errors = _ErrorLines()
        logging.getLogger().addHandler(errors)
        try:
            print(f"dvc pull: {_pull_summary()} (remote '{name}')")
        except DvcException as exc:
            causes = _summary([*errors.lines, _causes(exc) or "no details"])
            print(
                f"dvc pull: remote '{name}' ({url}) could not be read ({causes}); "
                "dvc repro will recompute the pipeline"
            )
        finally:
            logging.getLogger().removeHandler(errors)
        return 0
    # A push failure must read as DVC's own: its CLI, in a process of its own.
    started = time.time() - 1  # a file system's timestamps may be coarser than time()'s
    try:
        result = _dvc("push")
    except KeyboardInterrupt:  # Ctrl-C: dvc had it too
        result = subprocess.CompletedProcess(["dvc", "push"], -signal.SIGINT, "", "")
    if result.returncode == 0:
        print(f"dvc push: {_last_line(result.stdout)} (remote '{name}')")
        return 0
    if result.returncode < 0:
        cause = f"stopped by {signal.Signals(-result.returncode).name} before it finished"
    else:
        cause = _dvc_error(result.stderr)
    print(f"dvc push to remote '{name}' ({url}) failed: {cause}")
    if local is not None and local.is_dir():
        removed = _remove_partial_files(local, started)
        if removed:
            print(f"dvc push: removed the {removed} partial files it left in {local}")
    print("dvc push: run `uv run poe push` again once the cause is fixed")
    return 1


def restore_sample(raw: Path = RAW_DATA) -> bool:
    """Write the bundled sample where the data set belongs when the remote could not supply
    it and its .dvc file records the sample (the sample is deterministic: same bytes, same md5).
    Whether it was written; a team's own data is never replaced or recomputed."""
    import yaml

    pointer = raw.with_name(f"{raw.name}.dvc")
    if raw.exists() or not pointer.is_file():
        return False
    outs = (yaml.safe_load(pointer.read_text()) or {}).get("outs") or [{}]
    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / raw.name
        try:
            from ..data import make_sample

            make_sample(sample)
        except (ImportError, KeyError):  # no sample in data.py, or a contract of other columns
            return False
        digest = hashlib.md5(sample.read_bytes(), usedforsecurity=False).hexdigest()
        if digest != outs[0].get("md5"):
            return False
        raw.parent.mkdir(parents=True, exist_ok=True)
        sample.replace(raw)
    print(f"{raw}: the bundled sample, written again (its md5 is the one {pointer} records)")
    return True


def repair_stage_locks(path: Path = Path(".dvc", "tmp", "rwlock")) -> bool:
    """DVC rewrites its file of stage locks in place: a `dvc repro` stopped at that moment
    (Ctrl-C on `poe pipeline`) leaves it empty or cut, and every later DVC command fails on it
    ("JSON structure is corrupted"). It only names running DVC processes (DVC drops those of
    dead ones itself), so a file that does not parse holds nothing to keep. Whether it was
    removed."""
    import json

    try:
        json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False
    except ValueError:
        path.unlink()
        print(f"{path}: cut short by a stopped DVC run; removed (DVC writes it again)")
        return True
    return False


def pipeline() -> int:
    """Pull, then `dvc repro`, in this one process (DVC's own CLI, its own output)."""
    import sys

    from dvc.cli import main as dvc

    repair_stage_locks()
    sync("pull")
    if not restore_sample() and not RAW_DATA.exists():
        print(
            f"{RAW_DATA}: not in this checkout and not pulled: it exists only where it was "
            "added; run `uv run poe push` there (adopt-data's next steps), then pull again"
        )
    sys.stdout.flush()  # before the stages' own processes write
    return dvc(["repro"])
