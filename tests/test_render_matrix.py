"""Every variant of the matrix renders, and what it renders is well-formed.

For each variant: no unrendered Jinja is left, every YAML/TOML/JSON file parses, no file
mentions a repository file the render lacks, ruff passes on
the generated Python (lint and format, with the project's own configuration), the answers file
round-trips, and exactly the files the answers call for are present.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.harness.checks import (
    assert_answers_recorded,
    assert_data_files_parse,
    assert_mentioned_files_exist,
    project_files,
)
from tests.harness.commands import check_jsonschema
from tests.harness.matrix import STRUCTURAL, answer_pairs, effective_answer, variants
from tests.harness.render import render

UNRENDERED = re.compile(r"(?<!\$)\{\{|\{%|\{#")


def expected_files(answers: dict) -> dict[str, bool]:
    """Files whose presence depends on the answers: path -> whether it must exist."""
    pkg = answers.get("package_name", "my_model")
    providers = answers["ci_providers"]
    deploy = effective_answer(answers, "deploy_target")
    return {
        "Dockerfile": answers["use_docker"],
        ".dockerignore": answers["use_docker"],
        f"src/{pkg}/mlops/serve.py": answers["serving"] == "fastapi",
        f"src/{pkg}/mlops/batching.py": answers["serving"] == "fastapi",
        f"src/{pkg}/mlops/server.py": answers["serving"] == "fastapi",
        "tests/test_api.py": answers["serving"] == "fastapi",
        "tests/test_batching.py": answers["serving"] == "fastapi",
        f"src/{pkg}/mlops/tracking.py": True,  # no-op with none: the stages always call it
        f"src/{pkg}/mlops/tracking_dvclive.py": answers["experiment_tracking"] == "dvclive",
        f"src/{pkg}/mlops/tracking_mlflow.py": answers["experiment_tracking"] == "mlflow",
        f"src/{pkg}/mlops/distributed.py": answers["ml_framework"] == "pytorch",
        "LICENSE": answers["license"] != "Proprietary",
        "renovate.json": answers["renovate"],
        ".github/workflows/ci.yml": "github" in providers,
        ".gitlab-ci.yml": "gitlab" in providers,
        "Jenkinsfile": "jenkins" in providers,
        ".github/workflows/template-update.yml": "github" in providers,
        ".github/workflows/batch-scoring.yml": "github" in providers and answers["batch_inference"],
        ".github/workflows/deploy.yml": "github" in providers and deploy != "none",
        "scripts/deploy.py": deploy != "none",
        "scripts/deploy_common.py": deploy != "none",
        "scripts/deploy_backend.py": deploy != "none",
        "deploy/smoke-request.json": deploy != "none",
        "deploy/smoke-expected.json": deploy != "none",
        "deploy/compose.yaml": deploy == "ssh",
        "deploy/kubernetes/base/kustomization.yaml": deploy == "kubernetes",
        "deploy/kubernetes/base/hpa.yaml": deploy == "kubernetes",
        "deploy/kubernetes/overlays/production/kustomization.yaml": deploy == "kubernetes",
    }


def test_variant_renders_cleanly(variant, template_src, tmp_path):
    answers = variant.data
    dst = render(template_src, tmp_path / "project", answers)
    files = project_files(dst)

    leftovers = [
        f"{p.relative_to(dst)}: {m.group()}"
        for p in files
        for m in [UNRENDERED.search(p.read_text())]
        if m
    ]
    assert not leftovers, f"unrendered Jinja: {leftovers}"
    assert not [p for p in files if p.suffix == ".jinja"], "template suffix left in a file name"

    assert_data_files_parse(dst)
    assert_mentioned_files_exist(dst)

    for relative, wanted in expected_files(answers).items():
        assert (dst / relative).is_file() == wanted, f"{relative} present={not wanted}"
    if answers["experiment_tracking"] == "none":
        code = "\n".join(p.read_text() for p in (dst / "src").rglob("*.py"))
        assert "dvclive" not in code and "mlflow" not in code
    if answers["serving"] == "none":
        assert "fastapi" not in (dst / "pyproject.toml").read_text()

    assert_answers_recorded(dst, answers)

    assert_ruff_clean(dst)


# Many variants generate identical Python; lint each distinct set of files once per worker.
_RUFF_CLEAN: set[str] = set()


def assert_ruff_clean(project: Path) -> None:
    sources = sorted(project.rglob("*.py"))
    ruff_config = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["ruff"]
    digest = hashlib.sha256(json.dumps(ruff_config, sort_keys=True).encode())
    for path in sources:
        digest.update(str(path.relative_to(project)).encode() + b"\0" + path.read_bytes())
    if digest.hexdigest() in _RUFF_CLEAN:
        return
    ruff = [sys.executable, "-m", "ruff"]
    for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        result = subprocess.run([*ruff, *args], cwd=project, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    _RUFF_CLEAN.add(digest.hexdigest())


def test_renovate_config_matches_renovates_schema(template_src, tmp_path):
    dst = render(template_src, tmp_path / "project", {"renovate": True})
    result = check_jsonschema("vendor.renovate", [dst / "renovate.json"])
    assert result.returncode == 0, result.stdout + result.stderr
    rules = json.loads((dst / "renovate.json").read_text())["packageRules"]
    managers = {manager for rule in rules for manager in rule.get("matchManagers", [])}
    assert "copier" in managers


def _structural_pairs(chosen: list) -> set:
    return set().union(
        *(answer_pairs({k: v for k, v in variant.answers if k in STRUCTURAL}) for variant in chosen)
    )


def test_default_matrix_covers_every_two_answers_of_the_full_product():
    """The default render set is a pairwise covering set: any two answers that render together
    in the full product (`--full-matrix`) render together in at least one default variant."""
    default, full = variants(), variants(full=True)
    assert len(default) < len(full)
    assert _structural_pairs(full) <= _structural_pairs(default)
