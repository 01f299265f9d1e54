"""Batch scoring (issue 28): `poe predict-batch INPUT OUTPUT` in a generated project.

The input is ten times the bundled data (each copy perturbed a little, every row with an id),
with rows that break the contract in different ways. Every row ends in exactly one of the two
outputs: scored with its id and the model's version, or rejected with the column and the
problem. Scoring in small chunks gives the same bytes as in one chunk, and the same
predictions as the project's own `predict` command on the same rows. A directory of CSV files
is scored file by file; a file that cannot be read stops the run and leaves the previous
outputs as they were. Peak memory is measured in benchmarks/batch.py, not here.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
from pathlib import Path

import pytest
import yaml

from tests.harness.ci_variants import GITHUB_ONLY
from tests.harness.commands import run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(GITHUB_ONLY.id)]

PACKAGE = "my_model"
QUIET = {"NO_COLOR": "1"}
# data row -> (column, value, the problem predict-batch names)
BAD_ROWS = {
    7: ("alcohol", "abc", "column 'alcohol': not a number (abc)"),
    123: ("proline", "", "column 'proline': missing value"),
    900: ("hue", "1e20", "column 'hue': out of range"),
    1500: ("magnesium", "inf", "column 'magnesium': out of range"),
}


@pytest.fixture(scope="module")
def project(generated_projects) -> Path:
    return generated_projects(GITHUB_ONLY)


def predict_batch(project: Path, *args, check: bool = True, poe: bool = False):
    """predict-batch as `uv run poe` runs it, or (quicker) straight from the environment."""
    env = {**os.environ, **QUIET}
    command = ["uv", "run", "poe"] if poe else [".venv/bin/python", "-m", PACKAGE]
    return run([*command, "predict-batch", *map(str, args)], project, env, check=check)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def feature_rows(project: Path) -> list[dict[str, str]]:
    """The bundled data's rows without the label."""
    target = yaml.safe_load((project / "src" / PACKAGE / "schema.yaml").read_text())["target"]
    return [
        {k: v for k, v in row.items() if k != target["name"]}
        for row in read_rows(project / "data" / "raw" / "dataset.csv")
    ]


def ten_times(project: Path) -> list[dict[str, str]]:
    """The bundled rows ten times, an id first; copies after the first scaled by up to 1 %;
    then the rows of BAD_ROWS broken."""
    noise = random.Random(28)
    base = feature_rows(project)
    rows = []
    for copy in range(10):
        for row in base:
            scale = 1 + noise.uniform(-0.01, 0.01) if copy else 1
            values = {k: f"{float(v) * scale:.6g}" for k, v in row.items()}
            rows.append({"id": f"row-{len(rows)}", **values})
    for index, (column, value, _) in BAD_ROWS.items():
        rows[index][column] = value
    return rows


def test_ten_times_the_data_every_row_scored_or_rejected(project, tmp_path):
    rows = ten_times(project)
    source = write_rows(tmp_path / "in" / "batch.csv", rows)
    output = tmp_path / "out" / "predictions.csv"
    result = predict_batch(project, source, output, poe=True)
    assert f"{len(rows) - len(BAD_ROWS)} rows of 1 file(s) scored" in result.stdout
    scored = read_rows(output)
    rejected = read_rows(output.with_suffix(".rejected.csv"))

    # Nothing lost: each id in exactly one of the two files, the bad rows apart.
    rejected_ids = [json.loads(r["values"])["id"] for r in rejected]
    assert sorted(rejected_ids) == sorted(f"row-{i}" for i in BAD_ROWS)
    assert len(scored) + len(rejected) == len(rows)
    assert {r["id"] for r in scored} | set(rejected_ids) == {r["id"] for r in rows}
    for entry in rejected:
        column, value, problem = BAD_ROWS[int(entry["row"])]
        assert problem in entry["problems"], entry
        assert entry["source"] == "batch.csv"
        assert json.loads(entry["values"])[column] == (value or None), "the row as it was read"

    model_md5 = hashlib.md5((project / "models" / "model.joblib").read_bytes()).hexdigest()
    assert {r["model_version"] for r in scored} == {model_md5}
    labels = yaml.safe_load((project / "src" / PACKAGE / "schema.yaml").read_text())["target"]
    assert {r["prediction"] for r in scored} <= {str(label) for label in labels["labels"]}
    assert all(0 < float(r["confidence"]) <= 1 for r in scored)
    assert [r["id"] for r in scored] == [
        f"row-{i}" for i in range(len(rows)) if i not in BAD_ROWS
    ], "rows keep their order"

    # Chunks change nothing: 97 rows at a time gives the same bytes as 20 000.
    again = tmp_path / "out" / "chunked.csv"
    predict_batch(project, source, again, "--chunk-rows", "97")
    assert again.read_bytes() == output.read_bytes()
    assert again.with_suffix(".rejected.csv").read_bytes() == (
        output.with_suffix(".rejected.csv").read_bytes()
    )

    # The same predictions as the project's `predict` command on the unperturbed first copy.
    predicted = tmp_path / "predict.csv"
    command = [".venv/bin/python", "-m", PACKAGE, "predict", "data/raw/dataset.csv"]
    run([*command, "--out", str(predicted)], project, {**os.environ, **QUIET})
    expected = {f"row-{i}": r["prediction"] for i, r in enumerate(read_rows(predicted))}
    first_copy = [r for r in scored if r["id"] in expected]
    assert len(first_copy) == len(expected) - sum(1 for i in BAD_ROWS if i < len(expected))
    assert all(r["prediction"] == expected[r["id"]] for r in first_copy)


def test_a_directory_of_files_and_the_refusals(project, tmp_path):
    rows = feature_rows(project)
    inputs = tmp_path / "incoming"
    write_rows(inputs / "monday.csv", rows[:50])
    write_rows(inputs / "later" / "tuesday.csv", rows[50:80])
    (inputs / "empty.csv").write_text("")  # an export with nothing in it
    output = tmp_path / "scored" / "all.csv"
    predict_batch(project, inputs, output)
    scored = read_rows(output)
    assert [r["source"] for r in scored] == ["later/tuesday.csv"] * 30 + ["monday.csv"] * 50
    assert scored[0]["id"] == "later/tuesday.csv:0", "no id column: the file and its row"
    before = output.read_bytes()

    # A file that is not CSV text stops the run; the previous outputs stay as they were.
    (inputs / "photo.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 50)
    refused = predict_batch(project, inputs, output, check=False)
    assert refused.returncode == 2
    assert "photo.csv: not a CSV text file" in refused.stderr
    assert "nothing was written" in refused.stderr
    assert output.read_bytes() == before
    assert sorted(p.name for p in output.parent.iterdir()) == ["all.csv", "all.rejected.csv"]
    (inputs / "photo.csv").unlink()

    # A file without a contract column: every row rejected and named, exit 1.
    first = list(rows[0])[0]
    write_rows(inputs / "wrong.csv", [{k: v for k, v in r.items() if k != first} for r in rows])
    broken = predict_batch(project, inputs / "wrong.csv", tmp_path / "wrong-out.csv", check=False)
    assert broken.returncode == 1
    assert "more than --max-rejected-share" in broken.stderr
    rejected = read_rows(tmp_path / "wrong-out.rejected.csv")
    assert len(rejected) == len(rows)
    assert all(r["problems"] == f"column '{first}': missing" for r in rejected)
    assert read_rows(tmp_path / "wrong-out.csv") == [], "the header alone"

    # No input, and an output that would overwrite the input: refused before writing.
    missing = predict_batch(project, tmp_path / "nowhere", tmp_path / "x.csv", check=False)
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    onto = predict_batch(project, inputs / "monday.csv", inputs / "monday.csv", check=False)
    assert onto.returncode == 2 and "would overwrite an input file" in onto.stderr
    assert len(read_rows(inputs / "monday.csv")) == 50
    assert not (tmp_path / "x.csv").exists()
