"""`copier update` from an earlier release: team edits survive, template changes arrive.

In a temporary git copy of this template the tests release v1, generate a repository from it
(copy-time tasks included), make team edits, then release a v2 with real template changes (a
CI job changed, a team-owned file renamed with its migration script, template_v2/migrations.py,
a new question with a default) and run `copier update --defaults --trust` as a user would.

The crossing tests update a repository generated from the template's last release before the
mlops/ layout (PREVIOUS_RELEASE, read from this repository's git history) to the working tree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleet.inspect_repo import TemplateCache, inspect
from fleet.repos import RepoEntry
from tests.harness.git import commit, git
from tests.harness.render import (
    REPO_ROOT,
    clone,
    copy_template,
    generate_project,
    init_release,
    release,
    rename_with_migration,
)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("update")]

GITHUB_DIR = "{% if 'github' in ci_providers %}.github{% endif %}"
CI_WORKFLOW = Path(GITHUB_DIR) / "workflows" / "ci.yml.jinja"


def copier_update(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "copier", "update", "--defaults", "--trust", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "DVC_LOCAL_REMOTE_ROOT": str(project.parent / "dvc-remotes")},
    )


def release_v1(repo: Path) -> None:
    init_release(copy_template(repo), "v1.0.0")


def release_v2(repo: Path) -> None:
    """Real template changes, as a maintainer would make them."""
    # A CI job changed.
    workflow = repo / "template" / CI_WORKFLOW
    text = workflow.read_text()
    assert "    timeout-minutes: 30\n" in text
    workflow.write_text(text.replace("    timeout-minutes: 30\n", "    timeout-minutes: 20\n", 1))
    # A team-owned file renamed; its migration carries each team's version across.
    rename_with_migration(
        repo, "tests/test_model_quality.py", "tests/test_model_performance.py", "v2.0.0"
    )
    copier_yml = repo / "copier.yml"
    text = copier_yml.read_text()
    # A new question with a default, used by a new template-owned file.
    text += (
        '\nalerts_channel:\n  type: str\n  help: Where drift alerts go.\n  default: "#ml-alerts"\n'
    )
    copier_yml.write_text(text)
    (repo / "template" / "ALERTS.md.jinja").write_text("Drift alerts go to {{ alerts_channel }}.\n")
    release(repo, "v2.0.0")


def team_edits(project: Path) -> dict[str, bytes]:
    """Edit team-owned and template-owned files, delete two on purpose, and commit."""
    model = project / "src" / "my_model" / "model.py"
    model.write_text(model.read_text() + "\n\n# Team note: tuned on the 2026 data.\n")
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("n_estimators: 100", "n_estimators: 150"))
    quality = project / "tests" / "test_model_quality.py"
    quality.write_text(quality.read_text() + "\n\ndef test_team_specific():\n    assert True\n")
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + 'LABEL org.example.team="ml"\n')
    workflow = project / ".github" / "workflows" / "ci.yml"
    workflow.write_text(
        workflow.read_text().replace("    timeout-minutes: 30\n", "    timeout-minutes: 45\n", 1)
    )
    (project / ".github" / "workflows" / "monitoring.yml").unlink()
    (project / "LICENSE").unlink()
    commit(project, "Team edits")
    return {
        "model": model.read_bytes(),
        "params": params.read_bytes(),
        "quality": quality.read_bytes(),
    }


@pytest.fixture(scope="module")
def updated(tmp_path_factory, offline_uv_env):
    root = tmp_path_factory.mktemp("update")
    repo = root / "template-repo"
    repo.mkdir()
    release_v1(repo)
    project = generate_project(
        repo, root / "my-model", {"ci_providers": ["github", "jenkins"]}, offline_uv_env
    )
    before = team_edits(project)
    release_v2(repo)
    result = copier_update(project)
    assert result.returncode == 0, result.stdout + result.stderr
    return project, before, result.stdout + result.stderr


def test_team_edits_survive_byte_for_byte(updated):
    project, before, _ = updated
    assert (project / "src" / "my_model" / "model.py").read_bytes() == before["model"]
    assert (project / "params.yaml").read_bytes() == before["params"]
    assert 'LABEL org.example.team="ml"' in (project / "Dockerfile").read_text()


def test_files_deleted_on_purpose_stay_deleted(updated):
    project, _, _ = updated
    assert not (project / ".github" / "workflows" / "monitoring.yml").exists()
    assert not (project / "LICENSE").exists()


def test_template_changes_arrive(updated):
    project, _, _ = updated
    assert (project / "ALERTS.md").read_text() == "Drift alerts go to #ml-alerts.\n"
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v2.0.0"
    assert answers["alerts_channel"] == "#ml-alerts"


def test_migration_moved_the_team_file_once(updated):
    project, before, output = updated
    assert not (project / "tests" / "test_model_quality.py").exists()
    assert (project / "tests" / "test_model_performance.py").read_bytes() == before["quality"]
    assert output.count("migration: moved tests/test_model_quality.py") == 1


def test_genuine_conflict_keeps_both_sides(updated):
    project, _, _ = updated
    workflow = (project / ".github" / "workflows" / "ci.yml").read_text()
    assert "<<<<<<<" in workflow and "=======" in workflow and ">>>>>>>" in workflow
    assert "timeout-minutes: 45" in workflow and "timeout-minutes: 20" in workflow


def resolve_conflicts_keeping_ours(path: Path) -> None:
    lines, keep = [], True
    for line in path.read_text().splitlines(keepends=True):
        if line.startswith("<<<<<<<"):
            keep = True
        elif line.startswith("======="):
            keep = False
        elif line.startswith(">>>>>>>"):
            keep = True
        elif keep:
            lines.append(line)
    path.write_text("".join(lines))


def test_updated_repository_is_green_and_migration_does_not_rerun(updated):
    project, _, _ = updated
    resolve_conflicts_keeping_ours(project / ".github" / "workflows" / "ci.yml")
    commit(project, "Update to template v2")
    ci = subprocess.run(["uv", "run", "poe", "ci"], cwd=project, capture_output=True, text=True)
    assert ci.returncode == 0, ci.stdout[-3000:] + ci.stderr[-3000:]
    commit(project, "Pipeline run after the update")  # the team's new params re-ran it
    again = copier_update(project)
    assert again.returncode == 0, again.stderr
    assert "migration:" not in again.stdout + again.stderr


def test_changing_answers_adds_and_removes_provider_files(updated, tmp_path):
    project, _, _ = updated
    work = clone(project, tmp_path / "answers")
    assert (work / "Jenkinsfile").is_file() and not (work / ".gitlab-ci.yml").exists()
    result = copier_update(work, "--data", "ci_providers=['github', 'gitlab']")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (work / ".gitlab-ci.yml").is_file()
    assert not (work / "Jenkinsfile").exists()


def test_bad_new_answer_is_refused_and_changes_nothing(updated, tmp_path):
    project, _, _ = updated
    work = clone(project, tmp_path / "bad")
    head = git(work, "rev-parse", "HEAD")
    result = copier_update(work, "--data", "author_email=not-an-email")
    assert result.returncode != 0
    assert "author_email 'not-an-email' is not a valid email address" in result.stderr
    assert git(work, "status", "--porcelain") == ""
    assert git(work, "rev-parse", "HEAD") == head


def test_scheduled_job_reports_a_new_release_without_a_token(updated, tmp_path):
    project, _, _ = updated
    work = clone(project, tmp_path / "behind")
    before_update = git(work, "log", "--format=%H", "--grep=Team edits").split()[0]
    git(work, "checkout", "--quiet", before_update)
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITLAB_TOKEN")}
    result = subprocess.run(
        [sys.executable, "scripts/template_update.py"],
        cwd=work,
        capture_output=True,
        text=True,
        env={**env, "GITHUB_ACTIONS": "true"},
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"version v?2\.0\.0 is available", result.stdout), result.stdout
    assert "set GH_TOKEN to let CI do it" in result.stdout
    assert git(work, "status", "--porcelain") == ""


# The template's last release with its modules beside the team's at the top of the package,
# and the parts it had (extensions.py came later).
PREVIOUS_RELEASE = "d01b433becc2478ee80c415bef6508d7dddb3997"
PREVIOUS_RELEASE_PARTS = ("copier.yml", "template", "hooks")
TEAM_DATA_NOTE = "\n\ndef team_rows(df):\n    return df[FEATURES].head()  # the team's helper\n"


@pytest.fixture(scope="module")
def crossed(tmp_path_factory, offline_uv_env):
    """A repository generated from PREVIOUS_RELEASE, with team edits in its own modules and a
    test of its own, updated to this working tree's release as a user would."""
    root = tmp_path_factory.mktemp("cross")
    repo = root / "template-repo"
    repo.mkdir()
    archive = subprocess.run(
        ["git", "archive", PREVIOUS_RELEASE, *PREVIOUS_RELEASE_PARTS],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    assert archive.returncode == 0, (
        f"the previous release {PREVIOUS_RELEASE} must be in this checkout's history: "
        + archive.stderr.decode()
    )
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive.stdout, check=True)
    init_release(repo, "v1.0.0")
    project = generate_project(repo, root / "my-model", {}, offline_uv_env)
    package = project / "src" / "my_model"
    data = package / "data.py"
    data.write_text(data.read_text() + TEAM_DATA_NOTE)
    own_test = project / "tests" / "test_team.py"
    own_test.write_text(
        "from my_model.schema import FEATURES, load_contract\n\n\n"
        "def test_contract_has_features():\n"
        "    assert load_contract().names == FEATURES\n"
    )
    commit(project, "Team edits")
    for part in PREVIOUS_RELEASE_PARTS:  # release v2.0.0: this working tree
        if (repo / part).is_dir():
            shutil.rmtree(repo / part)
        else:
            (repo / part).unlink()
    copy_template(repo)
    release(repo, "v2.0.0")
    result = copier_update(project)
    assert result.returncode == 0, result.stdout + result.stderr
    return project, repo, result.stdout + result.stderr


def test_crossing_to_the_mlops_layout_moves_the_template_code_and_keeps_the_team_code(crossed):
    project, _, output = crossed
    package = project / "src" / "my_model"
    assert (package / "mlops" / "api.py").is_file()
    assert not (package / "schema.py").exists() and not (package / "cli.py").exists()
    data = (package / "data.py").read_text()
    assert data.endswith(TEAM_DATA_NOTE)
    assert "from .mlops.api import" in data and "from .schema import" not in data
    own_test = (project / "tests" / "test_team.py").read_text()
    # load_contract is not in api.py: the test imports the module's new place.
    assert own_test.startswith("from my_model.mlops.schema import FEATURES, load_contract\n")
    assert "src/my_model/data.py: imports of the template's code now name" in output
    # The sample's `data` stage is gone from dvc.yaml: the data it wrote is DVC-tracked as is.
    assert "data" not in yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    assert (project / "data" / "raw" / "dataset.csv.dvc").is_file()
    assert "[post-update] track the data with DVC: uv run dvc add data/raw/dataset.csv" in output


def test_crossed_repository_is_green_and_shows_no_drift(crossed, tmp_path):
    project, repo, _ = crossed
    commit(project, "Update to the mlops/ layout")
    ci = subprocess.run(["uv", "run", "poe", "ci"], cwd=project, capture_output=True, text=True)
    assert ci.returncode == 0, ci.stdout[-3000:] + ci.stderr[-3000:]
    junit = (project / "reports" / "junit.xml").read_text()
    assert 'name="test_contract_has_features"' in junit  # the team's own test ran
    commit(project, "Pipeline run after the update")
    report = inspect(RepoEntry(str(project), str(project)), TemplateCache(tmp_path), {})
    assert report.problems == [] and report.drift == [], report.as_dict()
    assert report.release == "v2.0.0" and report.behind == 0
