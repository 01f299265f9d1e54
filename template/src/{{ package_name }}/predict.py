"""Batch prediction: a CSV of feature rows in, the same rows with predictions out."""

from pathlib import Path

import pandas as pd

from .data import load_dataset
from .model import load_model
from .schema import FEATURES, LABELS


def predict_frame(model, df: pd.DataFrame) -> pd.DataFrame:
    probabilities = model.predict_proba(df[FEATURES])
    out = df.copy()
    out["prediction"] = [LABELS[i] for i in probabilities.argmax(axis=1)]
    out["confidence"] = probabilities.max(axis=1).round(6)
    return out


def predict_file(model_path: Path, data: Path, out: Path) -> pd.DataFrame:
    df = load_dataset(data, require_target=False)
    result = predict_frame(load_model(model_path), df)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(out, index=False)
    return result
