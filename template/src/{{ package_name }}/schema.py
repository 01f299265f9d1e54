"""The data contract: which columns, types and labels the pipeline accepts.

Replace FEATURES, TARGET and LABELS when you bring your own data; everything else (validation,
the API's request schema, drift monitoring) follows from them.
"""

from collections.abc import Iterable

import pandas as pd
import pandera.pandas as pa

FEATURES = [
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280_od315_of_diluted_wines",
    "proline",
]
TARGET = "label"
LABELS = [0, 1, 2]
# The values a feature may take, inclusive: data outside them stops in `validate` and the API
# answers 422. The default refuses inf and values so large that scaling them overflows the
# float32 the models compute in (3.4e38); narrow a feature's range to refuse implausible ones.
FEATURE_LIMIT = 1e12
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    name: (-FEATURE_LIMIT, FEATURE_LIMIT) for name in FEATURES
}

_MAX_ROWS_SHOWN = 10


class DataValidationError(ValueError):
    """Raised when data breaks the contract; the message names every column and row at fault."""


def build_schema(require_target: bool = True) -> pa.DataFrameSchema:
    columns = {
        name: pa.Column(float, pa.Check.in_range(low, high), nullable=False)
        for name, (low, high) in FEATURE_RANGES.items()
    }
    if require_target:
        columns[TARGET] = pa.Column(int, pa.Check.isin(LABELS), nullable=False)
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


def validate(
    df: pd.DataFrame,
    source: str = "data",
    require_target: bool = True,
    refuse_duplicates: bool = False,
) -> pd.DataFrame:
    """Return df unchanged when it meets the contract, else raise DataValidationError.

    With a target, every label of LABELS needs examples: a model that never saw a class cannot
    predict it, and a single-class data set would pass the quality gate predicting one answer.
    """
    if df.empty:
        raise DataValidationError(f"{source} failed validation:\n  - the data has no rows")
    try:
        build_schema(require_target).validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise DataValidationError(_describe(exc.failure_cases, source)) from None
    problems = []
    present = set(df[TARGET]) if require_target else set(LABELS)
    if absent := [label for label in LABELS if label not in present]:
        problems.append(
            f"column '{TARGET}': no rows of labels {', '.join(map(str, absent))}; "
            f"every label of {LABELS} needs examples"
        )
    if refuse_duplicates and (repeated := df.index[df.duplicated()]).size:
        problems.append(
            f"all columns: rows {_rows(repeated)} repeat an earlier row "
            "(params.yaml validate.duplicates: refuse; set keep to allow them)"
        )
    if problems:
        raise DataValidationError(_listing(problems, source))
    return df


def _rows(index: Iterable) -> str:
    rows = sorted({int(i) for i in index if pd.notna(i)})
    shown = ", ".join(str(r) for r in rows[:_MAX_ROWS_SHOWN])
    more = f" and {len(rows) - _MAX_ROWS_SHOWN} more" if len(rows) > _MAX_ROWS_SHOWN else ""
    return f"{shown}{more}" if rows else ""


def _describe(failures: pd.DataFrame, source: str) -> str:
    problems = []
    for (column, check), group in failures.groupby(["column", "check"], dropna=False, sort=False):
        check = str(check)
        if check == "column_in_dataframe":
            for missing in group["failure_case"]:
                problems.append(f"column '{missing}': missing")
            continue
        rows = _rows(group["index"])
        where = f" in rows {rows}" if rows else ""
        if check == "not_nullable":
            problems.append(f"column '{column}': missing values (NaN){where}")
        elif check.startswith("isin"):
            values = sorted({str(v) for v in group["failure_case"]})
            problems.append(
                f"column '{column}': unknown labels {', '.join(values)}{where}; "
                f"expected one of {LABELS}"
            )
        elif check.startswith("in_range"):
            low, high = FEATURE_RANGES[column]
            problems.append(
                f"column '{column}': values outside [{low:g}, {high:g}] (inf or out of range)"
                f"{where}"
            )
        elif check.startswith("dtype"):
            found = ", ".join(sorted({str(v) for v in group["failure_case"]})[:3])
            problems.append(f"column '{column}': expected {check}, found {found}{where}")
        else:
            problems.append(f"column '{column}': failed {check}{where}")
    return _listing(problems, source)


def _listing(problems: list[str], source: str) -> str:
    listing = "\n".join(f"  - {p}" for p in problems)
    return f"{source} failed validation (rows are 0-based data rows):\n{listing}"
