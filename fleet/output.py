"""The report's formats: terminal table, Markdown, JSON and one self-contained HTML page."""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fleet.inspect_repo import Report

COLUMNS = ("repository", "labels", "release", "behind", "answers", "drift", "update", "problems")


def cells(report: Report) -> list[str]:
    """One row of text, the same in every tabular format."""
    answers = ", ".join(
        f"{key}={'+'.join(value) if isinstance(value, list) else value}"
        for key, value in report.answers.items()
        if value is not None
    )
    drift = "; ".join(f"{d['path']} (+{d['added']} -{d['removed']})" for d in report.drift)
    update = ", ".join(report.update_branches)
    if report.update_request:
        update += f" {report.update_request['url']} CI: {report.update_request['ci']}"
    behind = "" if report.behind is None else str(report.behind)
    return [
        report.repo,
        ", ".join(report.labels),
        report.release or report.adoption or "",
        behind,
        answers,
        drift or ("none" if report.release and not report.problems else ""),
        update,
        "; ".join(report.problems),
    ]


def to_json(reports: list[Report]) -> str:
    return json.dumps([r.as_dict() for r in reports], indent=2) + "\n"


def to_markdown(reports: list[Report]) -> str:
    def row(values) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    lines = [row(COLUMNS), row(["---"] * len(COLUMNS))]
    return "\n".join(lines + [row(cells(r)) for r in reports]) + "\n"


def print_table(reports: list[Report], console: Console) -> None:
    table = Table(*COLUMNS, title="Template fleet", show_lines=True)
    for column in table.columns:
        column.overflow = "fold"  # never an ellipsis: every path and problem stays readable
    for report in reports:
        lines = [cell.replace("; ", "\n") for cell in cells(report)]  # one drift file a line
        table.add_row(*lines, style="red" if report.problems else None)
    console.print(table)


def releases_chart(reports: list[Report]) -> str:
    """An inline SVG bar chart: how many repositories record each release."""
    counts = Counter(r.release or ("not adopted" if r.adoption else "unknown") for r in reports)
    bar, gap, width = 28, 8, 360
    most = max(counts.values(), default=1)
    rows = []
    for i, (release, count) in enumerate(sorted(counts.items())):
        y, length = i * (bar + gap), max(2, width * count // most)
        rows.append(
            f'<text x="0" y="{y + 19}">{html.escape(release)}</text>'
            f'<rect x="120" y="{y}" width="{length}" height="{bar}" fill="#3b82f6"/>'
            f'<text x="{126 + length}" y="{y + 19}">{count}</text>'
        )
    height = len(counts) * (bar + gap)
    return (
        f'<svg id="releases" xmlns="http://www.w3.org/2000/svg" width="540" height="{height}" '
        f'role="img" aria-label="repositories by release">{"".join(rows)}</svg>'
    )


HTML = (Path(__file__).parent / "page.html").read_text()


def to_html(reports: list[Report]) -> str:
    header = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in cells(r)) + "</tr>" for r in reports
    )
    return (
        HTML.replace("{{chart}}", releases_chart(reports))
        .replace("{{header}}", header)
        .replace("{{rows}}", body)
        .replace("{{count}}", str(len(reports)))
    )
