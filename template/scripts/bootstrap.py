"""Set up a clone of this repository with one command, with any Python 3 (standard library only):

    python3 scripts/bootstrap.py

It finds an installed Python of the project's version (the one uv finds, else pyenv's,
uv-managed or the system's: uv itself never looks in pyenv's folders and would try to download
one), makes the environment with it (`uv sync --locked`), then runs `uv run poe setup` (git
hooks, then the data and models). The template's copy-time task finds the interpreter with this
same code. uv may be on PATH or installed as a module of this Python (`python3 -m pip install
uv`); nothing here needs a variable set.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = Path(".copier-answers.yml")
INSTALL_UV = "install uv: `python3 -m pip install uv` (https://docs.astral.sh/uv/)"


def uv_command() -> list[str] | None:
    """uv on PATH, else uv installed as a module of this interpreter (pip's scripts directory
    need not be on PATH, nor a pyenv shim up to date), else None."""
    found = shutil.which("uv")
    if found:
        return [found]
    return [sys.executable, "-m", "uv"] if importlib.util.find_spec("uv") else None


def project_python_version(answers: Path = ANSWERS) -> str:
    """The `python_version` answer the repository was made with (X.Y)."""
    match = re.search(
        r"^python_version:\s*['\"]?(\d+\.\d+)['\"]?\s*$", answers.read_text(), re.MULTILINE
    )
    if match is None:
        raise SystemExit(f"bootstrap: {answers} names no python_version; is this the repo's root?")
    return match.group(1)


def installed_pythons(version: str, env: dict[str, str] | os._Environ = os.environ) -> list[str]:
    """Where an interpreter of `version` may be installed without being on PATH: pyenv's
    versions, uv-managed ones, the system's, and Windows' `py` launcher."""
    home = Path(env.get("HOME") or Path.home())
    data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    roots = [
        (Path(env.get("PYENV_ROOT") or home / ".pyenv") / "versions", f"{version}.*/bin"),
        (
            Path(env.get("UV_PYTHON_INSTALL_DIR") or data / "uv" / "python"),
            f"cpython-{version}.*/bin",
        ),
    ]
    found = [
        str(directory / f"python{version}")
        for root, pattern in roots
        for directory in sorted(root.glob(pattern), reverse=True)  # newest patch release first
    ]
    found += [f"{prefix}/bin/python{version}" for prefix in ("/usr/local", "/usr")]
    launcher = shutil.which("py", path=env.get("PATH"))
    if launcher:
        where = subprocess.run(
            [launcher, f"-{version}", "-c", "import sys; print(sys.executable)"],
            capture_output=True,
            text=True,
        )
        found += [where.stdout.strip()] if where.returncode == 0 else []
    return found


def runs_as(python: str, version: str) -> bool:
    """Whether `python` starts and is `version` (a pyenv shim may exist and still fail)."""
    try:
        probe = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == version


def find_python(
    version: str,
    env: dict[str, str] | os._Environ = os.environ,
    uv: list[str] | None = None,
) -> str | None:
    """An interpreter of `version` that really runs: the one uv finds by itself (it never
    downloads here), else one installed where uv does not look. None when there is none."""
    found = subprocess.run(
        [*(uv or ["uv"]), "python", "find", version],
        capture_output=True,
        text=True,
        env={**env, "UV_PYTHON_DOWNLOADS": "never"},
    )
    candidates = [found.stdout.strip()] if found.returncode == 0 else []
    return next(
        (
            python
            for python in candidates + installed_pythons(version, env)
            if runs_as(python, version)
        ),
        None,
    )


def main() -> int:
    uv = uv_command()
    if uv is None:
        print(f"bootstrap: uv was not found; {INSTALL_UV}, then run this again", file=sys.stderr)
        return 1
    version = project_python_version()
    python = find_python(version, uv=uv)
    if python is None:
        print(
            f"bootstrap: Python {version} (this project's python_version) is not installed "
            f"here: install it (`uv python install {version}`, pyenv or your package manager), "
            "then run this again; nothing was changed.",
            file=sys.stderr,
        )
        return 1
    print(f"[bootstrap] Python {version}: {python}", flush=True)
    env = {**os.environ, "UV_PYTHON": python}
    for command in ([*uv, "sync", "--locked"], [*uv, "run", "--locked", "poe", "setup"]):
        print(f"[bootstrap] {shlex.join(command)}", flush=True)
        code = subprocess.run(command, env=env).returncode
        if code != 0:
            print(
                f"bootstrap: `{shlex.join(command)}` failed (exit {code}); fix the cause it "
                "printed, then run `python3 scripts/bootstrap.py` again",
                file=sys.stderr,
            )
            return code
    again = "uv" if shutil.which("uv") else "python3 -m uv"
    print(f"[bootstrap] done: `{again} run poe ci` runs what CI runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
