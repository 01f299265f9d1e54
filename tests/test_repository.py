"""The template repository itself: its changelog and release tooling, its own CI workflows,
and the organisation-wide defaults example that platform teams copy."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml

from tests.harness.commands import check_jsonschema
from tests.harness.matrix import QUESTIONS
from tests.harness.render import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))
import changelog_entry  # noqa: E402

CHANGELOG = (REPO_ROOT / "CHANGELOG.md").read_text()


def test_changelog_versions_are_semver_with_dates():
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", CHANGELOG, re.MULTILINE)
    assert headings[0][0] == "Unreleased"
    for version, rest in headings[1:]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), f"{version}: date missing"


def test_current_version_has_a_changelog_entry():
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert changelog_entry.entry(f"v{version}", CHANGELOG)


def test_changelog_entry_is_the_section_of_that_version():
    text = "# C\n\n## [2.0.0] - 2026-01-02\n- two\n\n## [1.0.0] - 2026-01-01\n- one\n"
    assert changelog_entry.entry("v2.0.0", text) == "- two"
    assert changelog_entry.entry("1.0.0", text) == "- one"
    assert changelog_entry.entry("v3.0.0", text) is None


def test_release_without_changelog_entry_is_refused():
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "changelog_entry.py"), "v99.0.0"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "no entry for v99.0.0" in result.stderr


def test_own_workflows_match_the_github_schema():
    workflows = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
    assert {w.name for w in workflows} >= {"test.yml", "release.yml"}
    result = check_jsonschema("vendor.github-workflows", workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_own_ci_spreads_the_suite_over_shards():
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "test.yml").read_text())
    job = workflow["jobs"]["test"]
    shards = job["strategy"]["matrix"]["shard"]
    commands = " ".join(step.get("run", "") for step in job["steps"])
    # The sharded CI runs the wide matrix that .ci/run leaves out.
    assert (
        f"./scripts/test --all-pairs --full-matrix --shard ${{{{ matrix.shard }}}}/{len(shards)}"
        in commands
    )


def test_org_defaults_example_renders(template_src, tmp_path):
    data_file = REPO_ROOT / "docs" / "examples" / "org-defaults.yml"
    org = yaml.safe_load(data_file.read_text())
    assert set(org) <= set(QUESTIONS), "the example may only name real questions"
    dst = tmp_path / "team-repo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "copier",
            "copy",
            "--defaults",
            "--skip-tasks",
            "--trust",
            "--data-file",
            str(data_file),
            "--data",
            "project_name=Fraud Model",
            str(template_src),
            str(dst),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    answers = yaml.safe_load((dst / ".copier-answers.yml").read_text())
    assert {k: answers[k] for k in org} == org
    assert answers["package_name"] == "fraud_model"
    assert (dst / ".gitlab-ci.yml").is_file() and (dst / "Jenkinsfile").is_file()
    assert not (dst / ".github").exists()
