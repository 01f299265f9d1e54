"""Feature engineering shared by training, evaluation and serving, built from the data contract.

Numbers: a missing value takes the training median, then scaling. Categories and booleans: a
missing value takes the most frequent one, then one-hot encoding over the values schema.yaml
lists; a value it does not list encodes as all zeros instead of failing. Dates: the numeric parts
schema.yaml lists (year, month, ...), then as numbers. Every feature keeps its columns even when
training saw none of its values, so the model's inputs follow the contract.
"""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from .mlops.api import CONTRACT, Contract, date_parts


def as_numbers(X: pd.DataFrame) -> pd.DataFrame:
    """Floats, with None (a null in an API request) as NaN for the imputer."""
    return pd.DataFrame(X).astype(float)


def as_values(X: pd.DataFrame) -> pd.DataFrame:
    """Python objects, with None as NaN: one dtype whatever pandas read (bool, int, str), so
    values compare as schema.yaml lists them (3 == 3.0, True)."""
    frame = pd.DataFrame(X).astype(object)
    return frame.where(frame.notna(), np.nan)


def as_date_parts(X: pd.DataFrame, parts: dict[str, tuple[str, ...]]) -> pd.DataFrame:
    """Each date column as the numbers of its parts (NaN where the date is missing)."""
    frame = pd.DataFrame(X)
    columns = [date_parts(frame[name], parts[name]) for name in frame.columns]
    return pd.concat(columns, axis=1) if columns else pd.DataFrame(index=frame.index)


def _date_part_names(transformer: FunctionTransformer, names: list[str]) -> list[str]:
    return list(as_date_parts(pd.DataFrame(columns=names), **transformer.kw_args))


def build_preprocessor(contract: Contract = CONTRACT) -> ColumnTransformer:
    numeric = Pipeline(
        [
            ("as_numbers", FunctionTransformer(as_numbers, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )
    parts = {f.name: f.parts for f in contract.features if f.type == "date"}
    dates = Pipeline(
        [
            (
                "parts",
                FunctionTransformer(
                    as_date_parts, feature_names_out=_date_part_names, kw_args={"parts": parts}
                ),
            ),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )
    values = [
        list(f.categories) if f.type == "category" else [False, True]
        for f in contract.features
        if f.name in contract.categorical
    ]
    categorical = Pipeline(
        [
            ("as_values", FunctionTransformer(as_values, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="most_frequent", keep_empty_features=True)),
            ("one_hot", OneHotEncoder(categories=values, handle_unknown="ignore")),
        ]
    )
    return ColumnTransformer(
        [
            ("numeric", numeric, contract.numeric),
            ("categorical", categorical, contract.categorical),
            ("dates", dates, contract.dates),
        ],
        remainder="drop",
        sparse_threshold=0,  # a dense array, as the models take it
    )
