"""Faults injected into a generated project's own processes, at a moment a test chooses.

A `sitecustomize` module on PYTHONPATH is imported by every Python process the project starts
(uv run, poe, DVC's stages); the one below acts only in the train stage: it makes joblib.dump
write half of the model to the path it was given, then records the process id and waits to be
killed. The test then stops the stage (or poe) exactly while the model is being saved. The
other (PAUSE) holds any Python process, the update command or Copier, just before it starts a
chosen command, so that a test interrupts an update at that moment.
Disks that are full or read-only are small tmpfs mounts.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SITECUSTOMIZE = """
import os
import sys

if "train" in sys.argv and os.environ.get("FAULT_SAVING_MARKER"):
    import io
    import time

    import joblib

    def _half_a_model(value, filename, *args, **kwargs):
        buffer = io.BytesIO()
        _dump(value, buffer, *args, **kwargs)
        with open(filename, "wb") as out:
            out.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            out.flush()
            with open(os.environ["FAULT_SAVING_MARKER"], "w") as marker:
                marker.write(str(os.getpid()))
            time.sleep(300)  # killed here, half written

    _dump, joblib.dump = joblib.dump, _half_a_model
"""


PAUSE = """
import os
import subprocess
import time

_words = os.environ.get("FAULT_PAUSE_BEFORE", "").split()
_marker = os.environ.get("FAULT_PAUSE_MARKER", "")

if _words and _marker:
    _start = subprocess.Popen.__init__

    def _paused_start(self, args, *more, **options):
        argv = [str(arg) for arg in args] if isinstance(args, (list, tuple)) else [str(args)]
        if all(word in argv for word in _words) and not os.path.exists(_marker):
            with open(_marker, "w") as marker:
                marker.write(str(os.getpid()))
            time.sleep(300)  # interrupted here
        _start(self, args, *more, **options)

    subprocess.Popen.__init__ = _paused_start
"""


def pausing_before(directory: Path, *words: str) -> tuple[dict[str, str], Path]:
    """The environment under which the first Python process about to start a command holding
    all of words (argv items) waits instead, once, and the file that then holds its pid."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(PAUSE)
    marker = directory / "paused.pid"
    marker.unlink(missing_ok=True)
    env = {"PYTHONPATH": str(directory), "FAULT_PAUSE_BEFORE": " ".join(words),
           "FAULT_PAUSE_MARKER": str(marker)}  # fmt: skip
    return env, marker


def saving_blocks(directory: Path) -> tuple[dict[str, str], Path]:
    """The environment under which the train stage blocks half-way through saving its model,
    and the file that then holds the stage's process id."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "sitecustomize.py").write_text(SITECUSTOMIZE)
    marker = directory / "saving.pid"
    marker.unlink(missing_ok=True)
    env = {"PYTHONPATH": str(directory), "FAULT_SAVING_MARKER": str(marker)}
    return env, marker


def wait_for_pid(marker: Path, timeout: float = 300) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.is_file() and marker.read_text():
            return int(marker.read_text())
        time.sleep(0.2)
    raise AssertionError(f"the stage never reached the save ({marker} not written)")


def alive(pid: int) -> bool:
    """Whether pid is a running process (a zombie, killed and not yet reaped, is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return not alive(pid)


@contextmanager
def mounted_tmpfs(path: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs mounted at path: a disk that fills up (size), or one that cannot be
    written (read_only). Mounting needs root with CAP_SYS_ADMIN: the test is skipped without."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a {size} tmpfs needs root: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=True)
