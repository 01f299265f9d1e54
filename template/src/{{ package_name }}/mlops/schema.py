"""The data contract, read from schema.yaml next to this file: columns, types, allowed values.

schema.yaml is the team's file (`adopt-data` writes it from a data set; docs/how-to.md has its
format). This module turns it into the checks every stage shares: validation here, and the
features, the model, the API's request schema and drift monitoring through CONTRACT.
"""

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa
import yaml

from .dates import DATE_PARTS, parse_dates, varying_parts

# schema.yaml is the team's, one level up, beside their model code.
SCHEMA_FILE = Path(__file__).parents[1] / "schema.yaml"
FEATURE_TYPES = ("float", "integer", "boolean", "category", "date")
PROBLEM_KINDS = ("classification", "regression")
# Numbers beyond this are refused unless a feature sets its own range: inf never passes, and
# values this large would overflow the float32 the models compute in (3.4e38) once scaled.
FEATURE_LIMIT = 1e12

_MAX_ROWS_SHOWN = 10


class DataValidationError(ValueError):
    """Raised when data breaks the contract; the message names every column and row at fault."""


class ContractError(ValueError):
    """Raised when schema.yaml itself is malformed; the message names the entry at fault."""


@dataclass(frozen=True)
class Feature:
    name: str
    type: str  # one of FEATURE_TYPES
    nullable: bool = False
    min: float = -FEATURE_LIMIT  # numbers only
    max: float = FEATURE_LIMIT
    categories: tuple[Any, ...] = ()  # category only
    parts: tuple[str, ...] = ()  # date only: the numeric parts the model reads (dates.py)

    @property
    def numeric(self) -> bool:
        return self.type in ("float", "integer")


@dataclass(frozen=True)
class Contract:
    features: tuple[Feature, ...]
    target: str
    kind: str  # one of PROBLEM_KINDS
    labels: tuple[Any, ...] = ()  # classification only, in the order of the model's classes
    # Rows without a target value: left out of training (True) or refused (False).
    target_nullable: bool = False
    # Columns of the data the model does not read, each with the reason: (name, reason).
    # Validation ignores them and the API accepts and drops them.
    left_out: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if f.numeric]

    @property
    def categorical(self) -> list[str]:
        """Category and boolean features: both are encoded as categories."""
        return [f.name for f in self.features if f.type in ("category", "boolean")]

    @property
    def dates(self) -> list[str]:
        return [f.name for f in self.features if f.type == "date"]

    @property
    def classification(self) -> bool:
        return self.kind == "classification"

    def feature(self, name: str) -> Feature:
        return next(f for f in self.features if f.name == name)


def _feature(name: str, entry: Any) -> Feature:
    where = f"schema.yaml features.{name}"
    if not isinstance(entry, dict) or entry.get("type") not in FEATURE_TYPES:
        raise ContractError(f"{where}: needs a type, one of {', '.join(FEATURE_TYPES)}")
    if unknown := set(entry) - {"type", "nullable", "min", "max", "categories", "parts"}:
        raise ContractError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    kind = entry["type"]
    categories = tuple(entry.get("categories") or ())
    if kind == "category" and not categories:
        raise ContractError(f"{where}: a category feature needs its list of categories")
    parts = tuple(entry.get("parts") or ())
    if kind == "date" and (not parts or not set(parts) <= set(DATE_PARTS)):
        raise ContractError(f"{where}: a date feature needs parts, some of {', '.join(DATE_PARTS)}")
    low = float(entry.get("min", -FEATURE_LIMIT))
    high = float(entry.get("max", FEATURE_LIMIT))
    if not low <= high:
        raise ContractError(f"{where}: min {low:g} is above max {high:g}")
    return Feature(name, kind, bool(entry.get("nullable", False)), low, high, categories, parts)


def parse_contract(data: Any) -> Contract:
    """The Contract a schema.yaml document describes; ContractError names what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        raise ContractError("schema.yaml: needs a 'features' mapping and a 'target'")
    target = data.get("target")
    if not isinstance(target, dict) or not target.get("name"):
        raise ContractError("schema.yaml target: needs a name")
    kind = target.get("kind")
    if kind not in PROBLEM_KINDS:
        raise ContractError(f"schema.yaml target.kind: {kind!r}, not one of {PROBLEM_KINDS}")
    labels = tuple(target.get("labels") or ())
    if kind == "classification" and len(labels) < 2:
        raise ContractError("schema.yaml target.labels: classification needs two labels or more")
    features = tuple(_feature(str(n), e) for n, e in data["features"].items())
    if not features:
        raise ContractError("schema.yaml features: no features")
    if target["name"] in data["features"]:
        raise ContractError(f"schema.yaml: the target '{target['name']}' is also a feature")
    left_out = data.get("left_out") or {}
    if not isinstance(left_out, dict):
        raise ContractError("schema.yaml left_out: needs a mapping of column: reason")
    if both := [str(name) for name in left_out if name in data["features"]]:
        raise ContractError(f"schema.yaml left_out: {', '.join(both)} also under features")
    return Contract(
        features,
        str(target["name"]),
        kind,
        labels,
        target_nullable=bool(target.get("nullable", False)),
        left_out=tuple((str(name), str(reason or "")) for name, reason in left_out.items()),
    )


def load_contract(path: Path = SCHEMA_FILE) -> Contract:
    return parse_contract(yaml.safe_load(Path(path).read_text()))


CONTRACT = load_contract()
# The names the rest of the package (and team code written against earlier releases) import.
FEATURES = CONTRACT.names
TARGET = CONTRACT.target
LABELS = list(CONTRACT.labels)
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    f.name: (f.min, f.max) for f in CONTRACT.features if f.numeric
}


def _numbers(series: pd.Series) -> pd.Series:
    """The series as numbers (NaN where a value is not one); booleans are not numbers."""
    if pd.api.types.is_bool_dtype(series):
        return pd.Series(float("nan"), index=series.index)
    return pd.to_numeric(series, errors="coerce")


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def _column_checks(feature: Feature) -> list[pa.Check]:
    if feature.numeric:
        checks = [
            pa.Check(lambda s: s.isna() | _numbers(s).notna(), name="numeric"),
            pa.Check(
                lambda s, lo=feature.min, hi=feature.max: (
                    _numbers(s).isna() | _numbers(s).between(lo, hi)
                ),
                name="in_range",
            ),
        ]
        if feature.type == "integer":
            checks.append(
                pa.Check(lambda s: _numbers(s).isna() | (_numbers(s) % 1 == 0), name="integer")
            )
        return checks
    if feature.type == "boolean":
        return [pa.Check(lambda s: s.isna() | s.map(_is_bool), name="boolean")]
    if feature.type == "date":
        return [pa.Check(lambda s: s.isna() | parse_dates(s).notna(), name="date")]
    kinds = category_kinds(feature)
    return [pa.Check(lambda s: s.isna() | s.map(lambda v: _kind(v) in kinds), name="category")]


def _kind(value: Any) -> str:
    """text, integer or other: the sorts of value a category can take."""
    if isinstance(value, str):
        return "text"
    if not _is_bool(value) and isinstance(value, numbers.Real) and float(value).is_integer():
        return "integer"
    return "other"


def category_kinds(feature: Feature) -> set[str]:
    """The sorts of value a category feature accepts, those of the values schema.yaml lists:
    text, integer codes, or both. Any value of these sorts passes, listed or not: a value the
    model never saw goes to its unknown bucket (features.py) and drift monitoring counts it, so
    tomorrow's new name or code is scored, not refused."""
    return {_kind(value) for value in feature.categories}


def build_schema(require_target: bool = True, contract: Contract = CONTRACT) -> pa.DataFrameSchema:
    columns = {
        f.name: pa.Column(checks=_column_checks(f), nullable=f.nullable) for f in contract.features
    }
    if require_target:
        if contract.classification:
            checks = [pa.Check(lambda s: s.isin(contract.labels), name="label")]
        else:
            checks = _column_checks(Feature(contract.target, "float"))
        columns[contract.target] = pa.Column(checks=checks, nullable=contract.target_nullable)
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


def validate(
    df: pd.DataFrame,
    source: str = "data",
    require_target: bool = True,
    refuse_duplicates: bool = False,
    min_rows_per_class: int = 1,
    contract: Contract = CONTRACT,
) -> pd.DataFrame:
    """Return df unchanged when it meets the contract, else raise DataValidationError.

    With a classification target, every label needs min_rows_per_class examples: a model that
    never saw a class cannot predict it, and a single-class data set would pass the quality
    gate predicting one answer.
    """
    if df.empty:
        raise DataValidationError(f"{source} failed validation:\n  - the data has no rows")
    try:
        build_schema(require_target, contract).validate(df, lazy=True)
    except pa.errors.SchemaErrors as exc:
        raise DataValidationError(_describe(exc.failure_cases, source, contract)) from None
    problems = []
    if require_target and contract.classification:
        counts = df[contract.target].value_counts()
        absent = [label for label in contract.labels if counts.get(label, 0) == 0]
        few = [lab for lab in contract.labels if 0 < counts.get(lab, 0) < min_rows_per_class]
        if absent:
            problems.append(
                f"column '{contract.target}': no rows of labels {', '.join(map(str, absent))}; "
                f"every label of {list(contract.labels)} needs examples"
            )
        if few:
            problems.append(
                f"column '{contract.target}': labels {', '.join(map(str, few))} have fewer than "
                f"{min_rows_per_class} rows (params.yaml validate.min_rows_per_class); add rows "
                "of them, or leave their rows out of the data"
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


def _values(group: pd.DataFrame) -> str:
    return ", ".join(sorted({str(v) for v in group["failure_case"]})[:3])


def _describe(failures: pd.DataFrame, source: str, contract: Contract) -> str:
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
            fix = (
                " (schema.yaml target.nullable: true leaves such rows out of training)"
                if column == contract.target
                else ""
            )
            problems.append(f"column '{column}': missing values (NaN){where}{fix}")
        elif check == "label":
            problems.append(
                f"column '{column}': unknown labels {_values(group)}{where}; "
                f"expected one of {list(contract.labels)}"
            )
        elif check == "category":
            kinds = " or ".join(sorted(category_kinds(contract.feature(column))))
            problems.append(
                f"column '{column}': expected category values ({kinds}), found "
                f"{_values(group)}{where}"
            )
        elif check == "in_range":
            low, high = (
                (contract.feature(column).min, contract.feature(column).max)
                if column != contract.target
                else (-FEATURE_LIMIT, FEATURE_LIMIT)
            )
            problems.append(
                f"column '{column}': values outside [{low:g}, {high:g}] (inf or out of range)"
                f"{where}"
            )
        elif check in ("numeric", "integer", "boolean", "date"):
            expected = {
                "numeric": "numbers",
                "integer": "integers",
                "boolean": "true/false",
                "date": "dates (text such as 2024-01-31 or 2024-01-31 08:00)",
            }
            problems.append(
                f"column '{column}': expected {expected[check]}, found {_values(group)}{where}"
            )
        else:
            problems.append(f"column '{column}': failed {check}{where}")
    return _listing(problems, source)


def labelled(df: pd.DataFrame, contract: Contract = CONTRACT) -> pd.DataFrame:
    """The rows with a target value: those a model learns from and is scored on (schema.yaml
    target.nullable lets the others through validation, to be left out here)."""
    if not contract.target_nullable:
        return df
    return df[df[contract.target].notna()].reset_index(drop=True)


def _listing(problems: list[str], source: str) -> str:
    listing = "\n".join(f"  - {p}" for p in problems)
    return f"{source} failed validation (rows are 0-based data rows):\n{listing}"


# --- Inferring a contract from data, and writing it (adopt-data) ---------------------------

# An integer target with at most this many distinct values is a set of classes, not a quantity.
MAX_INTEGER_CLASSES = 20


def _python(value: Any) -> Any:
    """A plain Python value (numpy scalars become int, float or bool), as YAML writes them."""
    return value.item() if hasattr(value, "item") else value


def _is_integral(values: pd.Series) -> bool:
    numbers = _numbers(values)
    return pd.api.types.is_numeric_dtype(values) and bool((numbers % 1 == 0).all())


def _inferred_type(values: pd.Series) -> str:
    """The feature type of a column's non-null values, as pd.read_csv read them."""
    if values.map(_is_bool).all() and len(values):
        return "boolean"
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "category"
    return "integer" if _is_integral(values) else "float"


def _widened(values: pd.Series, integer: bool) -> tuple[float, float]:
    """The observed range widened by its width on each side (by the value itself when the
    column is constant), not below 0 when no value is: room for new data without accepting
    anything at all."""
    low, high = float(values.min()), float(values.max())
    width = (high - low) or max(abs(low), 1.0)
    # Rounded outwards to a hundredth of the width: 7.22, not 7.229999999999999.
    decimals = 0 if integer else max(0, math.ceil(-math.log10(width / 100)))
    scale = 10**decimals
    low = math.floor((low - width) * scale) / scale
    high = math.ceil((high + width) * scale) / scale
    if values.min() >= 0:
        low = max(low, 0)
    return (int(low), int(high)) if integer else (round(low, decimals), round(high, decimals))


def _sorted(values: pd.Series) -> tuple[Any, ...]:
    return tuple(sorted((_python(v) for v in values.unique()), key=lambda v: (str(type(v)), v)))


def _infer_feature(name: str, column: pd.Series, as_category: bool) -> Feature:
    values = column.dropna()
    nullable = bool(column.isna().any())
    kind = "category" if as_category else _inferred_type(values)
    if not len(values):  # no value seen: a number of any size, the team narrows it
        return Feature(name, "float", nullable=True)
    if kind == "category" and not as_category and _is_dates(values):
        return Feature(name, "date", nullable, parts=varying_parts(values))
    if kind == "category":
        if _is_integral(values):  # codes read as floats next to missing values: 1.0 -> 1
            values = values.astype("int64")
        return Feature(name, kind, nullable, categories=_sorted(values))
    if kind == "boolean":
        return Feature(name, kind, nullable)
    low, high = _widened(values, integer=kind == "integer")
    return Feature(name, kind, nullable, low, high)


# A text column with at least this share of distinct values (of its rows with a value), and more
# than MAX_INTEGER_CLASSES of them, names rows rather than describing them: an identifier.
IDENTIFIER_SHARE = 0.5


def _is_dates(values: pd.Series) -> bool:
    """Text that pandas reads as dates or times, every value of it ("2012-01-31", "1970-01-01
    00:00", "31/01/2012"): not a category, but a date feature read as its parts (dates.py)."""
    if pd.api.types.is_numeric_dtype(values) or values.map(_is_bool).any():
        return False
    if not values.astype(str).str.contains(r"\d").all():
        return False
    return bool(parse_dates(values).notna().all())


def left_out_reason(column: pd.Series, rows: int) -> str | None:
    """Why a column cannot be a feature the model learns from, or None when it can be one:
    no value, one value, dates whose parts never vary, or an identifier (a different whole
    number in every row, or text nearly one value a row) that a served model would meet only
    new values of."""
    values = column.dropna()
    distinct = values.nunique()
    if not len(values):
        return "no values (every row is missing)"
    if distinct == 1:
        return f"one value in every row ({_python(values.iloc[0])!r}): nothing to learn from"
    if _is_dates(values):
        if varying_parts(values):
            return None
        return f"dates whose parts ({', '.join(DATE_PARTS)}) are the same in every row"
    if _inferred_type(values) == "integer" and distinct == len(values) == rows > 2:
        return f"identifier-like (a different whole number in each of the {rows} rows)"
    text = not pd.api.types.is_numeric_dtype(values)
    if text and distinct > MAX_INTEGER_CLASSES and distinct >= IDENTIFIER_SHARE * len(values):
        return f"identifier-like ({distinct} distinct values in {len(values)} rows)"
    return None


def infer_contract(df: pd.DataFrame, target: str, categories: Iterable[str] = ()) -> Contract:
    """The contract a data set suggests (the rules: docs/how-to.md, "Your own data");
    DataValidationError names the column when the data cannot make one (no such target, a
    constant or empty one).

    Columns a model cannot learn from (left_out_reason) are left out of the features, with the
    reason, unless named with --category; rows without a target are allowed, to be left out of
    training (target.nullable)."""
    categories = list(categories)
    if unknown := [c for c in [target, *categories] if c not in df.columns]:
        raise DataValidationError(
            f"column '{unknown[0]}': not in the data (its columns: {', '.join(df.columns)})"
        )
    if target in categories:
        raise DataValidationError(f"column '{target}': the target cannot also be a --category")
    labels = df[target].dropna()
    if labels.empty:
        raise DataValidationError(
            f"column '{target}': the target has no values (all missing); name a column with "
            "values as --target"
        )
    if labels.nunique() < 2:
        raise DataValidationError(
            f"column '{target}': the target is constant ({_python(labels.iloc[0])!r} in every "
            "row); there is nothing to learn: name another column as --target"
        )
    features, left_out = [], []
    for name in df.columns:
        if name == target:
            continue
        reason = None if name in categories else left_out_reason(df[name], len(df))
        if reason:
            left_out.append((str(name), reason))
        else:
            features.append(_infer_feature(str(name), df[name], name in categories))
    if not features:
        raise DataValidationError(
            f"the data has no feature columns besides '{target}' that a model can learn from "
            f"(left out: {'; '.join(f'{n}: {r}' for n, r in left_out) or 'none'})"
        )
    optional = {"target_nullable": bool(df[target].isna().any()), "left_out": tuple(left_out)}
    kind = _inferred_type(labels)
    few_values = labels.nunique() <= MAX_INTEGER_CLASSES
    if kind in ("category", "boolean") or (kind == "integer" and few_values):
        labels = tuple(int(v) if kind == "integer" else v for v in _sorted(labels))
        return Contract(tuple(features), target, "classification", labels, **optional)
    return Contract(tuple(features), target, "regression", **optional)


HEADER = """\
# The data contract: the columns the pipeline reads, their types and the values they may take.
# Validation, features, the model, the API, drift monitoring and the tests all follow this file.
# `python -m <package> adopt-data PATH --target COLUMN` writes it from your data; it is yours to
# edit afterwards (narrow a range, add a category, allow missing values). Format: docs/how-to.md,
# "Your own data".
"""


def _flow(value: Any) -> str:
    """value as one line of YAML, quoted where YAML would read it as something else."""
    wrapped = value if isinstance(value, list) else [value]
    line = yaml.safe_dump(wrapped, default_flow_style=True, width=1_000_000).strip()
    return line if isinstance(value, list) else line[1:-1]


def render_contract(contract: Contract, note: str = "") -> str:
    """schema.yaml's text for contract: HEADER, note (comment lines), then the entries."""
    lines = [HEADER.rstrip("\n")]
    if note:
        lines += ["#", *(f"# {line}".rstrip() for line in note.splitlines())]
    lines += [
        "target:",
        f"  name: {_flow(contract.target)}",
        "  # classification (the labels below; strings, integers or booleans) or regression "
        "(a number)",
        f"  kind: {contract.kind}",
    ]
    if contract.classification:
        lines.append(f"  labels: {_flow(list(contract.labels))}")
    lines += [
        "  # rows without a target value: left out of training (true) or refused (false)",
        f"  nullable: {_flow(contract.target_nullable)}",
        "features:",
        "  # type: float | integer | boolean | category | date. Numbers: min/max (inclusive;",
        "  # inf and NaN never pass). category: the allowed values under categories. date: text",
        "  # such as 2024-01-31, read as the numbers under parts (year, month, day, day_of_week,",
        "  # hour). nullable: missing values allowed.",
    ]
    for feature in contract.features:
        lines += [f"  {_flow(feature.name)}:", f"    type: {feature.type}"]
        if feature.numeric:
            bound = int if feature.type == "integer" else float
            lines += [
                f"    min: {_flow(bound(feature.min))}",
                f"    max: {_flow(bound(feature.max))}",
            ]
        if feature.type == "category":
            lines.append(f"    categories: {_flow(list(feature.categories))}")
        if feature.type == "date":
            lines.append(f"    parts: {_flow(list(feature.parts))}")
        lines.append(f"    nullable: {_flow(feature.nullable)}")
    if contract.left_out:
        lines += [
            "left_out:",
            "  # Columns of the data the model does not read (column: why). Validation ignores "
            "them,",
            "  # the API accepts and drops them. Move one under features to use it.",
            *(f"  {_flow(name)}: {_flow(reason)}" for name, reason in contract.left_out),
        ]
    return "\n".join(lines) + "\n"


def write_contract(contract: Contract, path: Path = SCHEMA_FILE, note: str = "") -> Path:
    """Write contract as a readable schema.yaml (load_contract reads back the same Contract)."""
    Path(path).write_text(render_contract(contract, note), encoding="utf-8")
    return Path(path)
