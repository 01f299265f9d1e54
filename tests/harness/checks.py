"""Checks of a rendered project's files that several tests make."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml


class _AnyTagLoader(yaml.SafeLoader):
    """YAML loader that accepts custom tags such as GitLab's !reference."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def project_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]


def assert_data_files_parse(root: Path) -> None:
    """Every YAML (dvc.lock included), TOML and JSON file of the project parses."""
    for path in project_files(root):
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yml", ".yaml") or path.name == "dvc.lock":
            list(yaml.load_all(text, Loader=_AnyTagLoader))
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".json":
            json.loads(text)


def assert_answers_recorded(root: Path, answers: dict[str, Any]) -> dict[str, Any]:
    """The answers file records each answer exactly; returns everything it records."""
    recorded = yaml.safe_load((root / ".copier-answers.yml").read_text(encoding="utf-8"))
    for name, value in answers.items():
        assert recorded[name] == value, f"answers file: {name}={recorded[name]!r}, not {value!r}"
    return recorded


# Paths of the repository's own files that generated files mention (outputs of the pipeline,
# under data/, models/ and reports/, are made by running it, so they are not checked).
_MENTIONED = re.compile(r"(?<![\w./-])((?:docs|scripts|deploy|tests|src)/[\w./{}-]*\w)")


def assert_mentioned_files_exist(root: Path) -> None:
    """No generated file points to a file or folder that the render lacks."""
    missing = set()
    for path in project_files(root):
        for match in _MENTIONED.finditer(path.read_text(encoding="utf-8")):
            mentioned = match.group(1)
            if "{" not in mentioned and not (root / mentioned).exists():
                missing.add(f"{path.relative_to(root)} -> {mentioned}")
    assert not missing, f"generated files mention files the render lacks: {sorted(missing)}"
