"""Bring your own data (issue 13): data sets the template does not ship, adopted as a team would.

Each journey clones a cached generated repository (as `my-model`), writes the team's CSV file
outside it and walks docs/own-data.md's journey as a user types it (read at test time): the
adopt-data line with the team's file, target and categorical columns, the `git add` adopt-data
prints, the commit, and `uv run poe ci` green. Then, in the same clone: the API answers rows of
the data with its labels (or numbers for regression), answers a category value the data never
had, and refuses a wrong type with a 422 naming the field; monitoring reports a shift of a
categorical column as drift of that column.

- scikit-learn (the cached all-providers project): binary classification with string labels, a
  string categorical column and missing values; multi-class with integer labels and an
  integer-coded categorical column (`--category`); regression.
- PyTorch (the cached GitLab project): the binary string-label data set, the same checks.
- After adopting the regression data (whose plots differ from the sample's), docs/updating.md's
  `copier recopy` changes nothing, `poe ci` stays green and `fleet report` sees no drift:
  adopt-data writes only team-owned files (dvc.yaml stays the template's).
- The refusals (a missing, constant or all-null target; an empty or a binary file): exit code
  2, a message naming the column or the file, and nothing changed in the repository.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

from fleet.inspect_repo import TemplateCache, inspect
from fleet.repos import RepoEntry
from tests.harness import datasets
from tests.harness.ci_variants import ALL_PROVIDERS, GITLAB_ONLY
from tests.harness.commands import run
from tests.harness.datasets import Dataset, write_csv
from tests.harness.docs import fenced_block
from tests.harness.git import git
from tests.harness.render import REPO_ROOT, clone, generated_from_release
from tests.harness.services import api_command, free_port, http_json, http_ok, service

pytestmark = pytest.mark.slow

PACKAGE = "my_model"
OWN_DATA = REPO_ROOT / "docs" / "own-data.md"
SMOKE_REQUEST = "deploy/smoke-request.json"  # adopt-data rewrites it from the data
IDENTITY = {  # the user's git identity: the docs' `git commit` needs one
    "GIT_AUTHOR_NAME": "Dana Developer",
    "GIT_AUTHOR_EMAIL": "dana@example.com",
    "GIT_COMMITTER_NAME": "Dana Developer",
    "GIT_COMMITTER_EMAIL": "dana@example.com",
}


@pytest.fixture
def env(offline_uv_env) -> dict[str, str]:
    """The session's environment (not its virtual environment), with uv resolving torch
    offline and a git identity."""
    session = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
    return {**session, **offline_uv_env, **IDENTITY, "NO_COLOR": "1"}


def shell(script: str, cwd: Path, env: dict[str, str], check: bool = True):
    """Run commands as a user types them, with bash."""
    return run(["bash", "-euo", "pipefail", "-c", script], cwd, env, timeout=1800, check=check)


def journey() -> list[str]:
    """docs/own-data.md's journey, one command a line, without comments."""
    block = fenced_block(OWN_DATA, "## The journey", language="text")
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def adopt_command(csv_file: Path, target: str, categories=()) -> str:
    """The journey's adopt-data line with the team's file, target and categorical columns."""
    words = shlex.split(next(line for line in journey() if "adopt-data" in line))
    words[words.index("adopt-data") + 1] = str(csv_file)
    words[words.index("--target") + 1] = target
    return shlex.join([*words, *(word for column in categories for word in ("--category", column))])


def walk_the_journey(project: Path, dataset: Dataset, env: dict[str, str], tmp_path: Path):
    """docs/own-data.md's journey as a user types it, from the project's parent folder: the
    adopt-data line with the team's file, `git add` with the paths adopt-data printed, and no
    `$EDITOR` (the inferred contract is kept as it is). The commit takes every change; `poe ci`
    is green."""
    assert project.name == "my-model", "the folder the journey's `cd` enters"
    csv_file = write_csv(tmp_path / "exports" / f"{dataset.name}.csv", dataset.rows())
    lines = journey()
    at = next(index for index, line in enumerate(lines) if "adopt-data" in line)
    adopting = [*lines[:at], adopt_command(csv_file, dataset.target, dataset.category_flags)]
    adopted = shell("\n".join(adopting), project.parent, env).stdout
    printed = re.search(r"^\s*(git add .+)$", adopted, re.MULTILINE)
    assert printed, f"adopt-data printed no `git add`:\n{adopted}"
    next_steps = adopted[printed.start() :]
    assert "uv run poe push" in next_steps, "the data must not stay on one machine silently"
    head = git(project, "rev-parse", "HEAD")
    output = ""
    for line in lines[at + 1 :]:
        if line.startswith("$EDITOR"):
            continue
        command = printed.group(1) if line.startswith("git add") else line
        output += shell(command, project, env).stdout
        if line.startswith("git commit"):
            assert git(project, "status", "--porcelain") == "", "the commit left changes out"
            assert git(project, "rev-parse", "HEAD") != head
    assert "quality gate: passed" in output, "the journey ends with `uv run poe ci` green"


def assert_contract_describes(project: Path, dataset: Dataset) -> None:
    """schema.yaml names the data's columns, its target with its kind and labels, and the
    categorical column with the values the data has."""
    contract = yaml.safe_load((project / "src" / PACKAGE / "schema.yaml").read_text())
    assert contract["target"]["name"] == dataset.target
    if dataset.classification:
        assert contract["target"]["kind"] == "classification"
        assert contract["target"]["labels"] == dataset.labels
    else:
        assert contract["target"]["kind"] == "regression"
    assert list(contract["features"]) == dataset.features
    categorical = contract["features"][dataset.categorical]
    values = {v for v in dataset.columns[dataset.categorical] if v is not None}
    assert categorical["type"] == "category" and set(categorical["categories"]) == values
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    expected = (
        {"accuracy", "f1_macro", *(f"recall_{label}" for label in dataset.labels)}
        if dataset.classification
        else {"rmse", "mae", "r2"}
    )
    assert expected <= set(metrics), metrics


# The per-label and per-kind outputs of evaluate (and of DVCLive's evaluate logs).
# A per-label output of the sample (labels 0 to 2) that no adopted data set here has.
SAMPLE_RECALL = "dvclive/evaluate/plots/metrics/recall_0.tsv"
PLOTS_OF_KIND = {True: {"confusion.csv", "class_scores.csv"}, False: {"predictions.csv"}}


def assert_no_sample_outputs_remain(project: Path, dataset: Dataset) -> None:
    """Nothing the bundled sample's pipeline wrote is left, on disk or in the commit: its plots
    of the other kind of target and its per-label metrics (recall_0 ... of the sample's labels
    0 to 2, dvclive/evaluate/plots/metrics/recall_0.tsv). DVC empties a directory output
    (reports/plots, dvclive/evaluate) before its stage runs, and the `git add` adopt-data prints
    stages the deletions."""
    committed = git(project, "ls-files", "reports", "dvclive").split()
    on_disk = [
        str(path.relative_to(project))
        for folder in ("reports", "dvclive")
        for path in (project / folder).rglob("*")
        if path.is_file()
    ]
    assert set(committed) <= set(on_disk), "committed outputs the last run did not write"
    labels = {str(label) for label in dataset.labels} if dataset.classification else set()
    stems = [Path(path).stem for path in on_disk]
    per_label = {stem.removeprefix("recall_") for stem in stems if stem.startswith("recall_")}
    per_label -= {"macro"}  # recall_macro: the average over the labels
    assert per_label <= labels, f"per-label files of labels the data lacks: {per_label - labels}"
    for metrics in ("reports/metrics.json", "dvclive/evaluate/metrics.json"):
        if (project / metrics).is_file():
            keys = json.loads((project / metrics).read_text())
            recalls = {key.removeprefix("recall_") for key in keys if key.startswith("recall_")}
            assert recalls - {"macro"} == labels, (metrics, sorted(keys))
    plots = {Path(path).name for path in committed if path.startswith("reports/plots/")}
    assert plots == PLOTS_OF_KIND[dataset.classification], plots


def sample_rows(dataset: Dataset) -> list[dict]:
    """Feature rows taken from the data: the first complete one and, when the data has
    missing values, the first row with one (null in JSON)."""
    rows = dataset.rows(with_target=False)
    complete = next(row for row in rows if None not in row.values())
    with_missing = [row for row in rows if None in row.values()][:1]
    return [complete, *with_missing]


def assert_answers(dataset: Dataset, answers: list) -> None:
    """Each answer is one of the data's labels (of the data's type), or a finite number."""
    for answer in answers:
        if dataset.classification:
            assert answer in dataset.labels, f"{answer!r} is not a label of the data"
            assert type(answer) is type(dataset.labels[0]), answer
        else:
            assert isinstance(answer, float) and math.isfinite(answer), answer


def assert_api(project: Path, dataset: Dataset, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = api_command(PACKAGE, port)
    with service(command, lambda: http_ok(f"{base}/health"), project, {}, 120, tmp_path / "api"):
        rows = sample_rows(dataset)
        status, body = http_json("POST", f"{base}/predict", {"rows": rows})
        assert status == 200, body
        predictions = body["predictions"]
        assert len(predictions) == len(rows), body
        if dataset.classification:
            assert_answers(dataset, [p["label"] for p in predictions])
            assert all(0 <= p["confidence"] <= 1 for p in predictions), body
        else:
            assert_answers(dataset, [p["value"] for p in predictions])

        # a category value the data never had is scored (the unknown bucket), not refused
        unseen = {**rows[0], dataset.categorical: dataset.unknown_category()}
        status, body = http_json("POST", f"{base}/predict", {"rows": [unseen]})
        assert status == 200, body
        refused = {**rows[0], dataset.numeric: "a lot"}
        status, body = http_json("POST", f"{base}/predict", {"rows": [refused]})
        assert status == 422, body
        assert any(dataset.numeric in error["loc"] for error in body["detail"]), body


def assert_drift_of_the_categorical_column(
    project: Path, dataset: Dataset, env: dict[str, str], tmp_path: Path
) -> None:
    """The data as it is does not drift in its categorical column; the same rows with that
    column shifted do, and the monitor's summary names it."""

    def monitor(name: str, rows: list[dict]) -> tuple[bool, str]:
        batch = write_csv(tmp_path / "batches" / f"{name}.csv", rows)
        report = batch.with_suffix(".drift.json")
        command = ["python", "-m", PACKAGE, "monitor", str(batch), "--report", str(report)]
        result = run(["uv", "run", *command], project, env, check=False)
        assert result.returncode in (0, 1), result.stderr  # 1: the batch as a whole drifts
        column = json.loads(report.read_text())["features"][dataset.categorical]
        return column["drifted"], result.stdout

    as_is, _ = monitor("as-is", dataset.rows(with_target=False))
    shifted, summary = monitor("shifted", dataset.shifted())
    assert (as_is, shifted) == (False, True)
    assert dataset.categorical in summary, summary


def assert_recopy_keeps_it_green_and_current(
    project: Path, releases: Path, env: dict[str, str], tmp_path: Path
) -> None:
    """docs/updating.md's `copier recopy` (of the newest release, v2.0.0: one template-owned
    change) after adopt-data keeps everything adopt-data wrote, `poe ci` stays green, and
    `fleet report` finds no template-owned file changed."""
    generated_from_release(project, releases)  # v1.0.0, a release fleet report can render
    recopy = fenced_block(REPO_ROOT / "docs" / "updating.md", "## Recopying")
    lines = [line.split("#")[0].strip() for line in recopy.splitlines()]
    shell(next(line for line in lines if "copier recopy" in line), project, env)
    changed = git(project, "status", "--porcelain").splitlines()
    assert changed == [" M .copier-answers.yml", " M .pre-commit-config.yaml"], changed
    shell(next(line for line in lines if line.startswith("git commit")), project, env)
    assert "quality gate: passed" in shell("uv run poe ci", project, env).stdout
    report = inspect(RepoEntry(str(project), str(project)), TemplateCache(tmp_path / "fleet"), {})
    assert report.problems == [] and report.drift == [], report.as_dict()


def _journey(project_variant, make):
    group = pytest.mark.xdist_group(project_variant.id)  # the worker that holds that project
    return pytest.param(
        project_variant, make, marks=group, id=f"{make.__name__}-{project_variant.id}"
    )


# Each data set with scikit-learn (the cached all-providers project); the binary one with
# PyTorch too (the cached GitLab project). Both serve the API with FastAPI.
@pytest.mark.parametrize(
    ("project_variant", "make"),
    [
        *(
            _journey(ALL_PROVIDERS, make)
            for make in (datasets.churn, datasets.grades, datasets.prices)
        ),
        _journey(GITLAB_ONLY, datasets.churn),
    ],
)
def test_own_data_journey_and_the_api(
    project_variant, make, generated_projects, template_releases, env, tmp_path
):
    dataset = make()
    project = clone(generated_projects(project_variant), tmp_path / "my-model")
    sample_outputs = git(project, "ls-files", "dvclive", "reports").split()
    assert {SAMPLE_RECALL, "reports/plots/confusion.csv"} <= set(sample_outputs), "what must go"
    walk_the_journey(project, dataset, env, tmp_path)
    assert_contract_describes(project, dataset)
    assert_no_sample_outputs_remain(project, dataset)
    assert_api(project, dataset, tmp_path)
    assert_drift_of_the_categorical_column(project, dataset, env, tmp_path)
    if make is datasets.prices:  # the one kind of target whose plots differ from the sample's
        assert_recopy_keeps_it_green_and_current(project, template_releases, env, tmp_path)


def unchanged_state(project: Path) -> dict[str, object]:
    """What a refused adoption must leave as it was: HEAD, the status with ignored files (the
    data file is git-ignored; DVC's and Python's caches left out) and the bytes of the
    contract, the pipeline and its params."""
    status = git(project, "status", "--porcelain", "--ignored").splitlines()
    caches = (".dvc/tmp", "__pycache__")
    files = (f"src/{PACKAGE}/schema.yaml", "dvc.yaml", "dvc.lock", "params.yaml", SMOKE_REQUEST)
    return {
        "HEAD": git(project, "rev-parse", "HEAD"),
        "status": [line for line in status if not any(cache in line for cache in caches)],
        **{name: (project / name).read_bytes() for name in files},
    }


@pytest.mark.xdist_group(ALL_PROVIDERS.id)
def test_adopt_data_refuses_bad_data_and_changes_nothing(generated_projects, env, tmp_path):
    project = clone(generated_projects(ALL_PROVIDERS), tmp_path / "my-model")
    churn = datasets.churn()
    exports = tmp_path / "exports"
    good = write_csv(exports / "churn.csv", churn.rows())
    constant = write_csv(exports / "constant.csv", churn.with_target("no").rows())
    no_target = write_csv(exports / "no-target.csv", churn.with_target(None).rows())
    binary, empty = exports / "export.csv", exports / "empty.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    empty.write_text("")
    cases = {  # case: (file, target, what the message must name)
        "missing target": (good, "cancelled", "cancelled"),
        "constant target": (constant, churn.target, churn.target),
        "all-null target": (no_target, churn.target, churn.target),
        "binary file": (binary, churn.target, binary.name),
        "empty file": (empty, churn.target, empty.name),
    }
    shell(f"uv run python -m {PACKAGE} --help", project, env)  # the environment, set up once
    before = unchanged_state(project)
    for case, (csv_file, target, named) in cases.items():
        result = shell(adopt_command(csv_file, target), project, env, check=False)
        output = result.stdout + result.stderr
        assert result.returncode == 2, f"{case}: exit {result.returncode}\n{output}"
        assert named in output, f"{case}: the message does not name {named!r}\n{output}"
        assert "Traceback" not in output, f"{case}\n{output}"
        assert unchanged_state(project) == before, f"{case}: the repository changed"
