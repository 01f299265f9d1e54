"""Broken changes that must turn every provider's pipeline red, applied to a generated project
and committed (CI runs what is committed): a failing unit test, a metric below its threshold,
and invalid data reaching the pipeline."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from tests.harness.commands import run
from tests.harness.git import commit, git
from tests.harness.render import clone


def failing_unit_test(project: Path) -> str:
    # Formatted as ruff formats it, so lint passes and the failure comes from the test itself.
    (project / "tests" / "test_broken.py").write_text(
        'def test_broken():\n    assert 1 + 1 == 3, "deliberately broken"\n'
    )
    commit(project, "Break a unit test")
    return "deliberately broken"


def metric_below_threshold(project: Path) -> str:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["evaluate"]["thresholds"]["accuracy"] = 1.01  # no model can reach it
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit(project, "Raise the accuracy threshold out of reach")
    return "is below its threshold 1.01"


def invalid_data(project: Path) -> str:
    """A new version of the data set with an unknown label, committed as a team commits data
    (its .dvc file names the version; `dvc push` sends it to the remote CI pulls from)."""
    raw = "data/raw/dataset.csv"
    dvc = ["uv", "run", "--frozen", "dvc"]
    env = dict(os.environ)
    run([*dvc, "pull", "--quiet", raw], project, env)
    path = project / raw
    header, first, *rest = path.read_text().splitlines(keepends=True)
    assert header.rstrip("\n").split(",")[-1] == "label", "the sample changed: update this"
    first = first.rstrip("\n").rsplit(",", 1)[0] + ",9\n"  # the target is the last column
    path.unlink()  # it may be a link into DVC's cache, which must stay as it is
    path.write_text(header + first + "".join(rest))
    run([*dvc, "add", "--quiet", raw], project, env)
    run([*dvc, "push", "--quiet"], project, env)
    commit(project, "A new version of the data set")
    return "unknown labels 9"


BROKEN_CHANGES = {
    "failing unit test": failing_unit_test,
    "metric below threshold": metric_below_threshold,
    "invalid data": invalid_data,
}


def on_a_branch(project: Path, dst: Path, branch: str, change: str) -> tuple[Path, str]:
    """A clone of project at dst on a new branch with the broken change committed: (the clone,
    the text the pipeline's log must show when it fails)."""
    clone(project, dst)
    git(dst, "checkout", "--quiet", "-b", branch)
    return dst, BROKEN_CHANGES[change](dst)
