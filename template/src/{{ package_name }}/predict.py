"""Batch prediction: a CSV of feature rows in, the same rows with predictions out."""

from pathlib import Path

import numpy as np
import pandas as pd

from .data import load_dataset
from .mlops.api import CONTRACT, FEATURES, written_atomically
from .model import load_model


def predict_frame(model, df: pd.DataFrame) -> pd.DataFrame:
    """A copy of df with `prediction` (a label as in the data, or a number) and, for a
    classifier, `confidence` (the predicted label's probability)."""
    out = df.copy()
    if not CONTRACT.classification:
        out["prediction"] = np.asarray(model.predict(df[FEATURES]), dtype=float)
        return out
    probabilities = model.predict_proba(df[FEATURES])
    # classes_ names predict_proba's columns; tolist() gives Python values (3, "red", True).
    out["prediction"] = np.asarray(model.classes_)[probabilities.argmax(axis=1)].tolist()
    out["confidence"] = probabilities.max(axis=1).round(6)
    return out


def predict_file(model_path: Path, data: Path, out: Path) -> pd.DataFrame:
    df = load_dataset(data, require_target=False)
    result = predict_frame(load_model(model_path), df)
    with written_atomically(out) as temporary:
        result.to_csv(temporary, index=False)
    return result
