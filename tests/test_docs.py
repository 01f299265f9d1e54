"""The documentation site builds strictly, and its question table is generated from copier.yml."""

from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys

from tests.harness.matrix import QUESTIONS
from tests.harness.render import REPO_ROOT

HOOK = REPO_ROOT / "docs" / "mkdocs_hooks" / "questions_table.py"


def load_hook():
    spec = importlib.util.spec_from_file_location("questions_table", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_site_builds_strictly_with_every_question(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO_ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    page = html.unescape((site / "questions" / "index.html").read_text(encoding="utf-8"))
    assert "<!-- questions-table -->" not in page, "the hook did not replace the marker"
    missing = [name for name in QUESTIONS if f"<code>{name}</code>" not in page]
    assert not missing, f"questions missing from the built questions page: {missing}"
    assert not (site / "mkdocs_hooks").exists(), "the hook is build code, not a page"


def test_table_row_shows_choices_and_default():
    table = load_hook().questions_table()
    rows = {line.split("|")[1].strip(" `"): line for line in table.splitlines()[2:]}
    assert list(rows) == list(QUESTIONS), "one row per question, in copier.yml order"

    row = rows["python_version"]
    assert "<code>3.10</code>" in row and "<code>3.13</code>" in row
    cells = row.split(" | ")
    assert cells[1] == "str"
    assert cells[3] == "<code>3.12</code>", f"default cell: {cells[3]}"

    for name, spec in QUESTIONS.items():
        separators = re.findall(r"(?<!\\)\|", rows[name])
        assert len(separators) == 7, f"{name}: a pipe in a cell was not escaped: {rows[name]}"
        row = html.unescape(rows[name])
        if spec.get("multiselect"):
            assert f"multiselect {spec['type']}" in row
        choices = spec.get("choices") or []
        for value in choices.values() if isinstance(choices, dict) else choices:
            shown = str(value).lower() if isinstance(value, bool) else value  # as YAML writes it
            assert f"<code>{shown}</code>" in row, f"{name}: choice {value!r} missing"
        default = spec.get("default")
        if isinstance(default, str) and "{{" in default:
            assert "derived: <code>" in row, f"{name}: Jinja default not shown as derived"
        if isinstance(spec.get("when"), str):
            assert spec["when"].strip() in row, f"{name}: condition missing"
