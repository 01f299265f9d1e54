"""Drift monitoring: compare a new batch of data with the training reference.

Each feature's drift is its population stability index (PSI) between the training data and the
batch, over the feature's buckets in the reference (reference.py): quintile bins for a number,
the allowed values for a category or boolean, and missing values in a bucket of their own; a
date's parts (its year, month...) each as a number.

A feature drifts when its PSI passes params.yaml's psi_threshold (the shift is large enough to
matter) and the shift is unlikely to be sampling noise for a batch of this size: a chi-square
test of homogeneity of the bucket counts, training rows against batch rows, gives a p-value,
corrected across the features with Benjamini-Hochberg (a wide table tests many features at
once), under monitor.significance. A small batch's PSI is noisy (about (1/training rows + 1/batch
rows) times a chi-square with buckets - 1 degrees of freedom): 50 held-out rows of a number pass
0.25 by chance about one time in sixteen, so a 50-column table would drift from noise alone. The
batch drifts when the share of drifting features passes monitor.max_drifted_share.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency, false_discovery_control

from ..data import load_dataset
from .atomic import write_text_atomically
from .reference import CATEGORIES, monitored, monitored_frame, shares
from .schema import DataValidationError, validate
from .traffic import load_traffic

_EPSILON = 1e-4  # keeps empty buckets from dividing by zero
MISSING = "missing"  # the last bucket: missing values (and, for a category, any other value)
SIGNIFICANCE = 0.05  # monitor.significance when params.yaml predates it


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.clip(expected, _EPSILON, None)
    actual = np.clip(actual, _EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def sampling_p_value(reference: np.ndarray, rows: int, batch: np.ndarray, batch_rows: int) -> float:
    """The chance that a batch of batch_rows drawn like the training rows' (rows of them) differs
    from them at least this much: the chi-square test of homogeneity of their bucket counts."""
    counts = np.rint(np.vstack([reference * rows, batch * batch_rows]))
    counts = counts[:, counts.sum(axis=0) > 0]  # a bucket neither has says nothing
    if counts.shape[1] < 2 or not counts[1].sum():
        return 1.0
    return float(chi2_contingency(counts, correction=False).pvalue)


def feature_drift(profile: dict[str, Any], values: pd.Series) -> dict:
    """One feature's test, score and p-value, with what moved: the share of each category (and
    of missing values), or the mean of a number and its share of missing values."""
    if "rows" not in profile:
        raise DataValidationError(
            "the drift reference has no training row count (an older release wrote it): "
            "`dvc repro` writes it anew"
        )
    reference, batch = np.asarray(profile["proportions"]), shares(profile, values)
    result = {
        "test": profile["test"],
        "score": round(psi(reference, batch), 6),
        "p_value": sampling_p_value(reference, profile["rows"], batch, len(values)),
    }
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
    reference: dict[str, Any],
    batch: pd.DataFrame,
    psi_threshold: float,
    max_drifted_share: float,
    significance: float = SIGNIFICANCE,
) -> dict[str, Any]:
    columns = monitored_frame(batch)
    features = {f.name: feature_drift(reference[f.name], columns[f.name]) for f in monitored()}
    corrected = false_discovery_control([f["p_value"] for f in features.values()], method="bh")
    for feature, p_value in zip(features.values(), corrected, strict=True):
        feature["p_value"] = float(f"{p_value:.6g}")  # corrected: what the verdict compares
        feature["drifted"] = bool(feature["score"] > psi_threshold and p_value < significance)
    share = sum(f["drifted"] for f in features.values()) / len(features)
    return {
        "rows": len(batch),
        "psi_threshold": psi_threshold,
        "significance": significance,
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


def drift_limits(params: dict[str, Any]) -> tuple[float, float, float]:
    """params.yaml's monitor section as drift_report takes it: psi_threshold, max_drifted_share
    and significance (SIGNIFICANCE in a params.yaml from before it, which updates never edit)."""
    return (
        params["psi_threshold"],
        params["max_drifted_share"],
        params.get("significance", SIGNIFICANCE),
    )


def monitor(
    reference_path: Path, batch_path: Path, report_path: Path, params: dict[str, Any]
) -> dict[str, Any]:
    batch = load_batch(Path(batch_path))
    reference = json.loads(Path(reference_path).read_text())
    report = drift_report(reference, batch, *drift_limits(params))
    write_text_atomically(report_path, json.dumps(report, indent=2) + "\n")
    return report
