"""Feature engineering shared by training, evaluation and serving, built from the data contract.

Numbers: a missing value takes the training median, then scaling. Categories and booleans: a
missing value takes the most frequent one, then one-hot encoding over the values schema.yaml
lists; a value it does not list encodes as all zeros instead of failing. Every feature keeps its
columns even when training saw none of its values, so the model's inputs follow the contract.
"""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from .mlops.api import CONTRACT, Contract


def as_numbers(X: pd.DataFrame) -> pd.DataFrame:
    """Floats, with None (a null in an API request) as NaN for the imputer."""
    return pd.DataFrame(X).astype(float)


def as_values(X: pd.DataFrame) -> pd.DataFrame:
    """Python objects, with None as NaN: one dtype whatever pandas read (bool, int, str), so
    values compare as schema.yaml lists them (3 == 3.0, True)."""
    frame = pd.DataFrame(X).astype(object)
    return frame.where(frame.notna(), np.nan)


def build_preprocessor(contract: Contract = CONTRACT) -> ColumnTransformer:
    numeric = Pipeline(
        [
            ("as_numbers", FunctionTransformer(as_numbers, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )
    values = [
        list(f.categories) if f.type == "category" else [False, True]
        for f in contract.features
        if not f.numeric
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
        ],
        remainder="drop",
        sparse_threshold=0,  # a dense array, as the models take it
    )
