"""Drift monitoring: compare a new batch of data with the training reference.

Each feature's drift is its population stability index (PSI) over the quintile bins of the
training reference (reference.py); the batch drifts when the share of drifting features passes
params.yaml's limit.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .data import load_dataset
from .reference import bin_proportions, write_reference  # noqa: F401 (re-exported, see below)
from .schema import FEATURES, validate
from .traffic import load_traffic

# write_reference stays importable from here: the team-owned data.py of repositories generated
# before reference.py existed imports it from this module.
_EPSILON = 1e-4  # keeps empty bins from dividing by zero


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
        proportions = bin_proportions(values, np.asarray(ref["edges"]))
        score = psi(np.asarray(ref["proportions"]), proportions)
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
