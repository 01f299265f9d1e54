"""Retraining from recent outcomes: a challenger model, judged against the champion.

`poe retrain` (off until params.yaml's `monitor.retrain.enabled` is true) takes the logged
predictions that have an outcome (feedback.py) and splits them by id: `evaluation_share` of them
are the comparison rows, never trained on; the rest, with their outcomes as the target, are
appended to data/raw/dataset.csv (those it does not hold yet), a new DVC-tracked data version
(`dvc add`), and `dvc repro`
trains the challenger. Champion (the model before) and challenger are scored on the same
comparison rows with the evaluate stage's metrics, and the challenger must pass the quality gate
against the champion (quality.check: thresholds, no regression beyond evaluate.max_regression)
and be better on a metric params.yaml holds the model to. Otherwise the workspace is put back as
it was. reports/retrain.md has both results; reports/retrain.json says whether to propose it
(scripts/forge.py opens the pull/merge request).
"""

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from ..data import load_dataset
from ..evaluate import compute_metrics
from ..model import load_model
from .config import MODEL_PATH, RAW_DATA
from .feedback import labelled_predictions, load_outcomes, load_predictions
from .quality import check
from .schema import CONTRACT
from .thresholds import worsening
from .traffic import frame_of

# params.yaml's monitor.retrain, for a params.yaml written before it had one.
DEFAULTS = {"enabled": False, "evaluation_share": 0.5, "min_labelled_rows": 50}


class RetrainError(RuntimeError):
    pass


def settings(params: dict[str, Any]) -> dict[str, Any]:
    return {**DEFAULTS, **(params.get("monitor", {}).get("retrain") or {})}


def labelled_rows(log: Path, outcome_sources: list[Path]) -> pd.DataFrame:
    """The logged rows that have an outcome: the features, the outcome as the target, the id."""
    records = []
    for path in sorted(Path(log).rglob("predictions-*.jsonl")):
        with path.open(encoding="utf-8") as f:
            records += [json.loads(line) for line in f if line.strip()]
    features = frame_of([r["features"] for r in records if r.get("id")])
    features["id"] = pd.Series([r["id"] for r in records if r.get("id")], dtype=object)
    outcomes = pd.concat([load_outcomes(source) for source in outcome_sources])
    outcomes = outcomes.drop_duplicates("id", keep="last")
    joined = labelled_predictions(load_predictions(log), outcomes)[["id", "outcome"]]
    rows = features.drop_duplicates("id", keep="last").merge(joined, on="id")
    return rows.rename(columns={"outcome": CONTRACT.target})


def for_evaluation(record_id: str, share: float) -> bool:
    """Whether a labelled row is a comparison row: by its id, the same answer every run."""
    return int(hashlib.sha256(record_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def scores(model_path: Path, rows: pd.DataFrame) -> dict[str, float]:
    predicted = load_model(model_path).predict(rows[CONTRACT.names])
    return compute_metrics(rows[CONTRACT.target], predicted)


def verdict(
    champion: dict[str, float], challenger: dict[str, float], evaluate: dict[str, Any]
) -> list[str]:
    """Why the challenger is not proposed (empty: it beats the champion)."""
    # The metrics params.yaml holds the model to: one class's recall may move either way.
    held = list(evaluate["thresholds"])
    new, old = ({m: metrics[m] for m in held if m in metrics} for metrics in (challenger, champion))
    _, failures = check(new, evaluate["thresholds"], old, evaluate["max_regression"])
    better = [m for m in held if m in new and m in old and worsening(m, new[m], old[m]) < 0]
    if not better:
        failures.append(
            "it is better than the champion on none of " + ", ".join(evaluate["thresholds"])
        )
    return failures


def render(
    champion: dict[str, float], challenger: dict[str, float], rows: dict[str, int], why: list[str]
) -> str:
    lines = [
        "## Retraining: challenger against champion",
        "",
        f"**Result: {'proposed' if not why else 'not proposed'}**. The challenger was trained "
        f"with {rows['trained']} recent labelled rows added to the data; both models are "
        f"scored on the same {rows['compared']} other recent labelled rows.",
        "",
        "| metric | champion | challenger |",
        "|---|---|---|",
        *[f"| {name} | {champion[name]} | {challenger[name]} |" for name in challenger],
    ]
    if why:
        lines += ["", "The challenger does not beat the champion:", *[f"- {w}" for w in why]]
    return "\n".join(lines) + "\n"


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RetrainError(f"`{' '.join(command)}` failed: {result.stderr.strip()[-2000:]}")


def restore() -> None:
    """The workspace as before: the data version and the pipeline's outputs of the champion."""
    _run("git", "checkout", "HEAD", "--", ".")  # the tracked files were clean (cli.py checks)
    _run("dvc", "checkout", "--quiet", "--force")


def retrain(
    log: Path, outcome_sources: list[Path], params: dict[str, Any], reports: Path
) -> dict[str, Any]:
    options = settings(params)
    result: dict[str, Any] = {"proposed": False}
    if not options["enabled"]:
        return {**result, "summary": "off (params.yaml monitor.retrain.enabled is false)"}
    if not Path(log).is_dir():  # a CSV batch (MONITOR_BATCH) has no prediction ids to label
        return {
            **result,
            "summary": f"not attempted: {log} is not a directory of the API's prediction logs",
        }
    labelled = labelled_rows(log, [log, *outcome_sources])
    if len(labelled) < options["min_labelled_rows"]:
        return {
            **result,
            "summary": f"not attempted: {len(labelled)} labelled rows, fewer than "
            f"monitor.retrain.min_labelled_rows ({options['min_labelled_rows']})",
        }
    compared = labelled["id"].map(lambda i: for_evaluation(i, options["evaluation_share"]))
    evaluation, training = labelled[compared], labelled[~compared]
    raw = load_dataset(RAW_DATA)
    known = set(raw.itertuples(index=False, name=None))  # rows the data has are not added again
    rows = training[raw.columns].itertuples(index=False, name=None)
    training = training[[row not in known for row in rows]]
    added = pd.concat([raw, training[raw.columns]], ignore_index=True)
    champion = scores(MODEL_PATH, evaluation)
    kept = Path(reports) / "champion" / MODEL_PATH.name
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(MODEL_PATH, kept)
    new_data = RAW_DATA.with_suffix(".new.csv")
    added.to_csv(new_data, index=False)
    try:
        load_dataset(new_data)  # the new data version is valid before it replaces the old
        RAW_DATA.unlink()  # DVC may have linked it to its cache: never write through it
        new_data.rename(RAW_DATA)
        _run("dvc", "add", "--quiet", str(RAW_DATA))
        _run("dvc", "repro", "--quiet")
        challenger = scores(MODEL_PATH, evaluation)
    except BaseException:
        new_data.unlink(missing_ok=True)
        restore()
        raise
    why = verdict(champion, challenger, params["evaluate"])
    rows = {"trained": len(training), "compared": len(evaluation)}
    Path(reports, "retrain.md").write_text(render(champion, challenger, rows, why))
    if why:
        restore()
    summary = (
        "the challenger does not beat the champion; nothing proposed: " + "; ".join(why)
        if why
        else "the challenger beats the champion; reports/retrain.md has both results"
    )
    return {
        **result,
        "proposed": not why,
        "summary": summary,
        "champion": champion,
        "challenger": challenger,
        **rows,
    }
