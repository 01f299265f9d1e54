"""Tabular data sets the template does not ship, as a team brings its own (issue 13).

Each is drawn from a seeded numpy RNG with a clear signal, so a random forest beats the
"always the most common answer" baseline comfortably, and written as a CSV file the way a team
exports one: missing values as empty fields, labels and categories as plain text or numbers.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Dataset:
    name: str
    columns: dict[str, list[Any]]  # column -> values in row order; None is a missing value
    target: str
    classification: bool
    # A categorical column: its shift must be reported as drift, and a value outside its
    # categories refused by the API.
    categorical: str
    # A numeric column: a string there must be refused by the API.
    numeric: str
    # Integer-coded categorical columns, adopted with `--category COLUMN`.
    category_flags: tuple[str, ...] = ()

    @property
    def features(self) -> list[str]:
        return [name for name in self.columns if name != self.target]

    @property
    def labels(self) -> list[Any]:
        """The target's distinct values, sorted (classification)."""
        return sorted(set(self.columns[self.target]))

    def rows(self, with_target: bool = True) -> list[dict[str, Any]]:
        names = list(self.columns) if with_target else self.features
        values = zip(*(self.columns[name] for name in names), strict=True)
        return [dict(zip(names, row, strict=True)) for row in values]

    def unknown_category(self) -> Any:
        """A value of the categorical column that the data never has, of the same type."""
        values = [v for v in self.columns[self.categorical] if v is not None]
        return max(values) + 10 if isinstance(values[0], int) else "not-a-category"

    def shifted(self) -> list[dict[str, Any]]:
        """The feature rows with the categorical column set to its rarest value throughout: a
        shift of that column alone."""
        values = [v for v in self.columns[self.categorical] if v is not None]
        rarest = min(sorted(set(values)), key=values.count)
        return [{**row, self.categorical: rarest} for row in self.rows(with_target=False)]

    def with_target(self, value: Any) -> Dataset:
        """The same features with every target value set to value (a broken export)."""
        return Dataset(
            self.name,
            {**self.columns, self.target: [value] * len(self.columns[self.target])},
            self.target,
            self.classification,
            self.categorical,
            self.numeric,
            self.category_flags,
        )


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """rows as a CSV file with a header; None as an empty field."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return path


def _with_missing(values: np.ndarray, rng: np.random.Generator, share: float) -> list[Any]:
    """Python values (int, float, str) with about `share` of them missing (None)."""
    missing = rng.random(len(values)) < share
    return [None if gone else value.item() for value, gone in zip(values, missing, strict=True)]


def churn(rows: int = 400, seed: int = 13) -> Dataset:
    """Binary classification, string labels ("yes"/"no"), a string categorical column and
    missing values in a numeric column (integers, so pandas reads floats) and in the
    categorical one."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "premium"], rows, p=[0.4, 0.35, 0.25])
    tenure = rng.integers(1, 72, rows)
    calls = rng.poisson(2.5, rows)
    spend = np.round(rng.normal(60, 20, rows).clip(5, None), 2)
    plan_effect = np.select([plan == "basic", plan == "premium"], [1.5, -1.5], 0.0)
    score = 0.9 * calls - tenure / 12 + plan_effect + 0.02 * (spend - 60)
    score += rng.normal(0, 0.5, rows)
    churned = np.where(score > np.median(score), "yes", "no")
    return Dataset(
        name="churn",
        columns={
            "tenure_months": _with_missing(tenure, rng, 0.06),
            "plan": _with_missing(plan, rng, 0.06),
            "monthly_spend": spend.tolist(),
            "support_calls": calls.tolist(),
            "churned": churned.tolist(),
        },
        target="churned",
        classification=True,
        categorical="plan",
        numeric="monthly_spend",
    )


def grades(rows: int = 450, seed: int = 17) -> Dataset:
    """Multi-class classification, integer labels 1 to 4 (not the sample's 0 to 2), and an
    integer-coded categorical column (region 1 to 4) adopted with `--category region`."""
    rng = np.random.default_rng(seed)
    region = rng.integers(1, 5, rows)
    sensor_a = np.round(rng.normal(0, 1, rows), 3)
    sensor_b = np.round(rng.normal(0, 1, rows), 3)
    visits = rng.integers(0, 30, rows)
    score = 1.5 * sensor_a + 0.8 * sensor_b + (region - 2.5) + 0.02 * visits
    score += rng.normal(0, 0.3, rows)
    grade = 1 + np.searchsorted(np.quantile(score, [0.25, 0.5, 0.75]), score)
    return Dataset(
        name="grades",
        columns={
            "region": region.tolist(),
            "sensor_a": sensor_a.tolist(),
            "sensor_b": sensor_b.tolist(),
            "visits": visits.tolist(),
            "grade": grade.tolist(),
        },
        target="grade",
        classification=True,
        categorical="region",
        numeric="sensor_a",
        category_flags=("region",),
    )


def prices(rows: int = 400, seed: int = 19) -> Dataset:
    """Regression: a float target (a price) from numeric and categorical features."""
    rng = np.random.default_rng(seed)
    district = rng.choice(["north", "south", "east", "west"], rows)
    area = np.round(rng.uniform(30, 200, rows), 1)
    rooms = rng.integers(1, 7, rows)
    age = np.round(rng.uniform(0, 80, rows), 1)
    district_effect = np.select(
        [district == "north", district == "south", district == "west"], [60e3, 20e3, -20e3], 0.0
    )
    price = 2500 * area + 8000 * rooms - 800 * age + district_effect
    price = np.round(price + rng.normal(0, 15e3, rows), 2)
    return Dataset(
        name="prices",
        columns={
            "district": district.tolist(),
            "area_m2": area.tolist(),
            "rooms": rooms.tolist(),
            "age_years": age.tolist(),
            "price": price.tolist(),
        },
        target="price",
        classification=False,
        categorical="district",
        numeric="area_m2",
    )
