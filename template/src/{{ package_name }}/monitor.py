"""Drift monitoring: compare a new batch of data with the training reference.

Each feature's drift is its population stability index (PSI) over the reference's quintile
bins; the batch drifts when the share of drifting features passes params.yaml's limit.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .schema import FEATURES

_N_BINS = 5
_EPSILON = 1e-4  # keeps empty bins from dividing by zero


def write_reference(train: pd.DataFrame, path: Path) -> dict[str, Any]:
    """Store per-feature bin edges and proportions of the training data."""
    reference = {}
    for name in FEATURES:
        values = train[name].to_numpy(dtype=float)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, _N_BINS + 1)[1:-1]))
        reference[name] = {
            "edges": edges.round(9).tolist(),
            "proportions": _proportions(values, edges).round(9).tolist(),
            "mean": round(float(values.mean()), 9),
            "std": round(float(values.std()), 9),
        }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(reference, indent=2) + "\n")
    return reference


def _proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    expected = np.clip(expected, _EPSILON, None)
    actual = np.clip(actual, _EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_report(
    reference: dict[str, Any], batch: pd.DataFrame, psi_threshold: float, max_drifted_share: float
) -> dict[str, Any]:
    features = {}
    for name in FEATURES:
        ref = reference[name]
        values = batch[name].to_numpy(dtype=float)
        score = psi(np.asarray(ref["proportions"]), _proportions(values, np.asarray(ref["edges"])))
        features[name] = {
            "psi": round(score, 6),
            "drifted": score > psi_threshold,
            "reference_mean": ref["mean"],
            "batch_mean": round(float(values.mean()), 6),
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
    from .data import load_dataset
    from .schema import validate
    from .traffic import load_traffic

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
    report_path = Path(report_path)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    return report
