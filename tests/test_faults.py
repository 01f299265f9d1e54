"""Faults in a generated project end in one of two states: done, or as before with a line that
says what happened (issue 31), in a clone of the cached project.

- The train stage killed (SIGKILL) while it saves the model: the previous model stays whole and
  loads; the next run saves the new one and removes the half-written temporary file.
- `poe pipeline` stopped as a terminal's Ctrl-C stops it (SIGINT to its process group) and as a
  CI runner cancels it (SIGTERM to uv): its stage stops with it, the model stays whole.
- A push to a full remote (a 64 KB tmpfs) and to a read-only one: a few short lines naming the
  cause, the count of files and the first, and no partial file left in the remote.
- An output directory that cannot be written (a read-only tmpfs over reports/): one line naming
  the file, no traceback.
- The copy-time set-up (hooks/post_copy.py) killed at a step and run again: it resumes, and a
  clone of the result has its lock, its pipeline's state and its data (a project of its own).

The save is interrupted at a chosen moment by a sitecustomize module (tests/harness/faults.py).
The full and read-only disks are tmpfs mounts, which need root: those tests skip without it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.harness.ci_variants import ALL_PROVIDERS
from tests.harness.commands import run
from tests.harness.faults import mounted_tmpfs, saving_blocks, wait_for_pid, wait_gone
from tests.harness.git import git
from tests.harness.render import clone, render

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(ALL_PROVIDERS.id)]

PACKAGE = "my_model"


def sh(*command: str, cwd: Path, check: bool = True, env: dict | None = None):
    """A command in the project as a developer runs it: the session's environment without its
    virtual environment (under `uv run pytest`, uv would warn on stderr that VIRTUAL_ENV is not
    the project's), and no colours."""
    session = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
    return run(list(command), cwd, {**session, "NO_COLOR": "1", **(env or {})}, check=check)


@pytest.fixture
def work(generated_projects, tmp_path) -> Path:
    """A clone with its data and model pulled, as a team member has it."""
    work = clone(generated_projects(ALL_PROVIDERS), tmp_path / "work")
    sh("uv", "run", "poe", "pull", cwd=work)
    return work


def retrain(work: Path) -> None:
    """A change of params that makes the next `dvc repro` train again."""
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["train"]["n_estimators"] += 1
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def start(command: list[str], work: Path, env: dict[str, str]) -> subprocess.Popen:
    """command in a session of its own, as a terminal's foreground job or a CI step runs it."""
    return subprocess.Popen(
        command,
        cwd=work,
        env={**os.environ, "NO_COLOR": "1", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen, timeout: float = 120) -> str:
    try:
        return process.communicate(timeout=timeout)[0]
    finally:
        if process.poll() is None:  # whatever happens, nothing of the run is left behind
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def model_loads(work: Path) -> None:
    load = f"from {PACKAGE}.model import load_model; load_model('models/model.joblib')"
    sh("uv", "run", "python", "-c", load, cwd=work)


def temporary_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.rglob("*.tmp"))


def test_training_killed_while_saving_keeps_the_previous_model(work, tmp_path):
    model = work / "models" / "model.joblib"
    trained = model.read_bytes()
    retrain(work)
    env, marker = saving_blocks(tmp_path / "fault")
    repro = start(["uv", "run", "dvc", "repro"], work, env)
    os.kill(wait_for_pid(marker), signal.SIGKILL)  # half the new model written
    output = finish(repro)
    # -9 when DVC's shell handed over to python, 137 (128 + SIGKILL) when the shell reported it
    assert repro.returncode != 0 and re.search(r"exited with (-9|137)\b", output), output
    assert model.read_bytes() == trained
    model_loads(work)

    sh("uv", "run", "dvc", "repro", cwd=work)  # the next run completes, and tidies up
    assert model.read_bytes() != trained
    model_loads(work)
    assert temporary_files(work / "models") == []


STOPS = {
    "Ctrl-C": lambda uv: os.killpg(uv.pid, signal.SIGINT),  # the terminal's foreground group
    "SIGTERM to uv": lambda uv: uv.terminate(),  # a CI runner cancelling the step
}


def test_stopping_poe_pipeline_stops_its_stage(work, tmp_path):
    model = work / "models" / "model.joblib"
    trained = model.read_bytes()
    retrain(work)
    for how, stop in STOPS.items():
        env, marker = saving_blocks(tmp_path / "fault")
        pipeline = start(["uv", "run", "poe", "pipeline"], work, env)
        stage = wait_for_pid(marker)
        stop(pipeline)
        output = finish(pipeline, timeout=60)
        assert wait_gone(stage, timeout=15), f"{how}: the train stage ({stage}) outlived poe"
        assert pipeline.returncode != 0, f"{how}: {output}"
        assert model.read_bytes() == trained, how
    # Nothing holds the outputs (DVC would say they are `busy`), and a lock file that DVC was
    # rewriting when it was stopped is not in the way: the next `poe pipeline` completes.
    sh("uv", "run", "poe", "pipeline", cwd=work)
    model_loads(work)


def test_a_push_to_a_full_or_read_only_remote_fails_in_a_few_lines(work, tmp_path):
    name = sh("uv", "run", "dvc", "remote", "default", cwd=work).stdout.strip()
    with mounted_tmpfs(tmp_path / "full", "64k") as remote:
        sh("uv", "run", "dvc", "remote", "modify", "--local", name, "url", str(remote), cwd=work)
        pushed = sh("uv", "run", "poe", "push", cwd=work, check=False)
        leftovers = temporary_files(remote)
    lines = [line for line in pushed.stdout.splitlines() if line.strip()]
    assert pushed.returncode == 1, pushed.stdout + pushed.stderr
    assert len(lines) <= 3 and all(len(line) <= 300 for line in lines), pushed.stdout
    failure = lines[0]
    assert failure.startswith(f"dvc push to remote '{name}' ({remote}) failed: "), failure
    assert "No space left on device: " in failure and "failed to upload, the first " in failure
    assert (work / failure.split(", the first ")[1]).is_file(), failure  # a workspace path
    assert leftovers == [], leftovers
    assert "Traceback" not in pushed.stdout + pushed.stderr

    with mounted_tmpfs(tmp_path / "read-only", "64k", read_only=True) as remote:
        sh("uv", "run", "dvc", "remote", "modify", "--local", name, "url", str(remote), cwd=work)
        pushed = sh("uv", "run", "poe", "push", cwd=work, check=False)
    lines = [line for line in pushed.stdout.splitlines() if line.strip()]
    assert pushed.returncode == 1 and len(lines) <= 3, pushed.stdout + pushed.stderr
    assert "failed: unexpected error - [Errno 30] Read-only file system: " in lines[0], lines[0]


def test_an_output_directory_that_cannot_be_written_is_one_line(work):
    validate = ["validate", "data/raw/dataset.csv", "--report", "reports/data_validation.json"]
    commands = {"reports/metrics.json": ["evaluate"], "reports/data_validation.json": validate}
    with mounted_tmpfs(work / "reports", "64k", read_only=True):
        results = {
            path: sh("uv", "run", "python", "-m", PACKAGE, *arguments, cwd=work, check=False)
            for path, arguments in commands.items()
        }
    for path, result in results.items():
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.strip() == f"error: Read-only file system: {path}", result.stderr


def run_setup_until(project: Path, env: dict[str, str], step: str | None) -> str:
    """hooks/post_copy.py in project, as `copier copy` runs it; killed (SIGKILL, its whole
    session) the moment it starts the step named step, or run to its end. Its output."""
    setup = subprocess.Popen(
        [sys.executable, str(project.parent / "template" / "hooks" / "post_copy.py")],
        cwd=project,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines = []
    for line in setup.stdout:
        lines.append(line)
        if step and line.startswith(f"[post-copy] {step}"):
            os.killpg(setup.pid, signal.SIGKILL)
            break
    return "".join(lines) + finish(setup, timeout=600)


def test_a_copy_killed_at_a_step_resumes_when_run_again(template_src, offline_uv_env, tmp_path):
    """Killed as it starts DVC's set-up (after uv.lock was written), then as it starts the first
    pipeline run (after the first commit): each rerun completes what was not done, and a clone
    of the result has the lock, the pipeline's state and the data."""
    shutil.copytree(template_src, tmp_path / "template")
    project = render(tmp_path / "template", tmp_path / "project", {})  # the copy, no set-up
    env = {**offline_uv_env, "DVC_LOCAL_REMOTE_ROOT": str(tmp_path / "remotes")}
    killed = run_setup_until(project, env, "dvc init")
    assert "[post-copy] lock dependencies" in killed and (project / "uv.lock").is_file()
    killed = run_setup_until(project, env, "first pipeline run")
    assert "resuming the set-up" in killed and "not committed, they were here" not in killed
    assert git(project, "log", "--format=%s") == "Initial commit from the ML CI/CD template"
    done = run_setup_until(project, env, None)
    assert "resuming the set-up" in done, done
    assert done.strip().endswith("done: the repository is committed and its pipeline is green")
    assert git(project, "status", "--porcelain") == ""
    assert not (project / ".git" / "mlops-template-setup.json").exists()
    again = run_setup_until(project, env, None)
    assert "this repository is already set up" in again, again

    work = clone(project, tmp_path / "clone")
    assert {"uv.lock", "dvc.lock"} <= set(git(work, "ls-files").split())
    sh("uv", "run", "dvc", "pull", cwd=work, env=env)
    status = sh("uv", "run", "dvc", "status", cwd=work, env=env)
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
