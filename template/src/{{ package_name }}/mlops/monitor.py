"""Drift monitoring: compare a new batch of data with the training reference.

Each feature's drift is its population stability index (PSI) between the training data and the
batch, over the feature's buckets in the reference (reference.py): quintile bins for a number,
the allowed values for a category or boolean, and missing values in a bucket of their own. The
batch drifts when the share of drifting features passes params.yaml's limit.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import load_dataset
from .atomic import write_text_atomically
from .reference import CATEGORIES, shares
from .schema import CONTRACT, validate
from .traffic import load_traffic

_EPSILON = 1e-4  # keeps empty buckets from dividing by zero
MISSING = "missing"  # the last bucket: missing values (and, for a category, any other value)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.clip(expected, _EPSILON, None)
    actual = np.clip(actual, _EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def feature_drift(profile: dict[str, Any], values: pd.Series, psi_threshold: float) -> dict:
    """One feature's test, score and verdict, with what moved: the share of each category (and
    of missing values), or the mean of a number and its share of missing values."""
    reference, batch = np.asarray(profile["proportions"]), shares(profile, values)
    score = psi(reference, batch)
    result = {"test": profile["test"], "score": round(score, 6), "drifted": score > psi_threshold}
    if profile["test"] == CATEGORIES:
        buckets = [str(category) for category in profile["categories"]] + [MISSING]
        result["reference_shares"] = dict(zip(buckets, reference.round(6).tolist(), strict=True))
        result["batch_shares"] = dict(zip(buckets, batch.round(6).tolist(), strict=True))
    else:
        mean = values.astype(float).mean()
        result["reference_mean"] = profile["mean"]
        result["batch_mean"] = None if np.isnan(mean) else round(float(mean), 6)
        result["reference_missing"] = round(float(reference[-1]), 6)
        result["batch_missing"] = round(float(batch[-1]), 6)
    return result


def drift_report(
    reference: dict[str, Any], batch: pd.DataFrame, psi_threshold: float, max_drifted_share: float
) -> dict[str, Any]:
    features = {
        name: feature_drift(reference[name], batch[name], psi_threshold) for name in CONTRACT.names
    }
    share = sum(f["drifted"] for f in features.values()) / len(features)
    return {
        "rows": len(batch),
        "psi_threshold": psi_threshold,
        "max_drifted_share": max_drifted_share,
        "drifted_share": round(share, 6),
        "drift_detected": share > max_drifted_share,
        "features": features,
    }


def load_batch(path: Path) -> pd.DataFrame:
    """A CSV file of feature rows, or a directory of the API's prediction logs (live traffic)."""
    if not path.is_dir():
        return load_dataset(path, require_target=False)
    traffic = load_traffic(path)
    if traffic.empty:
        raise FileNotFoundError(f"no prediction logs under {path}")
    return validate(traffic, source=str(path), require_target=False)


def monitor(
    reference_path: Path, batch_path: Path, report_path: Path, params: dict[str, Any]
) -> dict[str, Any]:
    batch = load_batch(Path(batch_path))
    reference = json.loads(Path(reference_path).read_text())
    report = drift_report(reference, batch, params["psi_threshold"], params["max_drifted_share"])
    write_text_atomically(report_path, json.dumps(report, indent=2) + "\n")
    return report
