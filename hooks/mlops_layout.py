"""Migration to the ownership layout: the template's modules live in src/<package>/mlops/.

Repositories generated before it had the template's modules (schema.py, tracking.py, cli.py,
...) beside the team's at the top of the package. `copier update` moves the template's own files
(it removes the old ones and writes mlops/), but the team's files are never touched by an
update, so their imports of the old modules are rewritten here: names that mlops/api.py offers
come from it, anything else from the module's new place in mlops/ (which runs, and which
`poe lint` then points out). Idempotent: a file with no import of an old module is left as it
is, byte for byte, and so is an import of a module the team has at the top of its package.
"""

from __future__ import annotations

import ast
from pathlib import Path

# The template's modules that moved into mlops/.
MOVED = frozenset(
    {
        "adopt", "cli", "config", "distributed", "monitor", "plots", "quality", "reference",
        "release", "remote", "schema", "serve", "thresholds", "tracking", "tracking_dvclive",
        "tracking_mlflow", "traffic",
    }
)  # fmt: skip
# What mlops/api.py exports (tests/test_hooks.py checks this against the template's api.py).
PUBLIC = frozenset(
    {
        "CONTRACT", "FEATURES", "LABELS", "TARGET", "Contract", "DataValidationError", "Feature",
        "date_parts", "is_main_process", "labelled", "log_metrics", "threshold_failures",
        "validate", "write_reference", "write_text_atomically", "written_atomically",
    }
)  # fmt: skip


def _new_module(node: ast.ImportFrom, package: str, moved: frozenset[str]) -> str | None:
    """The module text an import of a moved module must name instead, or None."""
    names = {alias.name for alias in node.names}
    if node.level == 1 and node.module is None:  # from . import schema
        return ".mlops" if names <= moved else None
    if node.level == 1:
        prefix, module = ".", node.module
    elif node.level == 0 and (node.module or "").startswith(f"{package}."):
        prefix, module = f"{package}.", node.module.removeprefix(f"{package}.")
    else:
        return None
    if module not in moved:
        return None
    return f"{prefix}mlops.api" if names <= PUBLIC else f"{prefix}mlops.{module}"


def rewrite_imports(source: str, package: str, moved: frozenset[str] = MOVED) -> str:
    """source with each import of a moved module pointed at its new place."""
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom):
            continue
        new = _new_module(node, package, moved)
        if new is None:
            continue
        old = "." * node.level + (node.module or "")
        line = lines[node.lineno - 1]
        start = line.index("from", node.col_offset)
        head = f"from {old} import" if node.module else "from . import"
        if not line.startswith(head, start):  # unusual spacing: leave it for `poe lint`
            continue
        lines[node.lineno - 1] = line[:start] + f"from {new} import" + line[start + len(head) :]
    return "".join(lines)


def team_python_files(repo: Path, package: str) -> list[Path]:
    """The team's Python files: the package outside mlops/, and the tests."""
    source = repo / "src" / package
    files = [p for p in source.rglob("*.py") if "mlops" not in p.relative_to(source).parts]
    return sorted([*files, *(repo / "tests").rglob("*.py")])


def migrate(repo: Path, package: str) -> list[Path]:
    """Rewrite the team's imports of the template's moved modules; the files changed."""
    if not (repo / "src" / package / "mlops" / "api.py").is_file():
        return []  # not on the mlops/ layout (yet)
    # A module the team has at the top of its package under an old name is theirs: keep it.
    moved = frozenset(m for m in MOVED if not (repo / "src" / package / f"{m}.py").exists())
    changed = []
    for path in team_python_files(repo, package):
        text = path.read_text(encoding="utf-8")
        try:
            new = rewrite_imports(text, package, moved)
        except SyntaxError:
            continue  # not Python we can read: `poe lint` will say so
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed
