"""Feature engineering shared by training, evaluation and serving."""

from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import StandardScaler

from .schema import FEATURES


def build_preprocessor() -> ColumnTransformer:
    """Scale every numeric feature; add encoders here as your schema grows."""
    return ColumnTransformer([("numeric", StandardScaler(), FEATURES)], remainder="drop")
