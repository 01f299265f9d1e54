"""Performance monitoring from real outcomes (issue 27), end to end in a cached generated
project (scikit-learn, FastAPI, every CI provider):

the API is served by uvicorn with its prediction log on; the rows of the data are predicted,
their outcomes posted to /feedback (first the model's own answers, then with the label flipped
on a share of rows); `uv run poe monitor` on the log passes, then fails naming the metric, the
window and the labelled rows; the report page it writes opens in headless Chromium with the
verdict first and a chart per feature. The CI files publish that page. `poe retrain` on shifted
rows: with outcomes that the champion already gets right the challenger does not beat it and
nothing is opened; with the true labels it does, and the pull request is opened through the
recording `gh` stand-in (GitHub is unreachable; the same stand-in as the template-update test).
Bad feedback (unknown id, wrong type, wrong key, oversize) is covered by the generated
project's own tests/test_api.py, which `poe ci` runs.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.harness.ci_variants import ALL_PROVIDERS
from tests.harness.commands import run
from tests.harness.git import commit, git
from tests.harness.github import gh_standin
from tests.harness.render import clone
from tests.harness.services import api_command, free_port, http_ok, service

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(ALL_PROVIDERS.id)]

PACKAGE = "my_model"
KEY = "feedback-key"
FLIPPED_SHARE = 0.4  # of the rows whose outcome contradicts the model


def post(url: str, body: dict, key: str = KEY) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def feature_rows(work: Path) -> list[dict]:
    """The data's rows without the label, numbers as numbers (the wine data is all floats)."""
    with (work / "data" / "raw" / "dataset.csv").open() as f:
        return [
            {name: float(value) for name, value in row.items() if name != "label"}
            for row in csv.DictReader(f)
        ]


def logging_api(traffic: Path) -> dict[str, str]:
    """The API's settings as deployed: every prediction logged to traffic, the key required."""
    return {"PREDICTION_LOG_DIR": str(traffic), "PREDICTION_LOG_SAMPLE_RATE": "1", "API_KEY": KEY}


@pytest.fixture(scope="module")
def monitored(generated_projects, tmp_path_factory):
    """A clone with its model, the API's log after predictions and matching outcomes, and the
    log's directory; the API is stopped by then."""
    work = clone(generated_projects(ALL_PROVIDERS), tmp_path_factory.mktemp("perf") / "work")
    env = {**os.environ, "NO_COLOR": "1"}
    run(["uv", "run", "poe", "pull"], work, env)
    traffic = work / "data" / "traffic" / "production"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api_env = logging_api(traffic)
    rows = feature_rows(work)
    with service(
        api_command(PACKAGE, port), lambda: http_ok(f"{base}/health"), work, api_env, 120,
        work.parent / "api.log",
    ):  # fmt: skip
        status, answered = post(f"{base}/predict", {"rows": rows})
        assert status == 200, answered
        predictions = answered["predictions"]
        matching = [{"id": p["id"], "outcome": p["label"]} for p in predictions]
        status, stored = post(f"{base}/feedback", {"outcomes": matching})
        assert (status, stored) == (200, {"stored": len(rows)})
        bad = post(f"{base}/feedback", {"outcomes": matching[:1]}, key="wrong")[0]
        unknown = post(f"{base}/feedback", {"outcomes": [{"id": "0" * 32, "outcome": 0}]})[0]
        yield work, env, traffic, predictions, (bad, unknown), base


def poe_monitor(work: Path, env: dict[str, str], traffic: Path):
    return run(
        ["uv", "run", "poe", "monitor"],
        work,
        {**env, "MONITOR_BATCH": str(traffic)},
        check=False,
    )


def test_matching_outcomes_pass_and_flipped_labels_fail_naming_the_metric(monitored):
    work, env, traffic, predictions, refused, _ = monitored
    assert refused == (401, 404)  # wrong key, unknown id: 4xx, and nothing stored (below)
    (outcome_log,) = traffic.glob("outcomes-*.jsonl")
    assert len(outcome_log.read_text().splitlines()) == len(predictions)

    passed = poe_monitor(work, env, traffic)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "performance: passed in the latest window" in passed.stdout
    assert f"({len(predictions)} labelled rows" in passed.stdout

    # The label flipped on a share of rows, reported as a batch system would: a CSV file.
    flipped = int(len(predictions) * FLIPPED_SHARE)
    outcomes = work / "outcomes.csv"
    lines = [f"{p['id']},{(p['label'] + 1) % 3}" for p in predictions[:flipped]]
    outcomes.write_text("id,outcome\n" + "\n".join(lines) + "\n")
    failed = run(
        ["uv", "run", "poe", "monitor"],
        work,
        {**env, "MONITOR_BATCH": str(traffic), "MONITOR_OUTCOMES": str(outcomes)},
        check=False,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    accuracy = 1 - flipped / len(predictions)
    assert f"performance drop: accuracy = {accuracy:.4f} is below its threshold" in failed.stderr
    assert f"({len(predictions)} labelled rows)" in failed.stderr
    assert re.search(r"in the window \d{4}-\d\d-\d\d \d\d:\d\d to ", failed.stderr)
    performance = json.loads((work / "reports" / "performance.json").read_text())
    assert performance["status"] == "failed"
    assert performance["windows"][-1]["metrics"]["accuracy"] == pytest.approx(accuracy, abs=1e-6)


def test_the_report_opens_in_a_headless_browser(monitored):
    work, env, traffic, *_ = monitored
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/install-ci-tools installs it)")
    poe_monitor(work, env, traffic)  # whichever test ran first, a page of this log
    page = work / "reports" / "monitoring.html"
    assert not re.search(r'(src|href)="|<link|<script', page.read_text()), "it loads nothing"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()]
    dom = run(command, work, timeout=120).stdout
    body = dom.split("<body>", 1)[1]
    assert body.index('id="verdict"') < body.index('id="drift"') < body.index('id="performance"')
    verdict = body.split('id="verdict"', 1)[1].split("</section>", 1)[0]
    assert "Data drift:" in verdict and "Performance:" in verdict
    features = json.loads((work / "models" / "reference.json").read_text())
    charts = re.findall(r'<figure class="feature" data-feature="([^"]+)"[^>]*>.*?<svg', body, re.S)
    assert charts == list(features)
    for name in features:  # two bars a bucket: the training data's share and the batch's
        figure = body.split(f'data-feature="{name}"', 1)[1].split("</figure>", 1)[0]
        assert figure.count('class="reference"') == figure.count('class="batch"') > 1
    assert '<figure class="metric" data-metric="accuracy">' in body


def test_retrain_proposes_a_challenger_only_when_it_beats_the_champion(
    generated_projects, tmp_path
):
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(generated_projects(ALL_PROVIDERS)), str(origin))
    work = clone(origin, tmp_path / "work")
    params = work / "params.yaml"
    params.write_text(params.read_text().replace("    enabled: false", "    enabled: true"))
    commit(work, "Enable retraining", add_all=False)
    gh = gh_standin(tmp_path / "gh-standin")
    env = {**os.environ, "NO_COLOR": "1", "GITHUB_ACTIONS": "true", "GH_TOKEN": "t0k",
           "GITHUB_REPOSITORY": "acme/my-model", "GH_STANDIN_DIR": str(gh),
           "PATH": f"{gh}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    run(["uv", "run", "poe", "pull"], work, env)
    traffic = work / "data" / "traffic" / "recent"
    rows = feature_rows(work)
    labels = [int(line.rsplit(",", 1)[1]) for line in
              (work / "data" / "raw" / "dataset.csv").read_text().splitlines()[1:]]  # fmt: skip
    # The same wines measured on a new instrument: every feature moved far past its range.
    spans = {name: max(r[name] for r in rows) - min(r[name] for r in rows) for name in rows[0]}
    shifted = [{name: value + 3 * spans[name] for name, value in row.items()} for row in rows]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api_env = logging_api(traffic)
    with service(
        api_command(PACKAGE, port), lambda: http_ok(f"{base}/health"), work, api_env, 120,
        tmp_path / "api.log",
    ):  # fmt: skip
        predictions = post(f"{base}/predict", {"rows": shifted})[1]["predictions"]
        # First the model's own answers come back: the champion is right on every row.
        own = [{"id": p["id"], "outcome": p["label"]} for p in predictions]
        assert post(f"{base}/feedback", {"outcomes": own})[0] == 200
        retrain_env = {**env, "MONITOR_BATCH": str(traffic)}
        worse = run(["uv", "run", "poe", "retrain"], work, retrain_env, check=False)
        output = worse.stdout + worse.stderr
        assert worse.returncode == 0, output
        assert "retrain: the challenger does not beat the champion; nothing proposed" in output
        assert "retrain: nothing to propose" in output and not (gh / "calls.log").exists()
        assert git(work, "status", "--porcelain", "--untracked-files=no") == ""
        assert git(work, "branch", "--show-current") == "main"
        # Then the true labels: the champion is wrong on most shifted rows, the challenger
        # (trained on part of them) is right on the others.
        pairs = zip(predictions, labels, strict=True)
        truth = [{"id": p["id"], "outcome": label} for p, label in pairs]
        assert post(f"{base}/feedback", {"outcomes": truth})[0] == 200
    better = run(["uv", "run", "poe", "retrain"], work, retrain_env, check=False)
    output = better.stdout + better.stderr
    assert better.returncode == 0, output
    assert "retrain: the challenger beats the champion" in output
    assert "retrain: https://github.com/acme/my-model/pull/1" in output
    calls = (gh / "calls.log").read_text()
    assert calls.startswith("pr create --head retrain/"), calls
    assert "| accuracy | " in calls and "**Result: proposed**" in calls
    branch = git(work, "branch", "--show-current")
    proposed = git(origin, "show", "--stat", "--format=%s", branch)
    assert "Retrain on recent labelled data" in proposed
    assert "data/raw/dataset.csv.dvc" in proposed and "dvc.lock" in proposed
