"""The generated API and pipeline under hostile input (issue 12), in a cached generated project.

- schemathesis (`st run --checks all`) fuzzes the API served by uvicorn from the project's own
  environment: over scikit-learn open and with an API key, over PyTorch open: no failure.
- Bad data (inf, a single class, an empty or a binary file, duplicate rows) stops in `validate`
  naming the column and rows, without a traceback; a failed training leaves the previous model
  in the workspace (real `dvc repro`).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from tests.harness.ci_variants import ALL_PROVIDERS, GITLAB_ONLY
from tests.harness.commands import run
from tests.harness.render import clone
from tests.harness.services import api_command, free_port, http_ok, service

# Each test names the xdist group of its cached project (xdist would join a module-wide
# group and a test's own into a third group, on any worker).
pytestmark = pytest.mark.slow

PACKAGE = "my_model"
SCHEMATHESIS = Path(sys.executable).with_name("st")


def sh(*command: str, cwd: Path, check: bool = True):
    return run(list(command), cwd, {**os.environ, "NO_COLOR": "1"}, check=check)


@pytest.fixture(scope="module")
def project(generated_projects) -> Path:
    return generated_projects(ALL_PROVIDERS)


def _fuzz(project_variant, api_key, max_examples):
    group = pytest.mark.xdist_group(project_variant.id)  # the worker that holds that project
    framework = project_variant.data["ml_framework"]
    test_id = f"{framework}-{'api_key' if api_key else 'open'}"
    return pytest.param(project_variant, api_key, max_examples, marks=group, id=test_id)


# The open scikit-learn API in depth; with a key and over PyTorch (the cached GitLab project)
# fewer examples: the request schema comes from the same contract and code.
@pytest.mark.parametrize(
    ("project_variant", "api_key", "max_examples"),
    [
        _fuzz(ALL_PROVIDERS, None, None),
        _fuzz(ALL_PROVIDERS, "key-for-the-fuzzer", 25),
        _fuzz(GITLAB_ONLY, None, 25),
    ],
)
def test_schemathesis_finds_no_failure(
    project_variant, api_key, max_examples, generated_projects, tmp_path
):
    project = generated_projects(project_variant)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = api_command(PACKAGE, port)
    # As deployed: the prediction log on, so /feedback stores outcomes (unset, it answers 503).
    env = {"PREDICTION_LOG_DIR": str(tmp_path / "traffic")}
    env |= {"API_KEY": api_key} if api_key else {}
    with service(command, lambda: http_ok(f"{base}/health"), project, env, 120, tmp_path / "log"):
        fuzz = [str(SCHEMATHESIS), "run", f"{base}/openapi.json", "--checks", "all"]
        if api_key:  # every request with the key (the ignored_auth check also tries without)
            fuzz += ["--header", f"X-API-Key: {api_key}"]
        if max_examples:
            fuzz += ["--max-examples", str(max_examples)]
        result = sh(*fuzz, cwd=tmp_path, check=False)
    summary = result.stdout[-6000:]
    assert result.returncode == 0, summary
    counts = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert counts and counts.group(1) == counts.group(2), summary
    # The one warning allowed: /feedback's random ids name no logged prediction, so its answer
    # is 404 ("missing test data" to schemathesis); that refusal is what is being tested.
    warnings = (
        summary.split("Warnings:")[1].split("Test cases:")[0] if "Warnings:" in summary else ""
    )
    for line in filter(None, map(str.strip, warnings.splitlines())):
        assert "Missing test data: 1 operation" in line and "- POST /feedback" in summary, summary


def replace_raw(work: Path, text: str | bytes) -> None:
    """Write the raw data file; unlink first, as DVC may have linked it to its cache."""
    raw = work / "data" / "raw" / "dataset.csv"
    raw.unlink()
    raw.write_bytes(text.encode() if isinstance(text, str) else text)


def set_param(work: Path, section: str, name: str, value) -> None:
    params = yaml.safe_load((work / "params.yaml").read_text())
    params[section][name] = value
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.xdist_group(ALL_PROVIDERS.id)
def test_bad_data_stops_in_validate_and_failed_training_keeps_the_model(project, tmp_path):
    work = clone(project, tmp_path / "work")
    sh("uv", "run", "poe", "pull", cwd=work)
    model = work / "models" / "model.joblib"
    trained = model.read_bytes()
    good = (work / "data" / "raw" / "dataset.csv").read_text()
    header, *rows = good.splitlines()
    column = header.split(",")[1]

    def with_value(row: str, value: str) -> str:
        fields = row.split(",")
        fields[1] = value
        return ",".join(fields)

    # inf in a feature, through the pipeline: validate stops it before train deletes anything.
    replace_raw(work, "\n".join([header, *(with_value(r, "inf") if i in (2, 5) else r
                                           for i, r in enumerate(rows))]) + "\n")  # fmt: skip
    stopped = sh("uv", "run", "dvc", "repro", "--downstream", "validate", cwd=work, check=False)
    output = stopped.stdout + stopped.stderr
    assert stopped.returncode != 0
    assert f"column '{column}': values outside" in output and "in rows 2, 5" in output, output
    assert "Traceback" not in output and "Running stage 'train'" not in output
    assert model.read_bytes() == trained

    label = header.split(",").index("label")
    single_class = [r for r in rows if r.split(",")[label] == "0"]
    cases = {
        "single class": ("\n".join([header, *single_class]) + "\n", "column 'label': no rows of"),
        "empty file": ("", "the file is empty"),
        "binary file": (bytes(range(256)) * 8, "not a CSV text file"),
        "duplicate rows": (
            "\n".join([header, *rows, rows[3], rows[7]]) + "\n",
            f"rows {len(rows)}, {len(rows) + 1} repeat an earlier row",
        ),
    }
    for case, (content, message) in cases.items():
        replace_raw(work, content)
        result = sh("uv", "run", "python", "-m", PACKAGE, "validate", "data/raw/dataset.csv",
                    cwd=work, check=False)  # fmt: skip
        assert result.returncode == 2, f"{case}: {result.stdout}{result.stderr}"
        assert message in result.stderr and "Traceback" not in result.stderr, case
    set_param(work, "validate", "duplicates", "keep")
    sh("uv", "run", "python", "-m", PACKAGE, "validate", "data/raw/dataset.csv", cwd=work)

    # A training that fails (an invalid parameter) after validation passed keeps the model.
    replace_raw(work, good)
    set_param(work, "train", "n_estimators", -1)
    failed = sh("uv", "run", "dvc", "repro", cwd=work, check=False)
    assert failed.returncode != 0 and "Running stage 'train'" in failed.stdout, failed.stdout
    assert model.read_bytes() == trained
