"""Batch scoring: a CSV file, or a directory of CSV files, scored chunk by chunk.

Every row either gets a prediction or is reported apart with what is wrong with it, never
dropped. Rows are read as text and typed by the data contract (schema.yaml), not by what pandas
guesses from one chunk, so a row scores the same whatever chunk it falls in, and a value of the
wrong type fails only its own row. Memory stays flat as the input grows: one chunk is in memory
at a time and the output is appended chunk by chunk. Both output files are written beside their
final names and moved into place at the end, so a failed run leaves the previous ones intact.

Output columns: `id` (the input's id column, else `<file>:<row>`), `source` (the file), `row`
(its 0-based data row), `prediction` (and `confidence` for a classifier) and `model_version`.
Rejected rows: `source`, `row`, `problems`, and `values` (the row as read, JSON).
"""

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.pandas as pa

from ..model import load_model
from ..predict import predict_frame
from .atomic import written_atomically
from .schema import CONTRACT, Contract, Feature, build_schema

CHUNK_ROWS = 20_000
BOOLEANS = {"True": True, "true": True, "TRUE": True, "False": False, "false": False}
BOOLEANS |= {"FALSE": False}
PROBLEMS = {
    "not_nullable": "missing value",
    "numeric": "not a number",
    "integer": "not an integer",
    "in_range": "out of range",
    "boolean": "not true/false",
    "category": "unknown category",
    "date": "not a date",
}


class BatchError(ValueError):
    """The input or output cannot be used at all; nothing was written."""


@dataclass
class BatchResult:
    output: Path
    rejected_output: Path
    model_version: str
    scored: int = 0
    rejected: int = 0
    files: list[str] = field(default_factory=list)

    @property
    def rejected_share(self) -> float:
        total = self.scored + self.rejected
        return self.rejected / total if total else 0.0


def model_version(model_path: Path) -> str:
    """MODEL_VERSION (a registry version, set by whoever deploys), else the model file's md5:
    the version /metadata of the API reports for the same model."""
    if os.environ.get("MODEL_VERSION"):
        return os.environ["MODEL_VERSION"]
    digest = hashlib.md5()
    with Path(model_path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_files(source: Path) -> list[Path]:
    """The CSV file, or the directory's CSV files (recursively, in name order)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.rglob("*.csv") if p.is_file())
        if files:
            return files
        raise BatchError(f"{source}: no .csv files in this directory")
    raise BatchError(f"{source}: no such file or directory")


def _category_lookup(feature: Feature) -> dict[str, Any]:
    """Text as read -> the contract's value: "3" -> 3, "3.0" -> 3, "red" -> "red"."""
    lookup: dict[str, Any] = {}
    for value in feature.categories:
        lookup[str(value)] = value
        if isinstance(value, int | float) and not isinstance(value, bool):
            lookup[str(float(value))] = value
    return lookup


def typed(text: pd.DataFrame, contract: Contract = CONTRACT) -> pd.DataFrame:
    """The contract's columns of a chunk read as text, typed as schema.yaml says; a value that
    is not of its type stays the text it was, so that validation names it."""
    frame = text.copy()
    for feature in contract.features:
        if feature.name not in frame:
            continue
        column = text[feature.name]
        if feature.numeric:
            numbers = pd.to_numeric(column, errors="coerce")
            unreadable = column.notna() & numbers.isna()
            frame[feature.name] = numbers.astype(object).where(~unreadable, column)
        elif feature.type != "date":  # a date stays the text it is
            lookup = BOOLEANS if feature.type == "boolean" else _category_lookup(feature)
            frame[feature.name] = column.map(lambda v, lk=lookup: lk.get(v, v) if v == v else v)
    return frame


def row_problems(frame: pd.DataFrame, contract: Contract = CONTRACT) -> dict[Any, list[str]]:
    """{row index: [problem, ...]} for the rows that break the contract (a missing column
    breaks every row)."""
    try:
        build_schema(require_target=False, contract=contract).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases
    else:
        return {}
    problems: dict[Any, list[str]] = {}
    for case in failures.itertuples(index=False):
        if case.check == "column_in_dataframe":
            for index in frame.index:
                problems.setdefault(index, []).append(f"column '{case.failure_case}': missing")
            continue
        what = PROBLEMS.get(str(case.check), f"failed {case.check}")
        text = f"column '{case.column}': {what}"
        if case.check != "not_nullable":
            text += f" ({str(case.failure_case)[:40]})"
        rows = frame.index if pd.isna(case.index) else [case.index]
        for index in rows:
            problems.setdefault(index, []).append(text)
    return problems


def _chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows as text (missing values as NaN), chunk_rows at a time."""
    try:
        yield from pd.read_csv(path, dtype=str, chunksize=chunk_rows)
    except pd.errors.EmptyDataError:
        return  # no header, no rows: nothing to score
    except (UnicodeDecodeError, pd.errors.ParserError) as exc:
        reason = str(exc).splitlines()[0][:200]
        raise BatchError(f"{path}: not a CSV text file (UTF-8): {reason}") from None


def _as_model_input(rows: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    rows = rows.copy()
    for name in contract.numeric:
        rows[name] = pd.to_numeric(rows[name])
    return rows


def _append(frame: pd.DataFrame, path: Path, header: bool) -> None:
    frame.to_csv(path, mode="w" if header else "a", header=header, index=False)


def output_columns(contract: Contract = CONTRACT) -> list[str]:
    confidence = ["confidence"] if contract.classification else []
    return ["id", "source", "row", "prediction", *confidence, "model_version"]


REJECTED_COLUMNS = ["source", "row", "problems", "values"]


def score_chunk(
    model, chunk: pd.DataFrame, name: str, version: str, id_column: str, contract: Contract
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the scored rows, the rejected rows) of a chunk read as text from the file name."""
    frame = typed(chunk, contract)
    problems = row_problems(frame, contract)
    bad = frame.index.isin(list(problems))
    rejected = pd.DataFrame(
        {
            "source": name,
            "row": frame.index[bad],
            "problems": ["; ".join(problems[i]) for i in frame.index[bad]],
            "values": [
                json.dumps({k: None if pd.isna(v) else v for k, v in row.items()})
                for _, row in chunk[bad].iterrows()
            ],
        },
        columns=REJECTED_COLUMNS,
    )
    good = frame[~bad]
    if good.empty:
        return pd.DataFrame(columns=output_columns(contract)), rejected
    predicted = predict_frame(model, _as_model_input(good[contract.names], contract))
    ids = good[id_column] if id_column in good else [f"{name}:{i}" for i in good.index]
    scored = pd.DataFrame({"id": ids, "source": name, "row": good.index}, index=good.index)
    scored["prediction"] = predicted["prediction"].to_numpy()
    if contract.classification:
        scored["confidence"] = predicted["confidence"].to_numpy()
    scored["model_version"] = version
    return scored, rejected


def score(
    source: Path,
    output: Path,
    model_path: Path,
    rejected_output: Path | None = None,
    chunk_rows: int = CHUNK_ROWS,
    id_column: str = "id",
    contract: Contract = CONTRACT,
    version: str | None = None,
) -> BatchResult:
    """Score every row of source (a CSV file or a directory of them) with the model, whose
    version is version (a registry's) or model_version's."""
    source, output = Path(source), Path(output)
    files = input_files(source)
    rejected_output = Path(rejected_output or output.with_suffix(".rejected.csv"))
    for written in (output, rejected_output):
        if written.resolve() in {f.resolve() for f in files}:
            raise BatchError(f"{written}: the output would overwrite an input file")
    model = load_model(model_path)  # fails before anything is written
    result = BatchResult(output, rejected_output, version or model_version(model_path))
    # Both files are renamed into place only when every chunk is scored: a failed run leaves the
    # previous outputs whole (mlops/atomic.py).
    with written_atomically(output) as partial, written_atomically(rejected_output) as rejects:
        # The headers first: a run that scores nothing still says what the files hold.
        _append(pd.DataFrame(columns=output_columns(contract)), partial, True)
        _append(pd.DataFrame(columns=REJECTED_COLUMNS), rejects, True)
        for path in files:
            name = str(path.relative_to(source)) if source.is_dir() else path.name
            result.files.append(name)
            for chunk in _chunks(path, chunk_rows):
                scored, rejected = score_chunk(
                    model, chunk, name, result.model_version, id_column, contract
                )
                _append(scored, partial, False)
                _append(rejected, rejects, False)
                result.scored += len(scored)
                result.rejected += len(rejected)
    return result
