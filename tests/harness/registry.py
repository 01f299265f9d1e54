"""A clone of a cached generated project for walking its model registry
(tests/test_model_registry.py, tests/test_deploy.py): its DVC outputs copied in, the original's
environment reused, and the project's CLI driven in one long-lived process."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

from tests.harness.commands import run
from tests.harness.git import commit
from tests.harness.render import clone

PACKAGE = "my_model"
QUIET = {"NO_COLOR": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}


class Result:
    def __init__(self, code: int, stdout: str, stderr: str):
        self.returncode, self.stdout, self.stderr = code, stdout, stderr


# The project's CLI (`python -m my_model ARGS`, its main()) in one long-lived process: each
# request line runs main(args) with the given environment and answers with the exit code and
# what it printed. The registry is read afresh by every command (git tags, the MLflow store),
# so this is what separate processes see, without importing GTO or MLflow twenty times.
DRIVER = f"""
import contextlib, io, json, os, sys
from {PACKAGE}.mlops.cli import main
for line in sys.stdin:
    request = json.loads(line)
    os.environ.update(request["env"])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(request["args"])
        except SystemExit as exc:
            code = exc.code
    for name in request["env"]:
        os.environ.pop(name)
    answer = {{"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}}
    print("@@", json.dumps(answer), flush=True)
"""


class Project:
    """A clone of a generated project with its DVC outputs copied in, run with the original's
    environment (its bin/ first on PATH, for `dvc repro`'s `python -m ...` stages)."""

    def __init__(self, original: Path, work: Path, env: dict[str, str]):
        self.path = clone(original, work)
        self.original = original
        for outputs in ("data", "models"):
            shutil.copytree(original / outputs, self.path / outputs, dirs_exist_ok=True)
        bin_dir = original / ".venv" / "bin"
        self.env = {**os.environ, **QUIET, **env, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
        self.env.pop("VIRTUAL_ENV", None)
        self.python = str(bin_dir / "python")
        self.driver = subprocess.Popen(
            [self.python, "-c", DRIVER], cwd=self.path, env=self.env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip

    def close(self) -> None:
        self.driver.stdin.close()
        self.driver.wait(timeout=60)

    def cli(self, *args: str, check: bool = True, env: dict[str, str] | None = None) -> Result:
        self.driver.stdin.write(json.dumps({"args": list(args), "env": env or {}}) + "\n")
        self.driver.stdin.flush()
        line = ""
        while not line.startswith("@@ "):
            line = self.driver.stdout.readline()
            assert line, f"the CLI process ended (exit {self.driver.wait()})"
        answer = json.loads(line[3:])
        result = Result(answer["code"], answer["stdout"], answer["stderr"])
        if check:
            assert result.returncode == 0, f"{args}: {result.returncode}\n{result.stderr}"
        return result

    def models(self) -> dict[str, dict]:
        return {v["version"]: v for v in json.loads(self.cli("models", "--json").stdout)}

    def holder(self, stage: str) -> str:
        return self.cli("models", "--stage", stage).stdout.strip()


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def retrain(project: Project) -> None:
    """A second model: fewer trees, reproduced and committed as a team would."""
    params_file = project.path / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["train"]["n_estimators"] = 7
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    run(["dvc", "repro"], project.path, project.env, timeout=600)
    commit(project.path, "Fewer trees", add_all=False)
