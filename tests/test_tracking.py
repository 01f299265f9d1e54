"""Journey 3, experiment tracking: a team switches its tracker with docs/updating.md's own
command (`uvx copier update ... --data experiment_tracking=...`, read from the file), walking
none -> dvclive -> mlflow -> none in one repository. After each switch `uv run poe ci` is green,
the tracker really holds the pipeline's run (params, training and held-out metrics, the model),
the files the answer owns come and go (the tracked dvclive/ logs too, and the how-to page
follows the answer), and the team-owned train.py and README are never edited: the hook
into tracking is template-owned (cli.py opens each stage's run, tracking.py picks the tracker).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.harness.ci_variants import GITHUB_ONLY
from tests.harness.commands import run
from tests.harness.docs import answer_change_command
from tests.harness.git import commit, git
from tests.harness.render import clone, generated_from_release
from tests.harness.tracking import dvclive_metrics, mlflow_runs, runs_named

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(GITHUB_ONLY.id)]

PACKAGE = "src/my_model"
BACKENDS = {
    "dvclive": f"{PACKAGE}/mlops/tracking_dvclive.py",
    "mlflow": f"{PACKAGE}/mlops/tracking_mlflow.py",
}


# What only the how-to page's description of each tracker names: its output folder.
HOW_TO_MARKS = {"dvclive": "dvclive/", "mlflow": "mlruns"}


def user_runs(command: list[str], project: Path) -> str:
    print(f"$ {' '.join(command)}")
    env = {**os.environ, "NO_COLOR": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    result = run(command, project, env, timeout=1500)
    return result.stdout + result.stderr


def switch_tracking(project: Path, tracker: str) -> str:
    """The documented answer change, then `poe ci`; the update's output. After the update no
    tracked file of an old tracker remains, the template-owned how-to describes the new tracker
    only, and the team-owned README is left as it was."""
    readme = (project / "README.md").read_bytes()
    had_logs = git(project, "ls-files", "dvclive") != ""
    update = answer_change_command([f"experiment_tracking={tracker}"])
    updated = user_runs(["bash", "-euo", "pipefail", "-c", update], project)
    changed = git(project, "status", "--porcelain").splitlines()
    assert not any(line.endswith(".rej") for line in changed), changed
    assert "<<<<<<<" not in git(project, "diff", "HEAD"), "the switch left conflict markers"
    for backend, path in BACKENDS.items():
        assert (project / path).is_file() == (backend == tracker), path
    if tracker != "dvclive":
        assert git(project, "ls-files", "dvclive") == "", "the old tracker's logs stay tracked"
        assert ("[post-update] removed dvclive/" in updated) == had_logs, updated
    how_to = (project / "docs" / "how-to.md").read_text()
    for backend, mark in HOW_TO_MARKS.items():
        assert (mark in how_to) == (backend == tracker), f"how-to and {mark}, tracker {tracker}"
    assert ("no experiment tracker" in how_to) == (tracker == "none")
    assert (project / "README.md").read_bytes() == readme, "the update edited the README"
    output = user_runs(["uv", "run", "poe", "ci"], project)
    assert "quality gate: passed" in output
    assert (project / "dvclive").exists() == (tracker == "dvclive"), "dvclive/ after poe ci"
    return updated


def held_out_metrics(project: Path) -> dict:
    return yaml.safe_load((project / "reports" / "metrics.json").read_text())


@pytest.fixture
def untracked_project(generated_projects, template_releases, tmp_path) -> Path:
    """A clone of a repository generated with experiment_tracking=none from release v1.0.0."""
    project = clone(generated_projects(GITHUB_ONLY), tmp_path / "my-model")
    assert (
        yaml.safe_load((project / ".copier-answers.yml").read_text())["experiment_tracking"]
        == "none"
    )
    generated_from_release(project, template_releases)
    return project


def test_switching_tracker_through_update_logs_without_editing_train_py(
    untracked_project, offline_uv_env, monkeypatch
):
    for name, value in offline_uv_env.items():
        monkeypatch.setenv(name, value)
    project = untracked_project
    train_py = (project / PACKAGE / "train.py").read_bytes()

    switch_tracking(project, "dvclive")
    train = dvclive_metrics(project, "train")
    assert train["train_accuracy"] > 0.9
    assert dvclive_metrics(project, "evaluate") == held_out_metrics(project)
    logged = yaml.safe_load((project / "dvclive" / "train" / "params.yaml").read_text())
    assert logged["train"]["n_estimators"] == 100
    assert "dvclive/train" in (project / "dvc.lock").read_text(), "DVC records the tracker's files"
    commit(project, "Track experiments with DVCLive")
    assert "dvclive/evaluate/metrics.json" in git(project, "ls-files", "dvclive").split()

    switch_tracking(project, "mlflow")
    found = mlflow_runs(project)
    (train_run,) = runs_named(found, "train")
    (evaluate_run,) = runs_named(found, "evaluate")
    assert train_run["metrics"]["train_accuracy"] > 0.9
    assert train_run["params"]["train.n_estimators"] == "100"
    assert train_run["artifacts"] == ["model/model.joblib"]
    assert found["versions"] == [{"version": "1", "run_id": train_run["id"]}]
    assert evaluate_run["metrics"] == held_out_metrics(project)
    commit(project, "Track experiments with MLflow")

    left = switch_tracking(project, "none")
    assert "mlruns/" in left and (project / "mlruns" / "mlflow.db").is_file(), "history kept"
    pyproject = (project / "pyproject.toml").read_text()
    assert "mlflow" not in pyproject and "dvclive" not in pyproject
    assert (project / PACKAGE / "train.py").read_bytes() == train_py, "train.py never edited"
