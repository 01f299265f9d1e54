"""The generated package's architecture: the team's code imports the template's only through
mlops/api.py, no import cycle, and imports only go down the layers.

Every distinct rendering of src/<package>/ (the answers that change which modules exist or what
they import) is checked with import-linter against the generated project's own contracts
(.importlinter), the same check its `poe lint` runs.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.matrix import answer_space, rejected
from tests.harness.render import render

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The questions that change the package's modules or their imports.
PACKAGE_QUESTIONS = ("ml_framework", "experiment_tracking", "serving", "deploy_target")


def package_renderings() -> list[dict[str, str]]:
    renderings = []
    for values in itertools.product(*(answer_space(name) for name in PACKAGE_QUESTIONS)):
        answers = {"use_docker": True, **dict(zip(PACKAGE_QUESTIONS, values, strict=True))}
        if not rejected(answers):
            renderings.append(answers)
    return renderings


RENDERINGS = package_renderings()
# Renderings whose package and contracts are byte-identical are checked once per worker.
_KEPT: set[str] = set()


def _digest(project: Path) -> str:
    digest = hashlib.sha256((project / ".importlinter").read_bytes())
    for path in sorted((project / "src").rglob("*.py")):
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize(
    "answers", RENDERINGS, ids=["-".join(r[q] for q in PACKAGE_QUESTIONS) for r in RENDERINGS]
)
def test_package_imports_keep_the_contracts(answers, template_src, tmp_path):
    project = render(template_src, tmp_path / "project", answers)
    digest = _digest(project)
    if digest in _KEPT:
        return
    # lint-imports reads the sources from the package found on PYTHONPATH; it imports nothing.
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout, result.stdout
    _KEPT.add(digest)
