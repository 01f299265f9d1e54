"""Copies of this template, renders, generated repositories and clones.

Renders run in-process with Copier's API from a plain copy of the working tree (copy_template),
so uncommitted changes are tested and no render clones the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.harness.git import commit, git

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PARTS = ("copier.yml", "extensions.py", "template", "hooks")
# The one template-owned change of release v2.0.0 in template_releases.
TEMPLATE_V2_NOTE = "# Template v2.0.0: pre-commit hooks reviewed.\n"
# The one PyTorch build this machine can install offline: a CPU wheel that the machine image
# ships for CPython 3.11. Generated PyTorch projects take torch from the "pytorch-cpu" index
# (download.pytorch.org, unreachable here); tests point that index at a local copy instead.
LOCAL_WHEELS = Path("/opt/wheels")
# The migration script a test release ships (hooks/ of the template has none of its own).
MIGRATIONS = REPO_ROOT / "tests" / "template_v2" / "migrations.py"


def prepare_environment() -> None:
    """Let uv find every interpreter pyenv installed (python_version 3.10 to 3.13), the current
    one first, and never download one: these machines reach only the package registries.

    Call before importing Copier: Copier gives its tasks plumbum's copy of the environment,
    which plumbum takes when it is first imported.
    """
    if shutil.which("pyenv") and "PYENV_VERSION" not in os.environ:
        current = subprocess.run(
            ["pyenv", "version-name"], capture_output=True, text=True
        ).stdout.strip()
        versions = subprocess.run(
            ["pyenv", "versions", "--bare"], capture_output=True, text=True
        ).stdout.split()
        others = [v for v in versions if v.startswith("3.") and v != current]
        os.environ["PYENV_VERSION"] = ":".join([current, *others])
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


def copy_template(dst: Path) -> Path:
    """This template's parts (not its tests or docs) copied into dst, as Copier reads them."""
    dst.mkdir(parents=True, exist_ok=True)
    for part in TEMPLATE_PARTS:
        source = REPO_ROOT / part
        if source.is_dir():
            shutil.copytree(source, dst / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dst / part)
    return dst


def render(
    template: Path,
    dst: Path,
    data: dict[str, Any],
    skip_tasks: bool = True,
    env: dict[str, str] | None = None,
    exclude: list[str] | None = None,
    vcs_ref: str | None = None,
) -> Path:
    """Render in-process; env reaches the copy-time tasks (Copier runs them with plumbum's env).
    vcs_ref picks a release of a git template (Copier's default: the latest tag)."""
    import copier  # after prepare_environment (see there)
    from plumbum import local

    with local.env(**(env or {})):
        copier.run_copy(
            str(template),
            str(dst),
            data=data,
            defaults=True,
            unsafe=True,
            skip_tasks=skip_tasks,
            quiet=True,
            exclude=exclude or [],
            vcs_ref=vcs_ref,
        )
    return dst


def generate_project(template: Path, dst: Path, data: dict[str, Any], env: dict[str, str]) -> Path:
    """A generated repository as a user gets it: rendered, then set up by the copy-time tasks
    (git, uv lock, DVC with its local remote under dst's parent, first pipeline run, commits)."""
    return render(
        template,
        dst,
        data,
        skip_tasks=False,
        env={**env, "DVC_LOCAL_REMOTE_ROOT": str(dst.parent / "dvc-remotes")},
    )


def clone(project: Path, dst: Path) -> Path:
    """A fresh checkout, as a CI runner gets it (git only; DVC data comes from the remote)."""
    subprocess.run(["git", "clone", "--quiet", str(project), str(dst)], check=True)
    return dst


def offline_uv_env(index_dir: Path) -> dict[str, str]:
    """Environment that lets generated projects resolve every dependency offline; the local
    pytorch-cpu index (when this machine has the wheel) is written under index_dir."""
    env = {"UV_PYTHON_DOWNLOADS": "never"}
    wheels = sorted(LOCAL_WHEELS.glob("torch-*+cpu-*.whl"))
    if wheels:
        (index_dir / "torch").mkdir(parents=True)
        links = []
        for wheel in wheels:
            (index_dir / "torch" / wheel.name).symlink_to(wheel)
            links.append(f'<a href="{wheel.name}">{wheel.name}</a>')
        (index_dir / "torch" / "index.html").write_text(
            "<html><body>" + "".join(links) + "</body></html>"
        )
        env["UV_INDEX"] = f"pytorch-cpu={index_dir.as_uri()}"
    return env


def init_release(repo: Path, version: str) -> None:
    """Make repo (a template copy) a git repository whose first commit is release `version`."""
    git(repo, "init", "--quiet", "--initial-branch=main")
    release(repo, version)


def release(repo: Path, version: str) -> None:
    """Commit everything in the template repository and tag it as release `version`."""
    commit(repo, f"Release {version}")
    git(repo, "tag", version)


def template_releases(dst: Path) -> Path:
    """A git copy of this template with two releases: v1.0.0 as it is, and v2.0.0 with one
    template-owned change (a line in .pre-commit-config.yaml), for the template-update jobs."""
    repo = copy_template(dst)
    init_release(repo, "v1.0.0")
    hooks = repo / "template" / ".pre-commit-config.yaml"
    hooks.write_text(TEMPLATE_V2_NOTE + hooks.read_text())
    release(repo, "v2.0.0")
    return repo


def rename_with_migration(repo: Path, old: str, new: str, version: str) -> None:
    """In a template copy, rename the team-owned file `old` (its template file and its
    `_exclude` entry) to `new`, with the migration that moves each team's copy when an update
    crosses `version` (tests/template_v2/migrations.py, as hooks/migrations.py)."""
    template = repo / "template"
    git(repo, "mv", str(template / f"{old}.jinja"), str(template / f"{new}.jinja"))
    shutil.copy2(MIGRATIONS, repo / "hooks" / "migrations.py")
    copier_yml = repo / "copier.yml"
    text = copier_yml.read_text().replace(old, new)
    migration = (
        "_migrations:\n"
        f"  - version: {version}\n"
        "    when: \"{{ _stage == 'before' }}\"\n"
        '    command: "{{ _copier_python }} {{ _copier_conf.src_path }}/hooks/migrations.py '
        f'rename {old} {new}"\n'
    )
    assert "_migrations:\n" in text
    copier_yml.write_text(text.replace("_migrations:\n", migration, 1))


def generated_from_release(project: Path, releases: Path, version: str = "v1.0.0") -> None:
    """Make a generated repository record that it came from `releases` at `version` (its files
    are that release's: template_src and v1.0.0 are the same copy), and commit that."""
    answers_file = project / ".copier-answers.yml"
    header, _, _ = answers_file.read_text().partition("\n")
    answers = yaml.safe_load(answers_file.read_text())
    answers.update({"_commit": version, "_src_path": str(releases)})
    answers_file.write_text(header + "\n" + yaml.safe_dump(answers, sort_keys=True))
    commit(project, f"Generated from {version}")
