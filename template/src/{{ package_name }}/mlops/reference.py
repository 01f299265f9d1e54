"""The training data's reference profile, which drift monitoring compares new data with.

`prepare` writes it next to the split: per feature, the buckets its values fall into and the
share of training rows in each. A number's buckets are the training data's quintile bins, or,
for a number with few distinct values (a 0/1 indicator, a count of children), one bucket per
value, where quantiles would fall together and hide a shift. A category's (or a boolean's)
buckets are its allowed values. Missing values have a bucket of their own, shared with any
value a category does not list, so a change in either shows as drift too. A date is monitored
as its parts (its year, its month...: dates.py), each a number of its own.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .atomic import write_text_atomically
from .dates import date_parts, part_name
from .schema import CONTRACT, Contract, Feature

QUANTILE_BINS = "psi_quantile_bins"  # the test each kind of feature gets (monitor.py)
CATEGORIES = "psi_categories"
_N_BINS = 5
# A number with at most this many distinct training values gets a bucket for each of them.
_FEW_VALUES = 2 * _N_BINS


def monitored(contract: Contract = CONTRACT) -> list[Feature]:
    """The columns drift monitoring compares: the features, each date as its parts."""
    columns = []
    for feature in contract.features:
        if feature.type == "date":
            parts = [part_name(feature.name, part) for part in feature.parts]
            columns += [Feature(name, "integer", feature.nullable) for name in parts]
        else:
            columns.append(feature)
    return columns


def monitored_frame(frame: pd.DataFrame, contract: Contract = CONTRACT) -> pd.DataFrame:
    """frame's features as monitored: each date column replaced by its parts."""
    columns = [
        date_parts(frame[f.name], f.parts) if f.type == "date" else frame[[f.name]]
        for f in contract.features
    ]
    return pd.concat(columns, axis=1)


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
    entry["rows"] = len(values)  # for the size of the sampling noise in the shares (monitor.py)
    return entry


def write_reference(
    train: pd.DataFrame, path: Path, contract: Contract = CONTRACT
) -> dict[str, Any]:
    """Store each monitored column's profile of the training data."""
    frame = monitored_frame(train, contract)
    reference = {f.name: profile(f, frame[f.name]) for f in monitored(contract)}
    write_text_atomically(path, json.dumps(reference, indent=2) + "\n")
    return reference
