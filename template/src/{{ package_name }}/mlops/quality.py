"""The model quality gate CI runs after the pipeline.

It fails when a metric is on the wrong side of its threshold in params.yaml (below it; above it
for errors such as rmse), or when it regresses against the base branch by more than the
tolerance (`dvc metrics diff`), and writes a Markdown report of the metrics and params
differences for the job summary or the pull request. Both diffs go through DVC's Python API in
this process, not a `dvc` process each.
"""

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from .atomic import write_text_atomically
from .thresholds import threshold_failures, worsening


def dvc_diffs(base: str, metrics_file: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`dvc metrics diff BASE --all --targets metrics_file` and `dvc params diff BASE`, as
    their --json output (paths relative to the repository root); empty when DVC cannot tell."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as repo:
            metrics = repo.metrics.diff(a_rev=base, targets=[metrics_file], all=True)
            params = repo.params.diff(a_rev=base)
    except DvcException:
        return {}, {}
    return metrics.get("diff", {}), params.get("diff", {})


def fetch_base(base: str) -> None:
    """Fetch a remote-tracking base such as origin/main: CI checkouts are often shallow or
    fetch only the built branch. Without it (no remote, no access) the gate goes on."""
    remote, _, branch = base.partition("/")
    remotes = subprocess.run(["git", "remote"], capture_output=True, text=True).stdout.split()
    if not branch or remote not in remotes:
        return  # a local revision (main, a sha): nothing to fetch
    # Name the destination: with a narrow refspec (Jenkins multibranch) a plain fetch of the
    # branch would not create the remote-tracking ref.
    refspec = f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"
    fetched = subprocess.run(
        ["git", "fetch", "--quiet", "--no-tags", remote, refspec],
        capture_output=True,
        env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},  # never wait for a password
    )
    if fetched.returncode != 0:
        print("base branch not fetched; the quality gate checks thresholds only")


def base_exists(base: str) -> bool:
    check = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", base + "^{commit}"], capture_output=True
    )
    return check.returncode == 0


def same_target(base: str) -> bool:
    """Whether base predicts the same target as the working tree (schema.yaml's `target`): the
    metrics of another problem (before adopt-data, say) are no base to regress from. A base
    without schema.yaml (an earlier release) predicts the bundled sample's, as before."""
    import yaml

    contract = Path(__file__).parents[1] / "schema.yaml"  # the team's, beside their model code
    shown = subprocess.run(
        ["git", "show", f"{base}:./{os.path.relpath(contract)}"], capture_output=True, text=True
    )
    if shown.returncode != 0:
        return True
    try:
        old = yaml.safe_load(shown.stdout)["target"]
    except (yaml.YAMLError, TypeError, KeyError):
        return False
    return old == yaml.safe_load(contract.read_text())["target"]


def base_metrics(metrics_diff: dict[str, Any], metrics_file: str) -> dict[str, float]:
    """The metrics recorded in metrics_file on the base revision, from `dvc metrics diff`."""
    return {name: entry.get("old") for name, entry in metrics_diff.get(metrics_file, {}).items()}


def check(
    metrics: dict[str, float],
    thresholds: dict[str, float],
    base: dict[str, float] | None,
    max_regression: float,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return one row per metric and the list of failures (empty when the gate passes)."""
    rows, failures = [], []
    below = threshold_failures(metrics, thresholds)
    for name, value in metrics.items():
        threshold = thresholds.get(name)
        old = (base or {}).get(name)
        change = None if old is None else round(value - old, 6)
        problems = [below[name]] if name in below else []
        if old is not None and (worse := worsening(name, value, old)) > max_regression:
            problems.append(
                f"{name} = {value:.4f} regressed by {worse:.4f} against the base "
                f"({old:.4f}), more than the tolerance {max_regression}"
            )
        failures += problems
        rows.append(
            {
                "metric": name,
                "value": value,
                "threshold": threshold,
                "base": old,
                "change": change,
                "ok": not problems,
            }
        )
    failures += [problem for name, problem in below.items() if name not in metrics]
    return rows, failures


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:+.4f}" if isinstance(value, float) and value < 0 else str(value)


def render_report(
    rows: list[dict[str, Any]], failures: list[str], base: str | None, params_diff: dict[str, Any]
) -> str:
    compared = f" (compared with `{base}`)" if base else " (no base revision to compare with)"
    lines = [
        "## Model quality gate",
        "",
        f"**Result: {'FAILED' if failures else 'passed'}**{compared}",
    ]
    lines += ["", "| metric | value | threshold | base | change | |", "|---|---|---|---|---|---|"]
    for row in rows:
        cells = [row["metric"], row["value"], row["threshold"], row["base"], row["change"]]
        status = "✅" if row["ok"] else "❌"
        lines.append("| " + " | ".join(_cell(c) for c in cells) + f" | {status} |")
    if failures:
        lines += ["", *[f"- {failure}" for failure in failures]]
    changed = {name: entry for file in params_diff.values() for name, entry in file.items()}
    lines += ["", "### Params changed against the base", ""]
    if changed:
        lines += ["| param | base | now |", "|---|---|---|"]
        lines += [
            f"| {k} | {_cell(v.get('old'))} | {_cell(v.get('new'))} |" for k, v in changed.items()
        ]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def gate(
    params: dict[str, Any], metrics_file: Path, base: str | None, report: Path | None
) -> list[str]:
    metrics = json.loads(Path(metrics_file).read_text())
    settings = params["evaluate"]
    if base:
        fetch_base(base)
    usable_base = base if base and base_exists(base) else None
    if base and not usable_base:
        print(f"quality gate: base revision '{base}' not found; checking thresholds only")
    elif usable_base and not same_target(usable_base):
        print(f"quality gate: the target differs on '{base}' (schema.yaml); thresholds only")
        usable_base = None
    old, params_diff = None, {}
    if usable_base:
        metrics_diff, params_diff = dvc_diffs(usable_base, str(metrics_file))
        old = base_metrics(metrics_diff, str(metrics_file))
    rows, failures = check(metrics, settings["thresholds"], old, settings["max_regression"])
    if report is not None:
        write_text_atomically(report, render_report(rows, failures, usable_base, params_diff))
    return failures
