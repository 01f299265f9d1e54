"""A repository whose scheduled monitoring retrains, for each provider's monitoring test: its
origin, the DVC remote it pushes to, and what a retraining run must leave in both."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from tests.harness.dvc import point_remote, remote_dir, remote_objects
from tests.harness.git import commit, git
from tests.harness.render import clone

# What `poe monitoring` prints before it retrains (mlops/respond.py): the job still fails.
ALERT = "monitoring: data drift and a performance drop; retraining is enabled: poe retrain"


def origin_with_retraining(generated: Path, directory: Path) -> tuple[Path, Path, Path]:
    """(origin, checkout, DVC remote): a bare repository made from the generated project, whose
    main enables retraining (params.yaml's monitor.retrain.enabled) and names a copy of the
    project's DVC remote (the shared one stays as it is), and a checkout of that main."""
    origin = directory / "origin.git"
    git(directory, "clone", "--quiet", "--bare", str(generated), str(origin))
    checkout = clone(origin, directory / "checkout")
    remote = directory / "dvc-remote"
    shutil.copytree(remote_dir(generated), remote)
    point_remote(checkout, remote)
    params = checkout / "params.yaml"
    params.write_text(params.read_text().replace("    enabled: false", "    enabled: true"))
    commit(checkout, "Enable retraining; DVC remote of this test")
    git(checkout, "push", "--quiet", "origin", "main")
    return origin, checkout, remote


def assert_retrain_branch(origin: Path, remote: Path) -> str:
    """One retrain/* branch reached origin with a new data version and pipeline lock, and the
    DVC remote received that data; the branch's name."""
    (branch,) = git(origin, "branch", "--list", "retrain/*", "--format=%(refname:short)").split()
    changed = git(origin, "diff", "--name-only", "main", branch).split()
    assert "data/raw/dataset.csv.dvc" in changed and "dvc.lock" in changed, changed
    data = yaml.safe_load(git(origin, "show", f"{branch}:data/raw/dataset.csv.dvc"))
    assert data["outs"][0]["md5"] in remote_objects(remote)
    return branch
