"""What a generated project's experiment tracker holds: its MLflow runs, its DVCLive files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.harness.commands import run

# Run with the project's own interpreter (MLflow is the project's dependency, not the suite's).
_MLFLOW_RUNS = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
experiment = client.get_experiment_by_name(sys.argv[2])
runs = client.search_runs([experiment.experiment_id]) if experiment else []
print(json.dumps({
    "runs": [
        {
            "id": run.info.run_id,
            "name": run.info.run_name,
            "metrics": run.data.metrics,
            "params": run.data.params,
            "artifacts": [a.path for a in client.list_artifacts(run.info.run_id, "model")],
        }
        for run in runs
    ],
    "versions": [
        {"version": str(v.version), "run_id": v.run_id}
        for v in client.search_model_versions(f"name='{sys.argv[2]}'")
    ],
}))
"""


def mlflow_runs(project: Path, uri: str | None = None, experiment: str = "my-model") -> dict:
    """{"runs": [{id, name, metrics, params, artifacts}, ...] newest first, "versions": [...]}
    from the tracking server at uri, or from the project's default local store."""
    uri = uri or f"sqlite:///{project / 'mlruns' / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    command = ["uv", "run", "python", "-c", _MLFLOW_RUNS, uri, experiment]
    return json.loads(run(command, project, env).stdout)


def runs_named(found: dict, name: str) -> list[dict]:
    return [r for r in found["runs"] if r["name"] == name]


def dvclive_metrics(project: Path, stage: str) -> dict:
    """The metrics DVCLive wrote for a pipeline stage (dvclive/<stage>/metrics.json)."""
    return json.loads((project / "dvclive" / stage / "metrics.json").read_text())
