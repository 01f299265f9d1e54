"""A production traffic log that has drifted, with the outcomes that came back for it.

The scheduled monitoring jobs read the API's prediction log (data/traffic/production as
`poe fetch-traffic` leaves it). `drifted_traffic` writes one without serving: the project's own
log writers (mlops.traffic.PredictionLog, mlops.feedback.OutcomeLog, what the API's /predict and
/feedback use) record the model's answers to the data's rows measured on a new instrument (every
feature moved three spans past its range) and their true labels as the outcomes. Monitoring then
finds drift and a performance drop, and a challenger trained on part of those rows beats the
model on the others (as in tests/test_performance_monitoring.py, there through the API).
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.harness.commands import run

_WRITER = """
import sys
import pandas as pd
from {package}.model import load_model
from {package}.predict import predict_frame
from {package}.mlops.config import MODEL_PATH, RAW_DATA
from {package}.mlops.feedback import Outcome, OutcomeLog, new_prediction_id
from {package}.mlops.schema import CONTRACT
from {package}.mlops.traffic import PredictionLog, json_rows

data = pd.read_csv(RAW_DATA)
features = data[CONTRACT.names]
shifted = features + 3 * (features.max() - features.min())
answers = predict_frame(load_model(MODEL_PATH), shifted)
ids = [new_prediction_id() for _ in range(len(data))]
predictions = [
    {{"id": i, "label": label, "confidence": confidence}}
    for i, label, confidence in zip(ids, answers["prediction"].tolist(),
                                    answers["confidence"].tolist())
]
PredictionLog(sys.argv[1], sample_rate=1.0).record(json_rows(shifted), predictions)
outcomes = [Outcome(id=i, outcome=label) for i, label in zip(ids, data[CONTRACT.target].tolist())]
OutcomeLog(sys.argv[1], 30, 10**9).store(outcomes)
"""


def drifted_traffic(project: Path, directory: Path, package: str = "my_model") -> Path:
    """Write the drifted log and its outcomes into directory (the project's model must be
    there: pulled or trained)."""
    script = _WRITER.format(package=package)
    env = {**os.environ, "NO_COLOR": "1"}
    run([str(project / ".venv" / "bin" / "python"), "-c", script, str(directory)], project, env)
    return directory
