"""Performance drift: the quality gate's metrics on the predictions whose outcomes came back.

The API's logged predictions (with their ids) are joined with the outcomes reported for them
(feedback.py). Over windows of params.yaml's `monitor.performance.window_days`, the most recent
last, each window's labelled rows get the metrics the pipeline's evaluate stage computes
(evaluate.compute_metrics, the same code). The most recent window is judged as the quality gate
judges a model (thresholds.py): each metric with a threshold in `evaluate.thresholds` fails on
the wrong side of it, or when it is worse than the deployed model's at release (its
reports/metrics.json) by more than `max_drop`. With fewer labelled rows than
`min_labelled_rows` in that window, performance is not judged, and the report says so.
"""

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..evaluate import compute_metrics
from .feedback import labelled_predictions, load_outcomes, load_predictions
from .thresholds import LOWER_IS_BETTER, threshold_failures, worsening

# params.yaml's monitor.performance, for a params.yaml written before it had one.
DEFAULTS = {"window_days": 7, "windows": 4, "min_labelled_rows": 50, "max_drop": 0.05}

PASSED, FAILED = "passed", "failed"
TOO_FEW_LABELS = "too_few_labels"  # not a pass: there is not enough to judge
NOT_MEASURED = "not_measured"  # no prediction log or no outcome at all


def settings(params: dict[str, Any]) -> dict[str, Any]:
    return {**DEFAULTS, **(params.get("monitor", {}).get("performance") or {})}


def _window_name(start: datetime, end: datetime) -> str:
    return f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"


def judge(
    metrics: dict[str, float],
    thresholds: dict[str, float],
    release: dict[str, float],
    max_drop: float,
) -> list[str]:
    """The quality gate's verdict on a window's metrics: thresholds, then the drop against the
    metrics at release, for each metric params.yaml holds the model to."""
    failures = list(threshold_failures(metrics, thresholds).values())
    for name in thresholds:
        if name not in metrics or name not in release:
            continue
        if (drop := worsening(name, metrics[name], release[name])) > max_drop:
            failures.append(
                f"{name} = {metrics[name]:.4f} is {drop:.4f} worse than at release "
                f"({release[name]:.4f}), more than monitor.performance.max_drop {max_drop}"
            )
    return failures


def windows(
    labelled: pd.DataFrame, predictions: pd.DataFrame, options: dict[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """Per window, oldest first: its bounds, predictions, labelled rows and their metrics."""
    span = timedelta(days=options["window_days"])
    rows = []
    for back in range(options["windows"], 0, -1):
        start, end = now - back * span, now - (back - 1) * span
        in_window = (labelled["time"] >= start) & (labelled["time"] < end)
        window = labelled[in_window]
        predicted = predictions[(predictions["time"] >= start) & (predictions["time"] < end)]
        rows.append(
            {
                "window": _window_name(start, end),
                "predictions": len(predicted),
                "labelled_rows": len(window),
                "metrics": compute_metrics(window["outcome"], window["prediction"])
                if len(window)
                else {},
            }
        )
    return rows


def performance_report(
    prediction_log: Path | None,
    outcome_sources: list[Path],
    release_metrics: dict[str, float],
    params: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    options = settings(params)
    thresholds = params["evaluate"]["thresholds"]
    report: dict[str, Any] = {
        **options,
        "thresholds": thresholds,
        "lower_is_better": sorted(LOWER_IS_BETTER & set(thresholds)),
        "release_metrics": {k: v for k, v in release_metrics.items() if k in thresholds},
        "windows": [],
        "failures": [],
    }
    if prediction_log is None or not Path(prediction_log).is_dir():
        return {
            **report,
            "status": NOT_MEASURED,
            "summary": "not measured: the batch is not a directory of the API's prediction logs",
        }
    predictions = load_predictions(prediction_log)
    reported = [load_outcomes(source) for source in outcome_sources]
    outcomes = pd.concat(reported or [pd.DataFrame(columns=["id", "outcome"])], ignore_index=True)
    outcomes = outcomes.drop_duplicates("id", keep="last")
    labelled = labelled_predictions(predictions, outcomes)
    report["predictions"] = len(predictions)
    report["labelled_rows"] = len(labelled)
    report["unmatched_outcomes"] = len(outcomes) - len(labelled)
    if outcomes.empty:
        return {**report, "status": NOT_MEASURED, "summary": "not measured: no outcome reported"}
    now = now or datetime.now(timezone.utc)  # noqa: UP017 (UTC alias: 3.11+)
    report["windows"] = windows(labelled, predictions, options, now)
    latest = report["windows"][-1]
    if latest["labelled_rows"] < options["min_labelled_rows"]:
        report["summary"] = (
            f"not judged, too few labels: {latest['labelled_rows']} labelled rows in the latest "
            f"window ({latest['window']}), fewer than monitor.performance.min_labelled_rows "
            f"({options['min_labelled_rows']})"
        )
        return {**report, "status": TOO_FEW_LABELS}
    failures = judge(latest["metrics"], thresholds, release_metrics, options["max_drop"])
    report["failures"] = [
        f"{failure} in the window {latest['window']} ({latest['labelled_rows']} labelled rows)"
        for failure in failures
    ]
    verdict = "FAILED" if failures else "passed"
    report["summary"] = (
        f"{verdict} in the latest window {latest['window']} ({latest['labelled_rows']} labelled "
        f"rows of {latest['predictions']} logged predictions)"
    )
    return {**report, "status": FAILED if failures else PASSED}
