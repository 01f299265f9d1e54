"""Day-2 journeys, as a user walks them: the README's and the docs' own commands, copied from the
files at test time and run with bash from the directory a user would be in, each journey ending
with the generated repository's `uv run poe ci` green.

Environment: the user's own git identity (GIT_AUTHOR_* / GIT_COMMITTER_*) and data directory
(XDG_DATA_HOME, where the embedded local DVC remote lives), both standard variables a user's
shell may carry; nothing else is added to what the test session has.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from copier._main import _operation

from tests.harness.ci_variants import ALL_PROVIDERS, GITHUB_ONLY
from tests.harness.docs import answer_change_command, command_line, fenced_block
from tests.harness.render import (
    REPO_ROOT,
    clone,
    copy_template,
    generate_project,
    generated_from_release,
    render,
)

pytestmark = pytest.mark.slow

IDENTITY = {
    "GIT_AUTHOR_NAME": "Dana Developer",
    "GIT_AUTHOR_EMAIL": "dana@example.com",
    "GIT_COMMITTER_NAME": "Dana Developer",
    "GIT_COMMITTER_EMAIL": "dana@example.com",
}
RELEASE_NOTE = "# Template v1.1.0: pre-commit hooks reviewed.\n"


def user_shell(
    script: str, cwd: Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess:
    """Run a user's commands with bash; check=False returns a failure instead of asserting."""
    print(f"$ (cd {cwd}) {script.strip()}")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0 or not check, (
        f"exit {result.returncode}\n--- stdout ---\n{result.stdout[-5000:]}\n"
        f"--- stderr ---\n{result.stderr[-5000:]}"
    )
    return result


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=_env_for_git()
    ).stdout


def _env_for_git() -> dict[str, str]:
    return {**os.environ, **IDENTITY}


GETTING_STARTED = REPO_ROOT / "docs" / "getting-started.md"


@pytest.fixture
def user_env(tmp_path) -> dict[str, str]:
    """A user's shell on this machine: not the test session's virtual environment, no variable
    of the test harness (PYENV_VERSION, UV_PYTHON_DOWNLOADS, DVC_LOCAL_REMOTE_ROOT), so pyenv's
    shims choose the interpreter as they do for a user; uv installed as docs/getting-started.md
    says (its commands, read from the page), with pyenv's step where pyenv is there. Nothing is
    put on PATH for the user."""
    dev_bin = str(Path(sys.executable).parent)
    path = [p for p in os.environ["PATH"].split(os.pathsep) if p != dev_bin]
    env = {**os.environ, **IDENTITY, "XDG_DATA_HOME": str(tmp_path / "xdg-data")}
    for name in ("PYENV_VERSION", "UV_PYTHON_DOWNLOADS", "DVC_LOCAL_REMOTE_ROOT", "VIRTUAL_ENV"):
        env.pop(name, None)
    env["PATH"] = os.pathsep.join(path)
    user_shell(fenced_block(GETTING_STARTED, "## Requirements"), tmp_path, env)
    if shutil.which("pyenv", path=env["PATH"]):
        user_shell(fenced_block(GETTING_STARTED, "With pyenv"), tmp_path, env)
    return env


def test_quick_start_then_update_to_a_new_release(tmp_path, user_env):
    """Journey 1: the README's quick start, run from a clone of this template, gives a
    repository whose `copier update` (the docs' command) pulls in the next release."""
    (tmp_path / "mlops-template").mkdir()
    clone = copy_template(tmp_path / "mlops-template")
    shutil.copy2(REPO_ROOT / "README.md", clone / "README.md")
    git(clone, "init", "--quiet", "--initial-branch=main")
    git(clone, "add", "--all")
    git(clone, "commit", "--quiet", "-m", "Release v1.0.0")
    git(clone, "tag", "v1.0.0")

    quick_start = fenced_block(clone / "README.md", "## Quick start")
    user_shell(quick_start, clone, user_env)
    project = tmp_path / "my-model"
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_src_path"] == str(clone), "the template must be recorded by absolute path"

    # The template's next release: a template-owned file changes.
    hooks = clone / "template" / ".pre-commit-config.yaml"
    hooks.write_text(RELEASE_NOTE + hooks.read_text())
    git(clone, "commit", "--quiet", "-am", "Release v1.1.0")
    git(clone, "tag", "v1.1.0")

    update = fenced_block(REPO_ROOT / "docs" / "updating.md", "## Updating one repository")
    user_shell(update, tmp_path, user_env)  # it starts with `cd my-model`
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v1.1.0"
    assert (project / ".pre-commit-config.yaml").read_text().startswith(RELEASE_NOTE)
    assert git(project, "status", "--porcelain") == ""
    assert git(project, "log", "-1", "--format=%s").startswith("Update to template")


def test_missing_python_stops_before_anything_with_one_line(template_src, tmp_path):
    """Journey 2's other half: when python_version is installed nowhere and cannot be
    downloaded, the copy-time task stops before `uv lock` with one line naming the fixes."""
    project = render(template_src, tmp_path / "project", {"python_version": "3.10"})
    tools = tmp_path / "bin"  # git and uv, and no Python 3.10 anywhere the task looks
    tools.mkdir()
    for tool in ("git", "uv"):
        (tools / tool).symlink_to(shutil.which(tool))
    home = tmp_path / "home"
    env = {
        "PATH": f"{tools}{os.pathsep}/usr/bin:/bin",
        "HOME": str(home),
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "UV_PYTHON_DOWNLOADS": "never",  # a machine that cannot download interpreters
    }
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hooks" / "post_copy.py")],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "post-copy: Python 3.10 (the python_version answer) is not installed here and could "
        "not be downloaded: install it (`uv python install 3.10`, pyenv or your package "
        "manager), or copy again with `--data python_version=X.Y` naming an installed "
        "version; nothing was set up yet."
    ]
    assert not (project / ".git").exists() and not (project / "uv.lock").exists()


TEAM_MODULES = ["data.py", "evaluate.py", "features.py", "model.py", "predict.py"]


def test_team_owned_files_are_one_list_for_update_and_recopy(template_src, tmp_path):
    """copier.yml names the team's files once (_skip_if_exists, for copy and recopy); the
    update-only _exclude entry reads the same list. Rendered as `copier update` renders, the
    team's files are left out and every file of the template's mlops/ is there."""
    settings = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())
    assert settings["team_owned"]["default"] == settings["_skip_if_exists"]
    token = _operation.set("update")
    try:
        update = render(template_src, tmp_path / "update", {})
    finally:
        _operation.reset(token)
    copy = render(template_src, tmp_path / "copy", {})

    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    team = {"params.yaml", "README.md", "LICENSE", "tests/test_model_quality.py"}
    team |= {"deploy/smoke-request.json", "deploy/smoke-expected.json"}
    team |= {"src/my_model/schema.yaml", "src/my_model/train.py"}
    team |= {f"src/my_model/{name}" for name in TEAM_MODULES}
    assert files(copy) - files(update) == team
    assert {"src/my_model/__init__.py", "src/my_model/__main__.py"} <= files(update)
    assert "src/my_model/mlops/api.py" in files(update)
    assert "docs/how-to.md" in files(update), "the how-to is the template's: updates rewrite it"


@pytest.fixture
def existing_repo(tmp_path) -> Path:
    """A team's repository before the copy: a commit, a DVC remote of its own, an untracked
    file and an uncommitted change."""
    repo = tmp_path / "my-model"
    (repo / ".dvc").mkdir(parents=True)
    (repo / ".dvc" / ".gitignore").write_text("/config.local\n/tmp\n/cache\n")
    team_remote = tmp_path / "team-remote"
    team_remote.mkdir()
    (repo / ".dvc" / "config").write_text(
        f"[core]\n    remote = team\n['remote \"team\"']\n    url = {team_remote}\n"
    )
    (repo / "team.txt").write_text("committed\n")
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "The team's first commit")
    (repo / "team.txt").write_text("committed\nand changed, not committed yet\n")
    (repo / "notes.txt").write_text("unrelated, never committed\n")
    return repo


def test_copy_into_an_existing_repository_then_recopy(
    template_src, existing_repo, offline_uv_env, user_env
):
    """Journey 5: a copy into an existing repository commits only what the template wrote and
    keeps the team's DVC remote; a later `copier recopy` (the docs' command) keeps every
    team-owned file and leaves the set-up alone."""
    project = existing_repo
    dvc_config = (project / ".dvc" / "config").read_text()
    generate_project(template_src, project, {}, offline_uv_env)

    assert git(project, "log", "--all", "--format=%H", "--", "notes.txt", "team.txt") == (
        git(project, "rev-list", "--max-parents=0", "HEAD")
    ), "files that were there before the copy must not be in the template's commits"
    status = git(project, "status", "--porcelain").splitlines()
    assert sorted(status) == [" M team.txt", "?? notes.txt"]
    assert git(project, "log", "--format=%s").splitlines()[-1] == "The team's first commit"
    config = (project / ".dvc" / "config").read_text()
    assert "remote = team" in config and dvc_config.split("\n", 2)[2] in config
    assert "storage" not in config

    # Team edits to team-owned files and to a template-owned one, committed.
    package = project / "src" / "my_model"
    edited = {
        project / "params.yaml": "n_estimators: 100",
        project / "README.md": "## Daily commands",
        package / "model.py": "def build_model",
    }
    for path, anchor in edited.items():
        text = path.read_text()
        assert anchor in text, f"{anchor!r} not in {path}"
        path.write_text(text.replace(anchor, f"# Team edit\n{anchor}", 1))
    hooks = project / ".pre-commit-config.yaml"
    template_hooks = hooks.read_text()
    hooks.write_text("# Team edit of a template-owned file\n" + template_hooks)
    git(project, "add", "--", *map(str, [*edited, hooks]))
    git(project, "commit", "--quiet", "--no-verify", "-m", "Team edits")
    head = git(project, "rev-parse", "HEAD")
    kept = {path: path.read_bytes() for path in edited}

    recopy = fenced_block(REPO_ROOT / "docs" / "updating.md", "## Recopying")
    command = next(line for line in recopy.splitlines() if "copier recopy" in line)
    result = user_shell(command.split("#")[0], project, user_env)
    assert "already set up" in result.stdout + result.stderr
    for path, content in kept.items():
        assert path.read_bytes() == content, f"recopy changed the team-owned {path}"
    assert hooks.read_text() == template_hooks, "recopy renders template-owned files anew"
    assert git(project, "rev-parse", "HEAD") == head, "recopy must not commit by itself"
    assert "?? notes.txt" in git(project, "status", "--porcelain").splitlines()


@pytest.fixture
def released_project(generated_projects, template_releases, tmp_path) -> Path:
    """A clone of the all-providers project (Docker, FastAPI, SSH deploy, DVCLive, local
    remote), recorded as made from release v1.0.0 of a template repository with a v2.0.0."""
    project = clone(generated_projects(ALL_PROVIDERS), tmp_path / "my-model")
    generated_from_release(project, template_releases, "v1.0.0")
    return project


@pytest.mark.xdist_group(ALL_PROVIDERS.id)
def test_renaming_is_refused_by_update_and_done_as_the_docs_say(released_project, user_env):
    """Journey 4: `poe update --data package_name=...` (or project_slug) stops before
    anything is written, naming the way to rename; the docs' renaming commands then move the
    whole package and the slug, and `poe ci` is green."""
    project, env = released_project, user_env
    updating = REPO_ROOT / "docs" / "updating.md"
    update = command_line(updating, "## Updating one repository", "poe update")
    head = git(project, "rev-parse", "HEAD")
    for answer, old, new in (
        ("package_name", "my_model", "churn_model"),
        ("project_slug", "my-model", "churn-model"),
    ):
        result = user_shell(f"{update} --data {answer}={new}", project, env, check=False)
        assert result.returncode != 0
        assert (
            f"{answer} cannot change from '{old}' to '{new}' through copier update or recopy "
            "(nothing was changed)" in result.stderr
        )
        assert 'docs/updating.md says under "Renaming"' in result.stderr
        assert git(project, "status", "--porcelain", "--untracked-files=all") == ""
        assert git(project, "rev-parse", "HEAD") == head

    package_rename = fenced_block(updating, "The package: move it")
    slug_rename = fenced_block(updating, "The slug (the distribution")
    # One `poe ci` for both renames: the slug's block runs it after the package's.
    user_shell(package_rename.replace("uv run poe ci\n", ""), project.parent, env)
    user_shell(slug_rename, project.parent, env)

    assert not (project / "src" / "my_model").exists()
    team_owned = ("schema.yaml", "data.py", "features.py", "model.py", "train.py", "predict.py")
    assert all((project / "src" / "churn_model" / name).is_file() for name in team_owned)
    leftover = subprocess.run(["git", "grep", "-lw", "my_model"], cwd=project, capture_output=True)
    assert leftover.returncode == 1, f"still naming the old package: {leftover.stdout}"
    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert (answers["package_name"], answers["project_slug"]) == ("churn_model", "churn-model")
    assert 'name = "churn-model"' in (project / "pyproject.toml").read_text()
    assert git(project, "status", "--porcelain") == ""


@pytest.mark.xdist_group(GITHUB_ONLY.id)
def test_a_teammate_clones_and_runs_the_readme_setup(generated_projects, tmp_path, user_env):
    """Journey 6: `git clone` of a generated repository, the README's set-up command (read from
    the README), then `uv run poe ci` green, with the data and models pulled, not recomputed.
    The project's Python (3.12) is not pyenv's global one and uv may not download: the set-up
    finds pyenv's installed 3.12 as the copy did; a commit goes through the git hooks."""
    origin = generated_projects(GITHUB_ONLY)  # Python 3.12, where pyenv's global one is 3.11
    user_shell(f"git clone --quiet {origin.as_uri()} teammate", tmp_path, user_env)
    teammate = tmp_path / "teammate"
    setup = fenced_block(teammate / "README.md", "## Set up a clone")
    result = user_shell(setup, teammate, user_env)
    assert "Running stage" not in result.stdout, "the clone's data and models are pulled"
    assert (teammate / ".git" / "hooks" / "pre-commit").is_file()
    assert (teammate / "models" / "model.joblib").read_bytes() == (
        origin / "models" / "model.joblib"
    ).read_bytes()
    venv = (teammate / ".venv" / "pyvenv.cfg").read_text()
    assert "version_info = 3.12." in venv, venv
    user_shell("uv run poe ci", teammate, user_env)
    assert git(teammate, "status", "--porcelain") == ""
    (teammate / "README.md").write_text("# Churn model\n\nOur notes.\n")
    user_shell("git commit --quiet -am 'Our README'", teammate, user_env)  # through the hooks


def team_edit(project: Path) -> dict[Path, bytes]:
    """Edit params.yaml (a retrain), the team-owned model.py and the README; commit."""
    edits = {
        project / "params.yaml": ("n_estimators: 100", "n_estimators: 120"),
        project / "src" / "my_model" / "model.py": (
            "def build_model",
            "# Team edit\ndef build_model",
        ),
        project / "README.md": ("## Daily commands", "Team note.\n\n## Daily commands"),
    }
    for path, (old, new) in edits.items():
        text = path.read_text()
        assert old in text, f"{old!r} not in {path}"
        path.write_text(text.replace(old, new, 1))
    git(project, "commit", "--quiet", "--no-verify", "-am", "Team edits")
    return {path: path.read_bytes() for path in edits}


def change_answers(
    project: Path, env: dict[str, str], data: list[str], added: set[str], removed: set[str]
) -> None:
    """The docs' update command with `--data` for each new answer: exactly the files the
    answers own are added and removed; the update is committed as the docs say."""
    user_shell(answer_change_command(data), project, env)
    # poe update applies the update to the index too (`git diff --staged` reviews it)
    status = git(project, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert {line[3:] for line in status if line.startswith("A ")} == added, data
    assert {line[3:] for line in status if line.startswith("D ")} == removed, data
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--no-verify", "-m", f"Answers changed: {' '.join(data)}")


@pytest.mark.xdist_group(ALL_PROVIDERS.id)
def test_changing_answers_through_update(released_project, user_env):
    """Journey 3: answers changed one update at a time, as docs/updating.md says, there and
    back: deploy ssh -> kubernetes -> none -> ssh, a CI provider removed and added, Python 3.11
    -> 3.12, the DVC remote local -> s3 (unreachable here), serving and Docker off and on. Each
    update adds and removes exactly the files its answer owns and keeps the team's edits;
    `poe ci` is green after each group."""
    project, env = released_project, user_env
    team = team_edit(project)
    deploy = "scripts/deploy.py", "scripts/deploy_backend.py", "scripts/deploy_common.py"
    kubernetes = {
        f"deploy/kubernetes/{name}/kustomization.yaml"
        for name in ("base", "overlays/staging", "overlays/production")
    } | {f"deploy/kubernetes/base/{name}.yaml" for name in ("deployment", "service", "hpa")}
    api = {
        "src/my_model/mlops/serve.py",
        "src/my_model/mlops/batching.py",
        "src/my_model/mlops/server.py",
        "tests/test_api.py",
        "tests/test_batching.py",
        ".github/workflows/deploy.yml",
        *deploy,
    }

    change_answers(project, env, ["deploy_target=kubernetes"], kubernetes, {"deploy/compose.yaml"})
    change_answers(project, env, ["ci_providers=['github', 'gitlab']"], set(), {"Jenkinsfile"})
    change_answers(project, env, ["python_version=3.12"], set(), set())
    assert not (project / ".python-version").exists(), "pyenv would hide uv inside the repo"
    assert "version_info = 3.12." in (project / ".venv" / "pyvenv.cfg").read_text()
    assert "ARG BASE_IMAGE=python:3.12-slim" in (project / "Dockerfile").read_text()
    assert "python3.12-bookworm" in (project / ".gitlab-ci.yml").read_text()
    assert 'requires-python = ">=3.12"' in (project / "uv.lock").read_text()
    s3 = ["dvc_remote=s3", "dvc_remote_url=s3://my-bucket/my-model"]
    change_answers(project, env, s3, set(), set())
    assert "url = s3://my-bucket/my-model" in (project / ".dvc" / "config").read_text()
    # Serving off takes the deployment with it (deploy_target is asked only with an API); the
    # team-owned deploy/smoke-request.json stays.
    change_answers(project, env, ["serving=none"], set(), api | kubernetes)
    change_answers(
        project,
        env,
        ["use_docker=false"],
        set(),
        {"Dockerfile", ".dockerignore", "scripts/image.py"},
    )
    assert (project / "deploy" / "smoke-request.json").is_file()
    ci = user_shell("uv run poe ci", project, env)
    assert "quality gate: passed" in ci.stdout
    git(project, "add", "--all")
    git(project, "commit", "--quiet", "--no-verify", "-m", "Pipeline run")

    all_providers = "ci_providers=['github', 'gitlab', 'jenkins']"
    change_answers(project, env, [all_providers], {"Jenkinsfile"}, set())
    docker = {"Dockerfile", ".dockerignore", "scripts/image.py", "deploy/compose.yaml"}
    change_answers(project, env, ["use_docker=true", "serving=fastapi"], docker | api, set())
    change_answers(
        project,
        env,
        ["deploy_target=none"],
        set(),
        {"deploy/compose.yaml", ".github/workflows/deploy.yml", *deploy},
    )
    ci = user_shell("uv run poe ci", project, env)
    assert "quality gate: passed" in ci.stdout
    for path, content in team.items():
        assert path.read_bytes() == content, f"the team's edit of {path} was lost"
