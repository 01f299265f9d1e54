"""The monitoring report: one self-contained HTML page a person reads after a monitoring run.

The verdict comes first (data drift, performance), then each feature's distribution in the
training data beside the batch's, as a bar chart over the feature's drift buckets, then the
performance of each window with its labelled rows. The charts are inline SVG and the page has
no script and loads nothing: it opens offline, from a CI artifact, in any browser.
"""

import html
from pathlib import Path
from typing import Any

import pandas as pd

from .performance import FAILED, PASSED
from .reference import monitored_frame, shares

REFERENCE_COLOUR, BATCH_COLOUR = "#4c78a8", "#f58518"
_WIDTH, _HEIGHT, _MARGIN = 560, 200, 36

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #222; }
.verdict { padding: 1rem 1.25rem; border-radius: 6px; margin-bottom: 1.5rem; }
.ok { background: #e6f4ea; border-left: 6px solid #2e7d32; }
.bad { background: #fdecea; border-left: 6px solid #c62828; }
.unknown { background: #fff8e1; border-left: 6px solid #f9a825; }
.features { display: grid; gap: 1rem;
            grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); }
figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: 0.5rem; }
figcaption { font-weight: 600; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.legend span { display: inline-block; width: 0.8rem; height: 0.8rem; margin: 0 0.3rem 0 1rem; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def bucket_names(profile: dict[str, Any]) -> list[str]:
    """The labels of a feature's drift buckets, the missing values' bucket last."""
    if "categories" in profile:
        return [str(c) for c in profile["categories"]] + ["missing or other"]
    edges = [f"{edge:.4g}" for edge in profile.get("edges", [])]
    if not edges:
        return ["all values", "missing"][: len(profile["proportions"])]
    inner = [f"{low} to {high}" for low, high in zip(edges, edges[1:], strict=False)]
    return [f"below {edges[0]}", *inner, f"{edges[-1]} or above", "missing"]


def bar_chart(names: list[str], reference: list[float], batch: list[float], title: str) -> str:
    """Two bars per bucket (reference, batch), shares from 0 to 1, as inline SVG."""
    top = max([*reference, *batch, 0.05])
    slot = (_WIDTH - 2 * _MARGIN) / max(len(names), 1)
    bar = slot * 0.38
    plot_height = _HEIGHT - 2 * _MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="100%" '
        f'height="{_HEIGHT}" viewBox="0 0 {_WIDTH} {_HEIGHT}"><title>{_e(title)}</title>',
        f'<line x1="{_MARGIN}" y1="{_HEIGHT - _MARGIN}" x2="{_WIDTH - _MARGIN}" '
        f'y2="{_HEIGHT - _MARGIN}" stroke="#888"/>',
        f'<text x="4" y="{_MARGIN - 8}" font-size="11">{top:.0%}</text>',
    ]
    for i, name in enumerate(names):
        x = _MARGIN + i * slot + slot * 0.1
        for offset, share, colour, kind in (
            (0, reference[i], REFERENCE_COLOUR, "reference"),
            (bar, batch[i], BATCH_COLOUR, "batch"),
        ):
            h = plot_height * share / top
            parts.append(
                f'<rect class="{kind}" x="{x + offset:.1f}" y="{_HEIGHT - _MARGIN - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{_e(name)}: {kind} {share:.1%}</title></rect>"
            )
        parts.append(
            f'<text x="{x + bar:.1f}" y="{_HEIGHT - _MARGIN + 14}" font-size="10" '
            f'text-anchor="middle">{_e(name[:18])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def feature_charts(reference: dict[str, Any], batch: pd.DataFrame, drift: dict[str, Any]) -> str:
    figures = []
    batch = monitored_frame(batch)  # a date as its parts, as drift.json reports them
    for name, result in drift["features"].items():
        profile = reference[name]
        recent = shares(profile, batch[name]).round(6).tolist()
        state = "drifted" if result["drifted"] else "stable"
        caption = f"{name}: {state} (PSI {result['score']:.3f})"
        chart = bar_chart(bucket_names(profile), profile["proportions"], recent, caption)
        figures.append(
            f'<figure class="feature" data-feature="{_e(name)}" data-drifted="{state}">'
            f"<figcaption>{_e(caption)}</figcaption>{chart}</figure>"
        )
    return '<div class="features">' + "".join(figures) + "</div>"


def performance_section(performance: dict[str, Any]) -> str:
    metrics = list(performance["thresholds"])
    head = "".join(f"<th>{_e(m)}</th>" for m in metrics)
    rows = [
        "<tr><td>threshold</td><td></td><td></td>"
        + "".join(f"<td>{_e(performance['thresholds'][m])}</td>" for m in metrics)
        + "</tr>",
        "<tr><td>at release</td><td></td><td></td>"
        + "".join(f"<td>{_e(performance['release_metrics'].get(m, '–'))}</td>" for m in metrics)
        + "</tr>",
    ]
    for window in performance["windows"]:
        values = "".join(f"<td>{_e(window['metrics'].get(m, '–'))}</td>" for m in metrics)
        rows.append(
            f"<tr><td>{_e(window['window'])}</td><td>{window['predictions']}</td>"
            f"<td>{window['labelled_rows']}</td>{values}</tr>"
        )
    table = (
        '<table class="performance"><tr><th>window</th><th>logged predictions</th>'
        f"<th>labelled rows</th>{head}</tr>{''.join(rows)}</table>"
    )
    charts = []
    for metric in metrics:
        windows = [w for w in performance["windows"] if metric in w["metrics"]]
        if windows:
            values = [w["metrics"][metric] for w in windows]
            threshold = [performance["thresholds"][metric]] * len(windows)
            names = [w["window"][:10] for w in windows]
            title = f"{metric} per window (blue: threshold, orange: measured)"
            charts.append(
                f'<figure class="metric" data-metric="{_e(metric)}"><figcaption>{_e(title)}'
                f"</figcaption>{bar_chart(names, threshold, values, title)}</figure>"
            )
    return table + '<div class="features">' + "".join(charts) + "</div>"


def verdict(drift: dict[str, Any], performance: dict[str, Any]) -> tuple[str, str, list[str]]:
    """The headline, its class (ok, bad, unknown) and one line per check."""
    drifted = [name for name, f in drift["features"].items() if f["drifted"]]
    lines = [
        f"Data drift: {'DETECTED' if drift['drift_detected'] else 'none'}: "
        f"{len(drifted)} of {len(drift['features'])} features drifted"
        + (f" ({', '.join(drifted)})" if drifted else "")
        + f" in {drift['rows']} rows."
    ]
    status = performance["status"]
    lines.append(f"Performance: {performance['summary']}.")
    lines += [f"Performance drop: {failure}." for failure in performance["failures"]]
    if drift["drift_detected"] or status == FAILED:
        return "Action needed", "bad", lines
    if status == PASSED:
        return "Healthy", "ok", lines
    return "No data drift; performance not judged", "unknown", lines


def render(
    reference: dict[str, Any],
    batch: pd.DataFrame,
    drift: dict[str, Any],
    performance: dict[str, Any],
    title: str,
) -> str:
    headline, kind, lines = verdict(drift, performance)
    counts = (
        f"{drift['rows']} rows measured; {performance.get('predictions', 0)} logged predictions "
        f"with an id, {performance.get('labelled_rows', 0)} of them labelled"
        f" ({performance.get('unmatched_outcomes', 0)} outcomes match no logged prediction)."
    )
    legend = (
        f'<p class="legend"><span style="background:{REFERENCE_COLOUR}"></span>training data '
        f'(reference)<span style="background:{BATCH_COLOUR}"></span>batch (recent)</p>'
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{_e(title)}: monitoring report</title><style>{STYLE}</style></head><body>",
            f"<h1>{_e(title)}: monitoring report</h1>",
            f'<section id="verdict" class="verdict {kind}"><h2>{_e(headline)}</h2><ul>'
            + "".join(f"<li>{_e(line)}</li>" for line in lines)
            + f"</ul><p>{_e(counts)}</p></section>",
            '<section id="drift"><h2>Feature distributions</h2>' + legend,
            feature_charts(reference, batch, drift) + "</section>",
            '<section id="performance"><h2>Performance over time</h2>',
            performance_section(performance) + "</section>",
            "</body></html>",
        ]
    )


def summary(drift: dict[str, Any], performance: dict[str, Any], url: str | None) -> str:
    """The verdict in Markdown, for a CI job's summary or log, with a link to the page."""
    headline, _, lines = verdict(drift, performance)
    link = f"[the monitoring report]({url})" if url else "reports/monitoring.html"
    return "\n".join(
        [f"## Monitoring: {headline}", "", *[f"- {line}" for line in lines], "", f"Charts: {link}"]
    )


def write_report(path: Path, page: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
