"""Raw data, loading with validation, and the train/test split."""

import importlib.util
from pathlib import Path

import pandas as pd

from .mlops.api import (
    CONTRACT,
    FEATURES,
    TARGET,
    DataValidationError,
    labelled,
    validate,
    write_reference,
)

# scikit-learn's wine data (sklearn/datasets/data/wine_data.csv): its columns, as load_wine
# names them with "/" made "_", then the class.
WINE_COLUMNS = [
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols",
    "flavanoids", "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
    "od280_od315_of_diluted_wines", "proline", TARGET,
]  # fmt: skip


def make_sample(out: Path, n_rows: int | None = None, seed: int = 42) -> pd.DataFrame:
    """Write the bundled sample data set (scikit-learn's wine data, shipped inside the package).

    Deterministic and offline, so any machine, CI runners included, rebuilds the same bytes.
    The file is read as load_wine reads it (every feature a float), but without importing
    scikit-learn: writing the sample then takes half the time.
    """
    sklearn_dir = Path(importlib.util.find_spec("sklearn").submodule_search_locations[0])
    df = pd.read_csv(
        sklearn_dir / "datasets" / "data" / "wine_data.csv",
        skiprows=1,  # "178,13,class_0,class_1,class_2": rows, features, class names
        names=WINE_COLUMNS,
        dtype={name: "float64" for name in WINE_COLUMNS[:-1]} | {TARGET: "int64"},
    )
    df = df[[*FEATURES, TARGET]]
    if n_rows is not None:
        df = df.sample(n=n_rows, random_state=seed).sort_index().reset_index(drop=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)
    return df


def read_data(path: Path) -> pd.DataFrame:
    """Read a CSV file with pandas' defaults (the values schema.yaml names: "red", 3, True);
    DataValidationError names the file when it is empty or not CSV text."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path} failed validation:\n  - the file is empty") from None
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise DataValidationError(
            f"{path} failed validation:\n  - not a CSV text file (UTF-8): {reason}"
        ) from None


def load_dataset(
    path: Path,
    require_target: bool = True,
    refuse_duplicates: bool = False,
    min_rows_per_class: int = 1,
) -> pd.DataFrame:
    """Read a CSV file and validate it; raises DataValidationError naming columns and rows.
    With the target required, the rows without one (schema.yaml target.nullable) are left out:
    the rows a model learns from and is scored on."""
    df = validate(read_data(path), str(path), require_target, refuse_duplicates, min_rows_per_class)
    return labelled(df) if require_target else df


def split(df: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A random split, stratified by label for classification (every class on both sides)."""
    from sklearn.model_selection import train_test_split

    stratify = df[TARGET] if CONTRACT.classification else None
    train, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def prepare(raw: Path, out_dir: Path, reference: Path, test_size: float, seed: int) -> None:
    """Validate the raw data first, then write the split and the monitoring reference."""
    df = load_dataset(raw)
    train, test = split(df, test_size, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train.to_csv(out_dir / "train.csv", index=False)
    test.to_csv(out_dir / "test.csv", index=False)
    write_reference(train, reference)
