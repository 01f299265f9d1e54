"""Run a command and, by default, assert that it succeeded, with its output in the message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(
    command: list[str],
    cwd: Path | None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
    check: bool = True,
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, command))} exited {result.returncode} in {cwd}\n"
            f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


def check_jsonschema(schema: str, paths, *options: str) -> subprocess.CompletedProcess:
    """check-jsonschema's verdict on files against one of its built-in schemas (offline)."""
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, *options]
    return run([*command, *map(str, paths)], None, check=False)
