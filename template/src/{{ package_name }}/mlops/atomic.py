"""Outputs written whole or not at all.

A file is written beside its destination under a temporary name, flushed to disk, then renamed
over it: a stage killed while writing (or failing half-way) leaves the previous file as it was,
never a truncated one. A temporary file a killed writer could not remove is removed by the next
write of the same file.
"""

import glob
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def written_atomically(path: Path | str) -> Iterator[Path]:
    """A temporary path to write path's new content to; renamed over path when the block ends
    without an error, removed when it raises.

        with written_atomically(out) as temporary:
            joblib.dump(model, temporary)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    for stale in glob.glob(glob.escape(str(path.parent / prefix)) + "*.tmp"):
        Path(stale).unlink(missing_ok=True)
    try:
        descriptor, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
    except OSError as exc:  # named after the file meant, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())  # on disk before the rename makes it the file
        temporary.chmod(mode)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomically(path: Path | str, text: str) -> None:
    """path's content replaced by text (UTF-8) whole, or left as it was."""
    with written_atomically(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
