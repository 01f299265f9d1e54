"""checkov, the infrastructure-as-code auditor, over a directory of renderings.

checkov pins old releases of libraries this suite uses (packaging<24), so it cannot be a
development dependency: it runs from PyPI in an environment of its own (`uv tool run`), at the
version below. --skip-download keeps it offline (no policy updates from Prisma Cloud).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHECKOV = "checkov==3.3.30"
UV = Path(sys.executable).with_name("uv")


def assert_checkov_finds_nothing(root: Path, frameworks: set[str]) -> None:
    """No failed check in any file under root, each of frameworks having read something; a
    check kept off says why (`# checkov:skip=ID: reason`, or a pod's `checkov.io/skipN:
    ID=reason` annotation)."""
    result = subprocess.run(
        [str(UV), "tool", "run", "--from", CHECKOV, "checkov", "--skip-download", "--quiet"]
        + ["--output", "json", "--framework", *sorted(frameworks), "--directory", str(root)],
        capture_output=True,
        text=True,
    )
    try:
        reports = json.loads(result.stdout)
    except ValueError as exc:
        raise AssertionError(f"checkov: {result.stdout[-2000:]}{result.stderr[-4000:]}") from exc
    reports = reports if isinstance(reports, list) else [reports]
    counts = {report["check_type"]: report["summary"] for report in reports}
    read = {name for name, summary in counts.items() if summary["passed"] + summary["failed"]}
    assert read == frameworks, f"checkov read nothing for {frameworks - read}: {counts}"
    failed = [
        f"{report['check_type']}: {check['check_id']} {check['check_name']} "
        f"({check['resource']}, {check['file_abs_path']})"
        for report in reports
        for check in report["results"].get("failed_checks", [])
    ]
    assert not failed, "\n".join(failed)
    assert result.returncode == 0, result.stderr[-4000:]
    unexplained = [
        f"{check['check_id']} ({check['file_abs_path']})"
        for report in reports
        for check in report["results"].get("skipped_checks", [])
        if not (check.get("suppress_comment") or "").strip()
    ]
    assert not unexplained, "checks skipped without a reason:\n" + "\n".join(unexplained)
