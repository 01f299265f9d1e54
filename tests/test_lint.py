"""The template's own Python (tests, hooks, docs hooks, benchmarks) is lint- and format-clean."""

import subprocess
import sys

from tests.harness.render import REPO_ROOT


def test_ruff_check_and_format():
    for args in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "."],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
