"""The model registry (issue 28): `poe register`, `poe promote VERSION STAGE`, `poe models`,
one interface over two real back-ends.

- GTO (experiment_tracking none or dvclive): the registry is git tags in the repository
  (`model@v1.0.0`, `model#production#N`), so a fresh clone reads the same versions and stages.
- MLflow: the registry of a fresh tracking store (MLFLOW_TRACKING_URI, a SQLite database: the
  same registry code a `mlflow server` runs behind its REST API, which
  tests/test_ml_lifecycle.py covers; a server here would add its start-up to the suite's
  time); stages are aliases of the registered model. The first version's model was trained
  before this store existed (a CI runner that pulled it with DVC): register uploads it; the
  second is trained against the store, and register finds that training's version by md5.

Each walk drives the project's CLI in one long-lived process (DRIVER), in a clone of a cached
generated project (its data and model copied in, the project's environment reused): register
the committed model as v1.0.0, train a second model (params.yaml changed, `dvc repro`), commit
and register it as v1.1.0 (from RELEASE_TAG, as CD does), give them production and staging,
move production to v1.1.0, then roll back by moving it to v1.0.0; batch scoring (its scheduled
task, `poe batch-scoring`, too) uses the version holding production, or until one does the
checkout's model, saying so. `models` lists both with
their stages, metrics and data version; the refusals (a version again, an unknown version, a
bad stage, an uncommitted model) change nothing.
"""

from __future__ import annotations

import hashlib
import json

import pytest
import yaml

from tests.harness.ci_variants import GITHUB_ONLY, JENKINS_ONLY
from tests.harness.commands import run
from tests.harness.git import git
from tests.harness.registry import PACKAGE, Project, read_rows, retrain
from tests.harness.render import clone

pytestmark = pytest.mark.slow


def walk_the_registry(project: Project) -> None:
    path = project.path
    assert "no model versions registered yet" in project.cli("models").stdout
    # Until a version holds production, scheduled batch scoring's command scores with the
    # checkout's model (its md5 as the version), and says so in one line.
    rows = path / "data" / "prepared" / "test.csv"
    unheld = path.parent / "unheld.csv"
    batch = ("predict-batch", str(rows), str(unheld), "--stage", "production", "--or-checkout")
    said = project.cli(*batch).stdout.splitlines()
    checkout = "predict-batch: no model version holds production yet: scoring with this checkout's"
    assert said[0] == f"{checkout} model (models/model.joblib)", said
    model_md5 = hashlib.md5((path / "models" / "model.joblib").read_bytes()).hexdigest()
    assert {r["model_version"] for r in read_rows(unheld)} == {model_md5}

    first = project.cli("register", "--version", "v1.0.0").stdout
    assert "register: model version v1.0.0" in first
    first_commit = git(path, "rev-parse", "HEAD")
    first_metrics = json.loads((path / "reports" / "metrics.json").read_text())

    # Refused, nothing registered: uncommitted pipeline outputs, the same version again.
    lock = (path / "dvc.lock").read_text()
    (path / "dvc.lock").write_text(lock + "# edited\n")
    dirty = project.cli("register", "--version", "v1.0.1", check=False)
    assert dirty.returncode == 2 and "commit these first" in dirty.stderr
    (path / "dvc.lock").write_text(lock)
    again = project.cli("register", "--version", "v1.0.0", check=False)
    assert again.returncode == 2 and "registered already" in again.stderr

    retrain(project)
    project.cli("register", env={"RELEASE_TAG": "v1.1.0"})  # as the CD job runs it
    versions = project.models()
    assert list(versions) == ["v1.1.0", "v1.0.0"], "newest first, v1.0.1 never registered"
    old, new = versions["v1.0.0"], versions["v1.1.0"]
    assert old["commit"] == first_commit and new["commit"] == git(path, "rev-parse", "HEAD")
    assert old["metrics"] == first_metrics
    assert new["metrics"] == json.loads((path / "reports" / "metrics.json").read_text())
    assert old["model_md5"] != new["model_md5"], "two different models"
    data = yaml.safe_load(lock)["stages"]["validate"]["deps"][0]
    assert data["path"] == "data/raw/dataset.csv"
    assert old["data_version"] == new["data_version"] == data["md5"]

    project.cli("promote", "v1.0.0", "production")
    project.cli("promote", "v1.1.0", "staging")
    moved = project.cli("promote", "v1.1.0", "production").stdout
    assert "production is model version v1.1.0 (before: v1.0.0)" in moved
    versions = project.models()
    assert versions["v1.1.0"]["stages"] == ["production", "staging"]
    assert versions["v1.0.0"]["stages"] == []

    # The rollback: production back to the earlier version.
    back = project.cli("promote", "v1.0.0", "production").stdout
    assert "production is model version v1.0.0 (before: v1.1.0)" in back
    assert project.holder("production") == "v1.0.0"
    table = project.cli("models").stdout.splitlines()
    assert table[0].split()[:2] == ["version", "stages"]
    assert table[1].split()[:2] == ["v1.1.0", "staging"]
    assert table[2].split()[:2] == ["v1.0.0", "production"]

    # Batch scoring with the version a stage holds, its model fetched from the registry: the
    # production one is v1.0.0's model (the original project's), staging's another.
    scored = {}
    for stage in ("production", "staging"):
        project.cli("predict-batch", str(rows), str(path.parent / f"{stage}.csv"), "--stage", stage)
        scored[stage] = read_rows(path.parent / f"{stage}.csv")
    first_model = project.original / "models" / "model.joblib"
    project.cli(
        "predict-batch", str(rows), str(path.parent / "first.csv"), "--model", str(first_model)
    )
    answers = [(r["id"], r["prediction"], r["confidence"]) for r in scored["production"]]
    first = read_rows(path.parent / "first.csv")
    assert answers == [(r["id"], r["prediction"], r["confidence"]) for r in first]
    assert {r["model_version"] for r in scored["production"]} == {"v1.0.0"}
    assert {r["model_version"] for r in scored["staging"]} == {"v1.1.0"}
    assert [r["confidence"] for r in scored["staging"]] != [a[2] for a in answers]
    # The scheduled job's task (`poe batch-scoring`, the checkout at v1.1.0) scores with the
    # version holding production, v1.0.0.
    scheduled = path.parent / "scheduled.csv"
    poe = str(project.original / ".venv" / "bin" / "poe")
    run([poe, "batch-scoring"], path, {**project.env, "BATCH_OUTPUT": str(scheduled)}, timeout=600)
    assert {r["model_version"] for r in read_rows(scheduled)} == {"v1.0.0"}
    assert [(r["id"], r["prediction"]) for r in read_rows(scheduled)] == [a[:2] for a in answers]

    for args, message in [
        (("promote", "v9.9.9", "production"), "version v9.9.9 is not registered"),
        (("promote", "v1.1.0", "Prod"), "stage 'Prod'"),
    ]:
        refused = project.cli(*args, check=False)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    missing = project.cli("models", "--stage", "canary", check=False)
    assert missing.returncode == 1 and "no version holds the stage canary" in missing.stderr
    assert project.models()["v1.1.0"]["stages"] == ["staging"], "the refusals moved nothing"


@pytest.mark.xdist_group(GITHUB_ONLY.id)
def test_gto_registry_is_git_tags(generated_projects, tmp_path):
    original = generated_projects(GITHUB_ONLY)
    project = Project(original, tmp_path / "my-model", {})
    walk_the_registry(project)
    project.close()
    tags = git(project.path, "tag", "--list", "model*").split()
    assert {"model@v1.0.0", "model@v1.1.0"} <= set(tags)
    assert sum(tag.startswith("model#production#") for tag in tags) == 3
    assert "model:" in (project.path / "dvc.yaml").read_text(), "dvc.yaml declares the artifact"
    # The tags are the registry: a fresh clone reads the same versions and stages.
    other = clone(project.path, tmp_path / "elsewhere")
    listed = run([project.python, "-m", PACKAGE, "models", "--json"], other, project.env)
    mine = run([project.python, "-m", PACKAGE, "models", "--json"], project.path, project.env)
    assert json.loads(listed.stdout) == json.loads(mine.stdout)


@pytest.mark.xdist_group(JENKINS_ONLY.id)
def test_mlflow_registry_moves_aliases(generated_projects, tmp_path):
    original = generated_projects(JENKINS_ONLY)
    store = f"sqlite:///{tmp_path / 'registry.db'}"
    project = Project(original, tmp_path / "my-model", {"MLFLOW_TRACKING_URI": store})
    walk_the_registry(project)
    project.close()
    found = run([project.python, "-c", ALIASES, store, "my-model"], project.path, project.env)
    aliases, sources = json.loads(found.stdout)
    assert aliases == {"production": "1", "staging": "2"}, "v1.0.0 is MLflow's version 1"
    assert sources == {"1": "register", "2": "train"}, "uploaded once, then found by md5"
    # register-release's command in a CI job with no tracking server: said, nothing registered
    # (a job's local store would vanish with it); the shared store is as it was.
    unshared = {k: v for k, v in project.env.items() if k != "MLFLOW_TRACKING_URI"}
    command = [project.python, "-m", PACKAGE, "register", "--stage", "staging", "--if-shared"]
    local_store = project.path / "mlruns"
    before = sorted(local_store.rglob("*")) if local_store.exists() else None
    said = run(command, project.path, {**unshared, "RELEASE_TAG": "v1.2.0"}).stdout
    assert said.startswith("register: MLFLOW_TRACKING_URI is not set"), said
    after_files = sorted(local_store.rglob("*")) if local_store.exists() else None
    assert after_files == before, "the local store was not touched"
    after = run([project.python, "-c", ALIASES, store, "my-model"], project.path, project.env)
    assert json.loads(after.stdout) == [aliases, sources]


# MLflow's own view of the registered model: its aliases, and the run each version came from.
ALIASES = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
model = client.get_registered_model(sys.argv[2])
versions = client.search_model_versions(f"name='{sys.argv[2]}'")
print(json.dumps([
    {alias: str(number) for alias, number in model.aliases.items()},
    {v.version: client.get_run(v.run_id).info.run_name for v in versions},
]))
"""
