"""The training data's reference profile, which drift monitoring compares new data with.

`prepare` writes it next to the split: per feature, the buckets its values fall into and the
share of training rows in each. A number's buckets are the training data's quintile bins, or,
for a number with few distinct values (a 0/1 indicator, a count of children), one bucket per
value, where quantiles would fall together and hide a shift. A category's (or a boolean's)
buckets are its allowed values. Missing values have a bucket of their own, shared with any
value a category does not list, so a change in either shows as drift too.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .atomic import write_text_atomically
from .schema import CONTRACT, Contract, Feature

QUANTILE_BINS = "psi_quantile_bins"  # the test each kind of feature gets (monitor.py)
CATEGORIES = "psi_categories"
_N_BINS = 5
# A number with at most this many distinct training values gets a bucket for each of them.
_FEW_VALUES = 2 * _N_BINS


def shares(profile: dict[str, Any], values: pd.Series) -> np.ndarray:
    """The share of values in each bucket of a feature's profile, the missing bucket last."""
    if profile["test"] == QUANTILE_BINS:
        numbers = values.to_numpy(dtype=float)
        present = numbers[~np.isnan(numbers)]
        edges = np.asarray(profile["edges"])
        counts = np.bincount(
            np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1
        )
    else:
        counts = np.array([values.isin([category]).sum() for category in profile["categories"]])
    counts = np.append(counts, len(values) - counts.sum())
    return counts / max(len(values), 1)


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 9)


def profile(feature: Feature, values: pd.Series) -> dict[str, Any]:
    """A feature's buckets in the training data: its test, the bucket bounds and shares."""
    if feature.numeric:
        numbers = values.to_numpy(dtype=float)
        present = numbers[~np.isnan(numbers)]
        distinct = np.unique(present)
        if distinct.size <= _FEW_VALUES:  # value v falls in [v, next value): its own bucket
            edges = distinct
        else:
            edges = np.unique(np.quantile(present, np.linspace(0, 1, _N_BINS + 1)[1:-1]))
        entry = {
            "test": QUANTILE_BINS,
            "edges": edges.round(9).tolist(),
            "mean": _rounded(values.mean()),
            "std": _rounded(values.std(ddof=0)),
        }
    else:
        allowed = [False, True] if feature.type == "boolean" else list(feature.categories)
        entry = {"test": CATEGORIES, "categories": allowed}
    entry["proportions"] = shares(entry, values).round(9).tolist()
    return entry


def write_reference(
    train: pd.DataFrame, path: Path, contract: Contract = CONTRACT
) -> dict[str, Any]:
    """Store each feature's profile of the training data."""
    reference = {f.name: profile(f, train[f.name]) for f in contract.features}
    write_text_atomically(path, json.dumps(reference, indent=2) + "\n")
    return reference
