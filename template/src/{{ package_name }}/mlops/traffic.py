"""Live traffic for drift monitoring: a sampled log of the API's prediction inputs and outputs.

The API appends a sample of its requests (PREDICTION_LOG_SAMPLE_RATE, default 10%) to one JSON
Lines file per UTC day in PREDICTION_LOG_DIR, and deletes files older than
PREDICTION_LOG_RETENTION_DAYS (default 30). A day's file stops growing at
PREDICTION_LOG_MAX_BYTES_PER_DAY (default 100 MB), so clients cannot fill the disk; the rest of
that day is not logged. Logging is off when PREDICTION_LOG_DIR is unset.
Only the model's features and its answer are kept (no client address, no headers), so the log
holds exactly what the model was shown. If features are personal data, treat the log's volume
and the CI artifacts as such (access, retention), or lower PREDICTION_LOG_SAMPLE_RATE (0: off).

The scheduled drift job reads these files (`monitor data/traffic`): drift is then measured on
what the model really sees, not only on new training data.
"""

import json
import random
import threading
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .schema import CONTRACT, Contract

PREDICTIONS_PREFIX = "predictions-"


class PredictionLog:
    prefix = PREDICTIONS_PREFIX  # the day's file: <prefix>YYYY-MM-DD.jsonl

    def __init__(
        self,
        directory: Path,
        sample_rate: float = 0.1,
        retention_days: int = 30,
        max_bytes_per_day: int = 100_000_000,
        rng: random.Random | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample rate {sample_rate} is not between 0 and 1")
        self.directory = Path(directory)
        self.sample_rate = sample_rate
        self.retention = timedelta(days=retention_days)
        self.max_bytes_per_day = max_bytes_per_day
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._pruned_on: str | None = None
        self.directory.mkdir(parents=True, exist_ok=True)

    def record(
        self,
        rows: Sequence[dict[str, Any]],
        predictions: Iterable[dict[str, Any]],
        now: datetime | None = None,
    ) -> int:
        """Append the sampled rows of one request (each prediction with its id); returns how
        many were written (none once the day's file has reached max_bytes_per_day)."""
        now = now or datetime.now(timezone.utc)  # noqa: UP017 (UTC alias: 3.11+)
        kept = [
            {"time": now.isoformat(), "features": row, **prediction}
            for row, prediction in zip(rows, predictions, strict=True)
            if self._rng.random() < self.sample_rate
        ]
        return self.append(kept, now)

    def append(self, records: Sequence[dict[str, Any]], now: datetime) -> int:
        """Append records to the day's file, all of them or (over the day's cap) none; prune
        files older than the retention once a day."""
        lines = "".join(json.dumps(record) + "\n" for record in records).encode()
        day = now.strftime("%Y-%m-%d")
        written = 0
        with self._lock:
            if records:
                path = self.directory / f"{self.prefix}{day}.jsonl"
                size = path.stat().st_size if path.exists() else 0
                if size + len(lines) <= self.max_bytes_per_day:
                    with path.open("ab") as f:
                        f.write(lines)
                    written = len(records)
            if self._pruned_on != day:
                self._prune(now)
                self._pruned_on = day
        return written

    def _prune(self, now: datetime) -> None:
        oldest = (now - self.retention).strftime("%Y-%m-%d")
        for path in self.directory.glob(f"{self.prefix}*.jsonl"):
            if path.stem.removeprefix(self.prefix) < oldest:
                path.unlink(missing_ok=True)


def frame_of(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Feature rows as JSON gives them (null where missing) in a frame typed as pandas reads
    the training CSV: numbers as floats, a missing value as NaN, categories as they are."""
    rows = list(rows)
    numeric = set(CONTRACT.numeric)
    columns = {}
    # Column by column: the API calls this for every request, and a frame built from records
    # then cast costs a few milliseconds, as much as a small model's answer.
    for name in CONTRACT.names:
        values = [row.get(name, np.nan) for row in rows]
        if name in numeric:
            columns[name] = np.array(values, dtype=float)  # None becomes NaN
        else:
            column = pd.Series(values, dtype=None if values else object)
            columns[name] = column.where(column.notna(), np.nan)
    return pd.DataFrame(columns, columns=CONTRACT.names)


def json_rows(frame: pd.DataFrame, contract: Contract = CONTRACT) -> list[dict[str, Any]]:
    """The inverse of frame_of: a frame's feature rows as JSON values (None where missing;
    integer features as integers, 3 not 3.0, even in a column with gaps), e.g. rows of the
    data to send to the API. adopt-data passes the contract it has just inferred."""
    features = frame[contract.names].astype(object)
    rows = features.where(features.notna(), None).to_dict(orient="records")
    integers = [feature.name for feature in contract.features if feature.type == "integer"]
    for row in rows:
        for name in integers:
            if row[name] is not None:
                row[name] = int(row[name])
    return rows


def load_traffic(directory: Path) -> pd.DataFrame:
    """The logged feature rows of every file under directory, oldest first."""
    rows = []
    for path in sorted(Path(directory).rglob(f"{PREDICTIONS_PREFIX}*.jsonl")):
        with path.open(encoding="utf-8") as f:
            rows.extend(json.loads(line)["features"] for line in f if line.strip())
    return frame_of(rows)
