"""Evaluation on the held-out split: metrics for the quality gate and data for plots."""

import json
from pathlib import Path

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from .data import load_dataset
from .model import load_model
from .schema import FEATURES, LABELS, TARGET


def compute_metrics(actual: pd.Series, predicted) -> dict[str, float]:
    return {
        "accuracy": round(float(accuracy_score(actual, predicted)), 6),
        "f1_macro": round(float(f1_score(actual, predicted, average="macro")), 6),
        "precision_macro": round(
            float(precision_score(actual, predicted, average="macro", zero_division=0)), 6
        ),
        "recall_macro": round(
            float(recall_score(actual, predicted, average="macro", zero_division=0)), 6
        ),
    }


def evaluate(model_path: Path, data: Path, out_dir: Path) -> dict[str, float]:
    df = load_dataset(data)
    predicted = load_model(model_path).predict(df[FEATURES])
    metrics = compute_metrics(df[TARGET], predicted)

    out_dir = Path(out_dir)
    (out_dir / "plots").mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    pd.DataFrame({"actual": df[TARGET], "predicted": predicted}).to_csv(
        out_dir / "plots" / "confusion.csv", index=False
    )
    per_class = f1_score(df[TARGET], predicted, average=None, labels=LABELS, zero_division=0)
    pd.DataFrame({"label": [str(label) for label in LABELS], "f1": per_class.round(6)}).to_csv(
        out_dir / "plots" / "class_scores.csv", index=False
    )
    return metrics
