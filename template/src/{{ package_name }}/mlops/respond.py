"""The scheduled monitoring job's answer to an alert: `poe monitoring`'s last step.

It runs `poe monitor`. When that finds drift or a performance drop past its limit and
params.yaml's `monitor.retrain.enabled` is true, it runs `poe retrain`, which proposes a
challenger that beats the deployed model as a pull/merge request (a branch on Jenkins). Either
way it exits as monitor did: the red job is the alert, the request the response. A monitor that
failed for another reason (a missing file, bad data) retrains nothing.
"""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .retrain import settings


def _read(report: Path) -> dict[str, Any]:
    return json.loads(report.read_text()) if report.is_file() else {}


def alerts(drift_report: Path, performance_report: Path) -> list[str]:
    """What passed its limit in the reports monitor has just written (none written: none)."""
    found = []
    if _read(drift_report).get("drift_detected"):
        found.append("data drift")
    if _read(performance_report).get("failures"):
        found.append("a performance drop")
    return found


def monitor_and_retrain(
    params: dict[str, Any], reports: tuple[Path, Path], run_task: Callable[[str], int]
) -> int:
    """Run the monitor task, then the retrain task on an alert when enabled (run_task runs a
    poe task and returns its exit status); return the monitor task's status."""
    for report in reports:  # only this run's verdict may start a retraining
        report.unlink(missing_ok=True)
    status = run_task("monitor")
    found = alerts(*reports) if status != 0 else []
    if not found:
        return status
    if not settings(params)["enabled"]:
        print(
            f"monitoring: {' and '.join(found)}; not retraining (params.yaml "
            "monitor.retrain.enabled is false)"
        )
        return status
    print(f"monitoring: {' and '.join(found)}; retraining is enabled: poe retrain")
    if run_task("retrain") != 0:
        print("monitoring: retraining failed (its output above says why)", file=sys.stderr)
    return status
