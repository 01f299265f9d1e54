"""Real tables (issue 30): public tables shipped inside PyPI packages, none built by the tests,
each adopted with the plain `adopt-data FILE --target COLUMN` and nothing else.

The tables, each read from the installed package (the suite's dev dependencies), offline:
- palmerpenguins (data CC0) penguins.csv, target species: string labels, 3 classes; missing
  values in features; text categories; a 3-valued integer column (year).
- vega_datasets (BSD-3) seattle-weather.csv (NOAA), target weather: a date column (read as its
  year, month, day and day of week); 5 string labels, the smallest of 26 rows.
- vega_datasets cars.json (StatLib), target Miles_per_Gallon: regression; missing values in
  the target (8 of 406 rows) and in a feature; an identifier-like text column (car names); a
  date column whose month and day never change (read as its year and day of week).
- statsmodels (each data set's terms in its module's COPYRIGHT) fair.csv, target affairs:
  regression on a skewed target, two thirds zeros; 1,039 repeated rows.
- statsmodels fair_pt.csv, target naffairs: integer-coded labels (6 classes, the smallest of
  17 rows); an integer identifier; a constant column; a 0/1 column.
- statsmodels ccard.csv, target AVGEXP: regression on 72 rows; a two-valued numeric column.
- scikit-learn (BSD-3) breast_cancer, target: 30 features, binary integer labels.
- statsmodels heart.csv (the Stanford heart transplant data; its COPYRIGHT entry is blank),
  target censors: binary labels coded 1.0/0.0, 69 rows.
- statsmodels fertility.csv (World Bank), target 2011: 51 numeric features with missing values,
  missing target values, identifier and constant text columns, 51 held-out rows (whose drift
  against the training rows must be judged against the sampling noise of 51 rows: by PSI alone,
  21 of the 51 columns pass 0.25).

cars.json is the one table shipped as JSON and breast_cancer the one shipped without a header
(scikit-learn's loader names its columns): each is written as CSV first, as a team exports a
table, and adopted the same way.

For each: adopt-data succeeds and prints what it decided (left-out columns, rows without a
target, repeated rows), schema.yaml records it, no per-label metric file of the sample's labels
is left, the generated repository's own tests pass on the adopted data (the tests that follow
the contract: data validation, the API, drift monitoring, model quality), and the served API
answers one row of the table as the team's client sends it (left-out columns included).

Each table's data validation and quality gate run as `poe ci` runs them (`poe validate-data`,
`poe gate`): they judge the table's data and the model trained on it. The full `uv run poe ci`
(lint, type check, pipeline, every generated test, the quality gate) runs on one of them, cars
(the regression with an identifier, a date and missing targets): on every table it would take
minutes each, over the suite's budget, and what it adds beyond the checks run here (lint,
types, the pipeline's own tests) does not depend on the table.

Time, measured on the 2-core machine under a load average of 3 to 5: a table takes 75 to 100 s
(adopt-data's `dvc repro` about 45 s of it, five Python processes; the generated tests 10 to 40
s; the API's start 5 s), fertility 140 s, cars with `poe ci` 105 s: 840 s for the nine, 8.5
minutes of wall time on two workers, each group's render of the project (75 s) included. Before
the split, the eight tables took about 10 minutes of the all-providers worker. The tables are
split into two xdist groups of about equal time, so the suite's two workers share them
(docs/testing.md); each group's worker clones the all-providers project from its cache (rendered
there if that worker has not rendered it yet). In one group, one clone serves every table, reset
between them with `git reset --hard` and `git clean` (the git-ignored data and DVC outputs left
behind are the ones the next adopt-data replaces).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.harness.ci_variants import ALL_PROVIDERS
from tests.harness.commands import run
from tests.harness.git import git
from tests.harness.render import clone
from tests.harness.services import api_command, free_port, http_json, http_ok, service

pytestmark = pytest.mark.slow

PACKAGE = "my_model"
GENERATED_TESTS = [  # the generated tests that follow the contract (see the docstring)
    "tests/test_data_validation.py",
    "tests/test_api.py",
    "tests/test_monitor.py",
    "tests/test_model_quality.py",
]


def package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing it."""
    spec = importlib.util.find_spec(name)
    assert spec and spec.submodule_search_locations, f"{name} is not installed"
    return Path(spec.submodule_search_locations[0])


@dataclass(frozen=True)
class Table:
    name: str
    package: str
    path: str  # inside the package
    target: str
    kind: str
    left_out: set[str] = field(default_factory=set)
    nullable_target: bool = False
    printed: tuple[str, ...] = ()  # what adopt-data must say it decided
    dates: dict[str, list[str]] = field(default_factory=dict)  # date features: their parts
    full_ci: bool = False
    group: int = 1  # the xdist group (the module docstring): the two groups take equal time

    def __str__(self) -> str:
        return self.name


TABLES = [
    Table("penguins", "palmerpenguins", "data/penguins.csv", "species", "classification"),
    Table("seattle-weather", "vega_datasets", "_data/seattle-weather.csv", "weather",
          "classification", dates={"date": ["year", "month", "day", "day_of_week"]},
          printed=("date: dates, read as their year, month, day, day_of_week",)),
    Table("cars", "vega_datasets", "_data/cars.json", "Miles_per_Gallon", "regression",
          left_out={"Name"}, nullable_target=True, full_ci=True, group=2,
          dates={"Year": ["year", "day_of_week"]},
          printed=("left out of the features: Name (identifier-like (311 distinct values",
                   "Year: dates, read as their year, day_of_week",
                   "8 of 406 rows have no 'Miles_per_Gallon': left out of training")),
    Table("fair", "statsmodels", "datasets/fair/fair.csv", "affairs", "regression",
          printed=("1039 rows repeat an earlier row: kept",)),
    Table("fair_pt", "statsmodels", "datasets/fair/fair_pt.csv", "naffairs", "classification",
          left_out={"identifier", "constant"},
          printed=("left out of the features: identifier (identifier-like",)),
    Table("ccard", "statsmodels", "datasets/ccard/ccard.csv", "AVGEXP", "regression", group=2),
    Table("breast_cancer", "sklearn", "datasets/data/breast_cancer.csv", "target",
          "classification"),
    Table("heart", "statsmodels", "datasets/heart/heart.csv", "censors", "classification",
          group=2),
    Table("fertility", "statsmodels", "datasets/fertility/fertility.csv", "2011", "regression",
          left_out={"Country Name", "Country Code", "Indicator Name", "Indicator Code", "2012",
                    "2013"},
          nullable_target=True, group=2),
]  # fmt: skip


def export_csv(table: Table, project: Path, env: dict[str, str], out_dir: Path) -> Path:
    """The table as a CSV file outside the repository, as the team would hand it over."""
    out = out_dir / f"{table.name}.csv"
    out_dir.mkdir(parents=True, exist_ok=True)
    if table.name == "breast_cancer":  # scikit-learn's loader (the project's) names the columns
        script = (
            "import sys; from sklearn.datasets import load_breast_cancer; "
            "load_breast_cancer(as_frame=True).frame.to_csv(sys.argv[1], index=False)"
        )
        run(["uv", "run", "python", "-c", script, str(out)], project, env)
        return out
    source = package_dir(table.package) / table.path
    if source.suffix == ".json":  # records with the same keys
        records = json.loads(source.read_text())
        with out.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
        return out
    out.write_bytes(source.read_bytes())
    return out


# The cells pandas reads as missing (the ones these tables use among pd.read_csv's defaults).
MISSING_CELLS = {"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"}


def json_value(text: str):
    """A CSV cell as a JSON client sends it: null, a number, true/false or the text."""
    if text in MISSING_CELLS:
        return None
    if text in ("True", "False"):
        return text == "True"
    for number in (int, float):
        try:
            value = number(text)
        except ValueError:
            continue
        return None if isinstance(value, float) and math.isnan(value) else value
    return text


def first_labelled_row(csv_file: Path, target: str) -> dict:
    with csv_file.open(newline="") as stream:
        for row in csv.DictReader(stream):
            if row[target] != "":
                return {name: json_value(v) for name, v in row.items() if name != target}
    raise AssertionError(f"{csv_file}: no row with a target")


@pytest.fixture(scope="module")
def env(offline_uv_env) -> dict[str, str]:
    session = {name: value for name, value in os.environ.items() if name != "VIRTUAL_ENV"}
    return {**session, **offline_uv_env, "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def project(generated_projects, tmp_path_factory, env) -> Path:
    """One clone of the cached all-providers project, its environment synced once."""
    project = clone(generated_projects(ALL_PROVIDERS), tmp_path_factory.mktemp("real") / "repo")
    run(["uv", "run", "python", "-m", PACKAGE, "--help"], project, env)
    return project


def restore(project: Path) -> None:
    git(project, "reset", "--hard", "--quiet")
    git(project, "clean", "-fdq")


def assert_api_answers(project: Path, row: dict, table: Table, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = api_command(PACKAGE, port)
    with service(command, lambda: http_ok(f"{base}/health"), project, {}, 120, tmp_path / "api"):
        status, body = http_json("POST", f"{base}/predict", {"rows": [row]})
    assert status == 200, body
    (answer,) = body["predictions"]
    if table.kind == "classification":
        labels = yaml.safe_load((project / "src" / PACKAGE / "schema.yaml").read_text())
        assert answer["label"] in labels["target"]["labels"], answer
    else:
        assert math.isfinite(answer["value"]), answer


def in_group(table: Table):
    return pytest.param(
        table, id=table.name, marks=pytest.mark.xdist_group(f"real-tables-{table.group}")
    )


@pytest.mark.parametrize("table", [in_group(table) for table in TABLES])
def test_a_real_table_is_adopted_and_served(table, project, env, tmp_path):
    restore(project)
    csv_file = export_csv(table, project, env, tmp_path / "exports")
    adopt = ["uv", "run", "python", "-m", PACKAGE, "adopt-data", str(csv_file)]
    result = run([*adopt, "--target", table.target], project, env, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for decision in table.printed:
        assert f"adopt-data: {decision}" in output, output

    contract = yaml.safe_load((project / "src" / PACKAGE / "schema.yaml").read_text())
    assert contract["target"]["kind"] == table.kind
    assert contract["target"]["nullable"] is table.nullable_target
    assert set(contract.get("left_out") or {}) == table.left_out
    assert not table.left_out & set(contract["features"])
    dates = {name: f["parts"] for name, f in contract["features"].items() if f["type"] == "date"}
    assert dates == table.dates
    # DVCLive's per-label files are the data's labels only: the sample's recall_0... are gone
    labels = {str(label) for label in contract["target"].get("labels", [])}
    per_label = project / "dvclive" / "evaluate" / "plots" / "metrics"
    assert {path.stem.removeprefix("recall_") for path in per_label.glob("recall_*")} <= {
        *labels,
        "macro",
    }

    if table.full_ci:
        ci = run(["uv", "run", "poe", "ci"], project, env, check=False, timeout=1800)
        assert ci.returncode == 0, ci.stdout[-5000:] + ci.stderr[-3000:]
        assert "quality gate: passed" in ci.stdout
    else:
        pytest_run = ["uv", "run", "pytest", "-q", "-p", "no:cacheprovider", *GENERATED_TESTS]
        tests = run(pytest_run, project, env, check=False, timeout=1800)
        assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-3000:]
        # poe ci's data validation and quality gate, which judge this table's data and model
        checks = run(["uv", "run", "sh", "-c", "poe validate-data && poe gate"], project, env,
                     check=False)  # fmt: skip
        assert checks.returncode == 0, checks.stdout[-5000:] + checks.stderr[-3000:]
        assert "quality gate: passed" in checks.stdout

    assert_api_answers(project, first_labelled_row(csv_file, table.target), table, tmp_path)
