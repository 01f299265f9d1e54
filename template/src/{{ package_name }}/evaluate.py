"""Evaluation on the held-out split: metrics for the quality gate and data for plots."""

import json
from pathlib import Path

import pandas as pd
from sklearn import metrics as sk

from .data import load_dataset
from .mlops.api import CONTRACT, Contract, write_text_atomically, written_atomically
from .model import load_model


def compute_metrics(
    actual: pd.Series, predicted, contract: Contract = CONTRACT
) -> dict[str, float]:
    """reports/metrics.json: a flat name -> number mapping, by the kind of target."""
    if not contract.classification:
        scores = {
            "rmse": sk.mean_squared_error(actual, predicted) ** 0.5,
            "mae": sk.mean_absolute_error(actual, predicted),
            "r2": sk.r2_score(actual, predicted),
        }
        return {name: round(float(value), 6) for name, value in scores.items()}
    labels = list(contract.labels)
    scores = {
        "accuracy": sk.accuracy_score(actual, predicted),
        "f1_macro": sk.f1_score(actual, predicted, average="macro", zero_division=0),
        "precision_macro": sk.precision_score(actual, predicted, average="macro", zero_division=0),
        "recall_macro": sk.recall_score(actual, predicted, average="macro", zero_division=0),
    }
    per_class = sk.recall_score(actual, predicted, labels=labels, average=None, zero_division=0)
    scores.update({f"recall_{lab}": recall for lab, recall in zip(labels, per_class, strict=True)})
    return {name: round(float(value), 6) for name, value in scores.items()}


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    with written_atomically(path) as temporary:  # whole, or the previous file kept
        table.to_csv(temporary, index=False)


def write_plots(actual: pd.Series, predicted, plots_dir: Path, contract: Contract) -> None:
    """The plot data dvc.yaml declares for the kind of target, into reports/plots/."""
    pairs = pd.DataFrame({"actual": actual, "predicted": predicted})
    if not contract.classification:
        _write_csv(pairs, plots_dir / "predictions.csv")
        return
    _write_csv(pairs, plots_dir / "confusion.csv")
    labels = list(contract.labels)
    per_class = sk.f1_score(actual, predicted, average=None, labels=labels, zero_division=0)
    scores = pd.DataFrame({"label": [str(label) for label in labels], "f1": per_class.round(6)})
    _write_csv(scores, plots_dir / "class_scores.csv")


def evaluate(model_path: Path, data: Path, out_dir: Path) -> dict[str, float]:
    df = load_dataset(data)
    predicted = load_model(model_path).predict(df[CONTRACT.names])
    metrics = compute_metrics(df[CONTRACT.target], predicted)

    out_dir = Path(out_dir)
    write_text_atomically(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    write_plots(df[CONTRACT.target], predicted, out_dir / "plots", CONTRACT)
    return metrics
