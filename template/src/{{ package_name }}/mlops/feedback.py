"""Outcomes: what really happened to the API's predictions, for performance monitoring.

Every /predict answer carries a prediction id, and the prediction log (traffic.py) keeps it with
each sampled row. The team reports the true label (classification) or value (regression) of a
prediction in one of two ways:
- `POST /feedback` with {"outcomes": [{"id": ..., "outcome": ...}, ...]}: the API stores them
  beside the prediction log, one JSON Lines file per UTC day (outcomes-YYYY-MM-DD.jsonl), under
  the log's retention and daily size cap;
- a CSV file with the columns `id,outcome`, for batch systems: `monitor --outcomes FILE`.
An outcome is one of the contract's labels or a finite number, and names a prediction the log
holds (only a sample is logged: PREDICTION_LOG_SAMPLE_RATE=1 logs every prediction). A request
with any outcome that is not is refused whole: nothing of it is stored. When an id is reported
twice, monitoring uses the last outcome.
"""

import json
import math
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .schema import CONTRACT, Contract, DataValidationError
from .traffic import PREDICTIONS_PREFIX, PredictionLog

OUTCOMES_PREFIX = "outcomes-"
PREDICTION_ID = r"^[0-9a-f]{32}$"  # uuid4().hex
_ROWS_SHOWN = 10


def new_prediction_id() -> str:
    return uuid.uuid4().hex


def outcome_type(contract: Contract = CONTRACT) -> Any:
    """The values an outcome takes: one of the labels, or a finite number."""
    if contract.classification:
        return Literal[contract.labels]
    return Annotated[float, Field(strict=True, allow_inf_nan=False)]


class Outcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=PREDICTION_ID, description="the prediction's id, from /predict")
    outcome: outcome_type()  # type: ignore[valid-type]


def feedback_request(max_rows: int) -> type[BaseModel]:
    """The body of POST /feedback: at most max_rows outcomes (the API's MAX_BATCH_ROWS)."""

    class FeedbackRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        outcomes: list[Outcome] = Field(min_length=1, max_length=max_rows)

    return FeedbackRequest


class UnknownPredictions(LookupError):
    def __init__(self, rows: Sequence[int]) -> None:
        shown = ", ".join(f"outcomes[{row}]" for row in rows[:_ROWS_SHOWN])
        more = f" and {len(rows) - _ROWS_SHOWN} more" if len(rows) > _ROWS_SHOWN else ""
        super().__init__(
            f"{shown}{more}: no logged prediction has this id (unknown, not sampled, or older "
            "than the log's retention); nothing was stored"
        )


class OutcomeLogFull(RuntimeError):
    pass


class _LoggedIds:
    """The prediction ids in a directory's prediction logs. It reads each file's new lines on
    a miss, so it also sees what other processes (API workers) logged into the directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._ids: set[str] = set()
        self._read: dict[Path, int] = {}  # bytes of each file already read
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        for path in sorted(self.directory.glob(f"{PREDICTIONS_PREFIX}*.jsonl")):
            with path.open("rb") as f:
                f.seek(self._read.get(path, 0))
                chunk = f.read()
            complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written is read next time
            self._read[path] = self._read.get(path, 0) + len(complete)
            for line in complete.splitlines():
                if line.strip():
                    record_id = json.loads(line).get("id")
                    if record_id:
                        self._ids.add(record_id)

    def unknown(self, ids: Sequence[str]) -> list[int]:
        """The positions of the ids no prediction log holds."""
        with self._lock:
            if any(i not in self._ids for i in ids):
                self._refresh()
            return [row for row, i in enumerate(ids) if i not in self._ids]


class OutcomeLog(PredictionLog):
    """Outcomes beside the prediction log, with its retention and daily size cap."""

    prefix = OUTCOMES_PREFIX

    def __init__(self, directory: Path, retention_days: int, max_bytes_per_day: int) -> None:
        super().__init__(directory, 1.0, retention_days, max_bytes_per_day)
        self._logged = _LoggedIds(self.directory)

    def store(self, outcomes: Sequence[Outcome], now: datetime | None = None) -> int:
        """Store every outcome, or none: UnknownPredictions when an id is not in the log,
        OutcomeLogFull when the day's file has no room for them."""
        unknown = self._logged.unknown([o.id for o in outcomes])
        if unknown:
            raise UnknownPredictions(unknown)
        now = now or datetime.now(timezone.utc)  # noqa: UP017 (UTC alias: 3.11+)
        records = [{"time": now.isoformat(), "id": o.id, "outcome": o.outcome} for o in outcomes]
        if self.append(records, now) != len(records):
            raise OutcomeLogFull(
                "today's outcome log has reached PREDICTION_LOG_MAX_BYTES_PER_DAY; nothing was "
                "stored"
            )
        return len(records)


def _json_lines(directory: Path, prefix: str) -> list[dict[str, Any]]:
    records = []
    for path in sorted(Path(directory).rglob(f"{prefix}*.jsonl")):
        with path.open(encoding="utf-8") as f:
            records.extend(json.loads(line) for line in f if line.strip())
    return records


def load_predictions(directory: Path, contract: Contract = CONTRACT) -> pd.DataFrame:
    """The logged predictions that carry an id: id, time (UTC) and prediction, oldest first."""
    answer = "label" if contract.classification else "value"
    records = [r for r in _json_lines(directory, PREDICTIONS_PREFIX) if r.get("id")]
    frame = pd.DataFrame(
        [(r["id"], r["time"], r[answer]) for r in records], columns=["id", "time", "prediction"]
    )
    frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
    return frame.drop_duplicates("id", keep="last").sort_values("time", kind="stable")


def read_outcomes_csv(path: Path, contract: Contract = CONTRACT) -> pd.DataFrame:
    """A batch system's outcomes: a CSV file with the columns id and outcome, each row checked
    as /feedback checks it (DataValidationError names the rows at fault)."""
    try:
        frame = pd.read_csv(path, dtype={"id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataValidationError(f"{path}: not a CSV file of id,outcome ({exc})") from None
    if list(frame.columns) != ["id", "outcome"]:
        raise DataValidationError(
            f"{path}: needs the columns id,outcome, has {list(frame.columns)}"
        )
    check = TypeAdapter(Outcome)
    bad = []
    pairs = zip(frame["id"], frame["outcome"].tolist(), strict=True)
    for row, (record_id, outcome) in enumerate(pairs):
        if isinstance(outcome, float) and math.isnan(outcome):
            bad.append(row)
            continue
        try:
            check.validate_python({"id": record_id, "outcome": outcome})
        except ValidationError:
            bad.append(row)
    if bad:
        kind = "one of the labels" if contract.classification else "a finite number"
        shown = ", ".join(str(row + 2) for row in bad[:_ROWS_SHOWN])  # file lines, header is 1
        raise DataValidationError(
            f"{path}: {len(bad)} rows with an id that is not a prediction id or an outcome that "
            f"is not {kind} (lines {shown}{' ...' if len(bad) > _ROWS_SHOWN else ''})"
        )
    return frame


def load_outcomes(path: Path) -> pd.DataFrame:
    """Outcomes by id (the last one reported for each): the API's outcome logs under a
    directory, or a CSV file of id,outcome."""
    path = Path(path)
    if path.is_dir():
        records = _json_lines(path, OUTCOMES_PREFIX)
        frame = pd.DataFrame(records, columns=["id", "outcome"])
    else:
        frame = read_outcomes_csv(path)
    return frame.drop_duplicates("id", keep="last")[["id", "outcome"]]


def labelled_predictions(predictions: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """The predictions that have an outcome: id, time, prediction and outcome."""
    labelled = predictions.merge(outcomes, on="id", how="inner", validate="one_to_one")
    # Outcomes from the log and from a CSV file arrive as objects: as values of one type again.
    return labelled.infer_objects()
