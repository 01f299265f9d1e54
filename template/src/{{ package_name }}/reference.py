"""The training data's reference profile, which drift monitoring compares new data with.

`prepare` writes it next to the split: per feature, the reference's quintile bin edges and the
share of training rows in each bin.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .schema import FEATURES

_N_BINS = 5


def bin_proportions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of values in each bin between edges (below the first, ..., above the last)."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def write_reference(train: pd.DataFrame, path: Path) -> dict[str, Any]:
    """Store per-feature bin edges and proportions of the training data."""
    reference = {}
    for name in FEATURES:
        values = train[name].to_numpy(dtype=float)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, _N_BINS + 1)[1:-1]))
        reference[name] = {
            "edges": edges.round(9).tolist(),
            "proportions": bin_proportions(values, edges).round(9).tolist(),
            "mean": round(float(values.mean()), 9),
            "std": round(float(values.std()), 9),
        }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(reference, indent=2) + "\n")
    return reference
