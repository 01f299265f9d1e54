"""checkov over every distinct rendering of the Dockerfile and the deployment files.

They depend on serving (the Dockerfile's command) and deploy_target (which needs FastAPI); a
name or a Python version changes no check's verdict. The workflows' renderings are audited
where they are made (test_ci_static_github.py, test_ci_gitlab.py).
"""

from __future__ import annotations

import pytest

from tests.harness.checkov import assert_checkov_finds_nothing
from tests.harness.render import render

RENDERINGS = {
    "kubernetes": {"deploy_target": "kubernetes"},
    "ssh": {"deploy_target": "ssh"},
    "no-api": {"serving": "none"},
}

pytestmark = pytest.mark.xdist_group("audits")


def test_checkov_finds_nothing_in_images_and_manifests(template_src, tmp_path):
    for name, answers in RENDERINGS.items():
        exclude = ["*", "!Dockerfile", "!deploy", "!deploy/**"]
        render(template_src, tmp_path / name, answers, exclude=exclude)
    assert (tmp_path / "kubernetes" / "deploy" / "kubernetes").is_dir()
    assert_checkov_finds_nothing(tmp_path, {"dockerfile", "kubernetes", "kustomize"})
