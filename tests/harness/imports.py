"""What a statement imports when it runs in a generated project's own interpreter.

Issue 15: the CLI's `--help` must not pay for the data and training libraries, and the API's
start not for DVC, the trackers or PyTorch's compiler stack (torch._dynamo, which building a
torch.optim optimizer imports): only the commands that use them import them.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness.commands import run

WATCHED = (
    "pandas", "pandera", "sklearn", "torch", "torch._dynamo", "dvc", "dvclive", "mlflow",
    "fastapi",
)  # fmt: skip
HELP = """
from {package}.mlops.cli import main
try:
    main(["--help"])
except SystemExit:
    pass
"""
API_START = """
from fastapi.testclient import TestClient
from {package}.mlops.serve import app
with TestClient(app) as client:  # the app's start: the model and its metadata loaded
    assert client.get("/health").json() == {{"status": "ok"}}
"""
MARK = "watched modules imported:"


def imported(project: Path, statement: str, package: str) -> set[str]:
    """The WATCHED modules in sys.modules once statement (formatted with package) has run in
    the project's .venv, from the project's root."""
    probe = (
        f"import sys\n{statement.format(package=package)}\n"
        f"print({MARK!r}, *(m for m in {WATCHED!r} if m in sys.modules))\n"
    )
    python = project / ".venv" / "bin" / "python"
    output = run([str(python), "-c", probe], project).stdout
    (line,) = [line for line in output.splitlines() if line.startswith(MARK)]
    return set(line.removeprefix(MARK).split())
