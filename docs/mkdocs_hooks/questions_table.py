"""MkDocs hook: generate the question table of docs/questions.md from copier.yml.

The page holds the marker `<!-- questions-table -->`; at build time it is replaced by one
Markdown table row per question (every top-level key of copier.yml not starting with "_"), so
the reference can never drift from the questions the template actually asks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

MARKER = "<!-- questions-table -->"
COPIER_YML = Path(__file__).resolve().parents[2] / "copier.yml"
HEADER = ("name", "type", "choices (values)", "default", "asked when", "help")


def load_questions(copier_yml: Path = COPIER_YML) -> dict[str, dict[str, Any]]:
    """The questions of copier.yml, in file order, settings (keys starting with "_") left out."""
    data = yaml.safe_load(Path(copier_yml).read_text(encoding="utf-8")) or {}
    questions = {}
    for name, spec in data.items():
        if str(name).startswith("_"):
            continue
        # Copier's short form `name: default` is a question with only a default.
        questions[str(name)] = spec if isinstance(spec, dict) else {"default": spec}
    return questions


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _cell(text: str) -> str:
    """Markdown table cell: one line, pipes escaped."""
    return _one_line(text).replace("|", "\\|")


# Characters that Markdown (or a table) could interpret inside inline HTML: written as
# character references, so code such as Jinja defaults is shown exactly as in copier.yml.
_MARKUP = re.compile(r"[&<>|*_`\[\]\\~^{}=]")


def _code(value: Any) -> str:
    """Inline code that survives a table cell: a <code> element, markup as character references."""
    text = _MARKUP.sub(lambda m: f"&#{ord(m.group())};", _one_line(_scalar(value)))
    return f"<code>{text}</code>"


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _is_jinja(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def type_name(spec: dict[str, Any]) -> str:
    declared = spec.get("type")
    if not declared:
        default = spec.get("default")
        declared = {bool: "bool", int: "int", float: "float", str: "str"}.get(type(default), "yaml")
    return f"multiselect {declared}" if spec.get("multiselect") else str(declared)


def choices_cell(spec: dict[str, Any]) -> str:
    choices = spec.get("choices")
    if not choices:
        # A yes/no question: show the two values an answers file or --data takes.
        return f"{_code(True)}, {_code(False)}" if type_name(spec) == "bool" else "–"
    if isinstance(choices, dict):
        # {label: value}: the value is what answers files and --data use.
        items = []
        for label, value in choices.items():
            value = value.get("value") if isinstance(value, dict) else value
            items.append(f"{_code(value)} ({_cell(label)})")
        return ", ".join(items)
    return ", ".join(_code(value) for value in choices)


def default_cell(spec: dict[str, Any]) -> str:
    if "default" not in spec:
        return "–"
    default = spec["default"]
    if _is_jinja(default):
        return f"derived: {_code(default)}"
    if isinstance(default, list):
        return ", ".join(_code(value) for value in default) or _code("[]")
    return _code(default)


def when_cell(spec: dict[str, Any]) -> str:
    if "when" not in spec:
        return "always"
    when = spec["when"]
    if when is False or (isinstance(when, str) and when.strip().lower() == "false"):
        return "never (computed)"
    if when is True:
        return "always"
    return _code(when)


def questions_table(copier_yml: Path = COPIER_YML) -> str:
    """The Markdown table of every question: name | type | choices | default | asked when | help."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    for name, spec in load_questions(copier_yml).items():
        cells = [
            f"`{name}`",
            _cell(type_name(spec)),
            choices_cell(spec),
            default_cell(spec),
            when_cell(spec),
            _cell(spec.get("help", "")) or "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, questions_table())
