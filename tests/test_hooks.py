"""hooks/post_copy.py: clear errors for missing tools, and a plan that only runs on copy;
hooks/post_update.py: the data contract for a repository from an earlier release, and a uv.lock
re-locked (never kept with conflict markers, nor left stale by the job's UV_FROZEN);
hooks/mlops_layout.py: the team's imports carried to the mlops/ layout."""

from __future__ import annotations

import ast
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.harness.commands import run
from tests.harness.git import commit
from tests.harness.render import REPO_ROOT, render

sys.path.insert(0, str(REPO_ROOT / "hooks"))
import mlops_layout  # noqa: E402
import post_copy  # noqa: E402
import post_update  # noqa: E402

ANSWERS = {
    "project_slug": "demo",
    "package_name": "demo",
    "dvc_remote": "local",
    "author_name": "A",
    "author_email": "a@b.c",
}


def test_missing_tools_are_named_with_how_to_install():
    problems = post_copy.missing_tools(which=lambda tool: None if tool == "uv" else "/usr/bin/git")
    assert problems == [
        "'uv' was not found on PATH: install it with `python -m pip install uv` "
        "(https://docs.astral.sh/uv/)"
    ]


def test_missing_tool_fails_cleanly_without_traceback(template_src, tmp_path):
    dst = render(template_src, tmp_path / "project", {})
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hooks" / "post_copy.py")],
        cwd=dst,
        capture_output=True,
        text=True,
        env={"PATH": str(empty_path)},
    )
    assert result.returncode == 1
    assert "'git' was not found on PATH" in result.stderr
    assert "'uv' was not found on PATH" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (dst / ".git").exists(), "nothing is half set up"


def test_local_remote_lives_outside_the_repository(tmp_path):
    assert post_copy.local_remote_dir("demo", {"DVC_LOCAL_REMOTE_ROOT": str(tmp_path)}) == (
        tmp_path.resolve() / "demo"
    )
    xdg = post_copy.local_remote_dir("demo", {"XDG_DATA_HOME": str(tmp_path)})
    assert xdg == tmp_path.resolve() / "dvc-remotes" / "demo"


def test_plan_commits_code_before_the_first_pipeline_run():
    steps = [name for name, _ in post_copy.plan(ANSWERS, "/r", has_git=False, has_dvc=False)]
    first_run = "first pipeline run, push data and models"
    assert steps.index("git init") < steps.index("first commit") < steps.index(first_run)
    assert steps[-1] == "baseline commit"


def test_plan_sets_up_and_runs_dvc_in_two_processes_with_every_command():
    """DVC's import is paid once for init, autostage and remote, once for repro and push; the
    command printed (and listed to resume by hand) is one shell command that runs them all."""
    steps = dict(post_copy.plan(ANSWERS, "/r 'x'", has_git=False, has_dvc=False))
    dvc_steps = {
        name: command
        for name, command in steps.items()
        if command[0] == "uv" and "dvc" in shlex.join(command)
    }
    assert list(dvc_steps) == [
        "dvc init, dvc autostage, dvc remote, track the data",
        "first pipeline run, push data and models",
    ]
    setup, first_run = dvc_steps.values()
    assert setup[:4] == ["uv", "run", "python", "-c"]
    assert shlex.split(shlex.join(setup)) == setup
    assert 'main, [["init", "--quiet"], ["config", "core.autostage", "true"], ' in setup[4]
    assert '["remote", "add", "--force", "--default", "storage", "/r \'x\'"], ' in setup[4]
    assert '["add", "data/raw/dataset.csv"]]' in setup[4]
    assert '[["repro"], ["push"]]' in first_run[4]


def test_a_set_up_interrupted_after_its_first_commit_resumes_with_the_pipeline():
    """What a rerun does once the first commit exists: the environment, the pipeline and push,
    and the baseline commit (which stages uv.lock too, when an earlier run left it out)."""
    steps = post_copy.resume_plan(ANSWERS, keep_remote=False, keep_out=["notes.txt"])
    assert [name for name, _ in steps] == [
        "install environment",
        "first pipeline run, push data and models",
        "stage baseline",
        "baseline commit",
    ]
    assert ":(exclude,literal)notes.txt" in dict(steps)["stage baseline"]


def test_plan_skips_push_for_remotes_that_need_credentials():
    steps = post_copy.plan({**ANSWERS, "dvc_remote": "s3"}, "s3://b/p", has_git=True, has_dvc=True)
    names = [name for name, _ in steps]
    assert "git init" not in names
    assert "dvc autostage, dvc remote, track the data" in names
    assert ("first pipeline run", ["uv", "run", "dvc", "repro"]) in steps


def test_plan_keeps_the_repositorys_remote():
    steps = post_copy.plan(
        ANSWERS, "/r", has_git=True, has_dvc=True, keep_remote=True, data="tracked"
    )
    assert ("dvc autostage", ["uv", "run", "dvc", "config", "core.autostage", "true"]) in steps
    assert ("first pipeline run", ["uv", "run", "dvc", "repro"]) in steps
    assert not [command for _, command in steps if {"push", "remote"} & set(command)]


def test_plan_writes_the_sample_only_where_there_is_no_data_and_tracks_it_with_dvc():
    """The data set is a DVC-tracked file, never a stage: the bundled sample is written only
    into a repository without data, and a team's file already there is tracked as it is."""
    sample = ["uv", "run", "python", "-m", "demo", "make-data", "--out", "data/raw/dataset.csv"]
    for data, writes, tracks in [
        ("absent", True, True),
        ("untracked", False, True),
        ("tracked", False, False),
    ]:
        steps = post_copy.plan(ANSWERS, "/r", has_git=True, has_dvc=True, data=data)
        assert (("bundled sample data", sample) in steps) == writes
        names = [name for name, _ in steps]
        assert any("track the data" in name for name in names) == tracks
        if writes:  # with the environment installed, before DVC tracks it
            track = next(name for name in names if "track the data" in name)
            assert names.index("install environment") < names.index("bundled sample data")
            assert names.index("bundled sample data") < names.index(track)


def test_update_looks_for_the_data_in_the_teams_tree(tmp_path, monkeypatch):
    """`poe update` runs Copier in a worktree, where the git-ignored data is not: the data
    (to put under DVC) is looked for in the team's tree that the command names."""
    team = tmp_path / "team"
    (team / "data" / "raw").mkdir(parents=True)
    (team / "data" / "raw" / "dataset.csv").write_text("x,y\n1,0\n")
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    monkeypatch.chdir(worktree)
    answers = {"dvc_remote": "none", "dvc_remote_url": ""}
    track = ("track the data with DVC", ["uv", "run", "dvc", "add", "data/raw/dataset.csv"])
    assert track in post_update.steps(answers, answers, (), team)
    assert track not in post_update.steps(answers, answers)  # the worktree has no data
    monkeypatch.setenv("TEMPLATE_UPDATE_TREE", str(team))
    assert post_update.team_tree() == team


def test_update_writes_the_bundled_contract_only_into_a_repository_without_one(tmp_path):
    # A repository from a release before schema.yaml: the team-owned file is not rendered by an
    # update, so the post-update task writes the template's copy.
    (tmp_path / "src" / "demo").mkdir(parents=True)
    written = post_update.write_missing_contract("demo", tmp_path)
    bundled = REPO_ROOT / "template" / "src" / "{{ package_name }}" / "schema.yaml"
    assert written == tmp_path / "src" / "demo" / "schema.yaml"
    assert written.read_bytes() == bundled.read_bytes()
    written.write_text("features: {}  # the team's own\n")
    assert post_update.write_missing_contract("demo", tmp_path) is None
    assert written.read_text() == "features: {}  # the team's own\n"


TINY_PROJECT = """\
[project]
name = "tiny"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = []
"""


def with_conflict_markers(lock: str) -> str:
    """uv.lock as a bad merge leaves it: both sides of the project's version kept."""
    ours = 'version = "0.1.0"\n'
    assert ours in lock
    return lock.replace(
        ours, f'<<<<<<< HEAD\n{ours}=======\nversion = "0.1.5"\n>>>>>>> other-branch\n', 1
    )


@pytest.mark.parametrize("committed_with_markers", [False, True], ids=["working", "committed"])
def test_update_relocks_a_lock_with_conflict_markers_despite_uv_frozen(
    tmp_path, committed_with_markers
):
    """The real post-update task in a small repository whose update changed pyproject.toml and
    whose uv.lock holds conflict markers (in the working tree, or committed by an earlier bad
    merge), run with the scheduled job's UV_FROZEN=1: uv.lock is re-locked, never kept."""
    repo = tmp_path / "repo"
    (repo / "src" / "tiny").mkdir(parents=True)
    (repo / "src" / "tiny" / "schema.yaml").write_text("features: {}\n")
    (repo / "pyproject.toml").write_text(TINY_PROJECT)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    answers = {**ANSWERS, "package_name": "tiny", "python_version": python}
    (repo / ".copier-answers.yml").write_text(yaml.safe_dump(answers))
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    run(["git", "init", "--quiet"], repo)
    run(["uv", "lock", "--quiet"], repo, env)
    lock = repo / "uv.lock"
    clean = lock.read_text()
    if committed_with_markers:
        lock.write_text(with_conflict_markers(clean))
    commit(repo, "Generated")
    lock.write_text(with_conflict_markers(clean))
    (repo / "pyproject.toml").write_text(TINY_PROJECT.replace("0.1.0", "0.2.0"))  # the update

    result = run(
        [sys.executable, str(REPO_ROOT / "hooks" / "post_update.py")],
        repo,
        {**env, "UV_FROZEN": "1"},
    )
    assert "these commands failed" not in result.stderr, result.stderr
    relocked = lock.read_text()
    assert "<<<<<<<" not in relocked and ">>>>>>>" not in relocked
    assert 'name = "tiny"\nversion = "0.2.0"' in relocked
    run(["uv", "lock", "--check"], repo, env)
    expected = "from scratch" if committed_with_markers else "from the committed uv.lock"
    assert "[post-update] uv.lock had conflict markers" in result.stdout
    assert expected in result.stdout, result.stdout


def test_update_removes_only_the_tracked_outputs_an_old_answer_owned(tmp_path, monkeypatch, capsys):
    """Leaving dvclive: `git rm -r` its tracked logs, one line per path; a switch between other
    trackers, the data, the models and untracked history are left alone."""
    files = ["dvclive/train/metrics.json", "dvclive/evaluate/plots/metrics/recall_0.tsv"]
    files += ["data/raw/dataset.csv", "models/model.joblib", "mlruns/mlflow.db"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x\n")
    subprocess.run(["git", "init", "--quiet"], cwd=tmp_path, check=True)
    (tmp_path / ".gitignore").write_text("mlruns/\n")
    commit(tmp_path, "outputs")
    monkeypatch.chdir(tmp_path)
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True).stdout

    mlflow, none = {"experiment_tracking": "mlflow"}, {"experiment_tracking": "none"}
    assert post_update.remove_leftovers(none, mlflow) == []
    assert "mlruns/" in capsys.readouterr().out, "says where MLflow's history stays"
    assert post_update.remove_leftovers({"experiment_tracking": "dvclive"}, {}) == []
    listed = subprocess.run(["git", "ls-files"], capture_output=True, text=True).stdout
    assert listed == tracked

    removed = post_update.remove_leftovers(
        {"experiment_tracking": "mlflow"}, {"experiment_tracking": "dvclive"}
    )
    assert removed == ["dvclive"]
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "[post-update] removed dvclive/ (2 tracked files, outputs of "
        "experiment_tracking=dvclive, an answer this update changed)"
    ]
    listed = subprocess.run(["git", "ls-files"], capture_output=True, text=True).stdout.split()
    assert listed == [".gitignore", "data/raw/dataset.csv", "models/model.joblib"]
    assert not (tmp_path / "dvclive").exists()
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()


def test_copy_task_runs_only_on_copy():
    tasks = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())["_tasks"]
    assert tasks and all("_copier_operation == 'copy'" in task["when"] for task in tasks)


def test_hooks_use_only_what_copier_ships():
    """Tasks run with Copier's own interpreter ({{ _copier_python }}): stdlib, PyYAML, Jinja;
    the interpreter search they share with a clone's scripts/bootstrap.py, which runs with any
    Python 3 before the project has an environment, only the standard library."""

    def imported(path: Path) -> set[str]:
        return {
            line.split()[1].split(".")[0]
            for line in path.read_text().splitlines()
            if line.startswith(("import ", "from ")) and "__future__" not in line
        }

    stdlib = {"importlib", "json", "os", "re", "shlex", "shutil", "subprocess", "sys", "pathlib"}
    assert imported(Path(post_copy.__file__)) <= stdlib | {"jinja2", "yaml", "bootstrap"}
    assert imported(REPO_ROOT / "template" / "scripts" / "bootstrap.py") <= stdlib


OLD_DATA_PY = """import pandas as pd

from .monitor import write_reference
from .schema import (
    CONTRACT,
    TARGET,
)
from .schema import load_contract
from .team_helpers import clean
from . import config, schema


def load():
    from .tracking import log_metrics  # inside a function too

    return config, schema, log_metrics
"""


def test_team_imports_of_moved_modules_point_at_mlops_api_or_the_new_module():
    new = mlops_layout.rewrite_imports(OLD_DATA_PY, "my_model")
    assert new == (
        OLD_DATA_PY.replace("from .monitor import", "from .mlops.api import")
        .replace("from .schema import (", "from .mlops.api import (")
        # load_contract is not public: the module's new place (it runs; poe lint points it out)
        .replace("from .schema import load_contract", "from .mlops.schema import load_contract")
        .replace("from . import config, schema", "from .mlops import config, schema")
        .replace("from .tracking import log_metrics", "from .mlops.api import log_metrics")
    )
    # Idempotent, and an absolute import in a test is carried the same way.
    assert mlops_layout.rewrite_imports(new, "my_model") == new
    test = "from my_model.schema import FEATURES\nfrom my_model.data import load\n"
    assert mlops_layout.rewrite_imports(test, "my_model") == (
        "from my_model.mlops.api import FEATURES\nfrom my_model.data import load\n"
    )


def test_layout_migration_keeps_team_modules_with_an_old_name_and_other_files(tmp_path):
    package = tmp_path / "src" / "my_model"
    (package / "mlops").mkdir(parents=True)
    (package / "mlops" / "api.py").write_text("")
    (package / "config.py").write_text("SEED = 1\n")  # the team's own config.py
    data = package / "data.py"
    data.write_text("from .config import SEED\nfrom .schema import CONTRACT\n")
    untouched = package / "features.py"
    untouched.write_bytes(b"from .data import load  \r\n")
    notebook = tmp_path / "notebooks" / "explore.py"
    notebook.parent.mkdir()
    notebook.write_text("from my_model.schema import CONTRACT\n")

    assert mlops_layout.migrate(tmp_path, "my_model") == [data]
    assert data.read_text() == "from .config import SEED\nfrom .mlops.api import CONTRACT\n"
    assert untouched.read_bytes() == b"from .data import load  \r\n"
    assert mlops_layout.migrate(tmp_path, "my_model") == []  # once only


def test_layout_migration_names_exactly_what_the_template_api_exports():
    api = REPO_ROOT / "template" / "src" / "{{ package_name }}" / "mlops" / "api.py"
    exported = ast.literal_eval(
        next(
            node.value
            for node in ast.parse(api.read_text()).body
            if isinstance(node, ast.Assign) and node.targets[0].id == "__all__"
        )
    )
    assert set(exported) == mlops_layout.PUBLIC


def fake_python(root: Path, version: str) -> Path:
    """An 'interpreter' under a pyenv-like root that answers the version probe."""
    python = root / "versions" / f"{version}.1" / "bin" / f"python{version}"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\necho {version}\n")
    python.chmod(0o755)
    return python


def test_the_interpreter_search_finds_pyenvs_where_uv_does_not_look(tmp_path):
    """The copy's and a clone's bootstrap search: uv finds no 3.99, pyenv's folder has it."""
    python = fake_python(tmp_path / "pyenv", "3.99")
    env = {**os.environ, "PYENV_ROOT": str(tmp_path / "pyenv"), "HOME": str(tmp_path)}
    assert post_copy.find_python("3.99", env) == str(python)
    assert post_copy.find_python("3.98", env) is None


def test_bootstrap_without_the_projects_python_stops_with_one_line_and_changes_nothing(
    tmp_path,
):
    """A clone whose python_version is installed nowhere: the bootstrap names the version and
    the fixes, exits 1, and makes no environment."""
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / ".copier-answers.yml").write_text("package_name: my_model\npython_version: '3.98'\n")
    script = REPO_ROOT / "template" / "scripts" / "bootstrap.py"
    env = {**os.environ, "PYENV_ROOT": str(tmp_path / "none"), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=clone, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "bootstrap: Python 3.98 (this project's python_version) is not installed here: install "
        "it (`uv python install 3.98`, pyenv or your package manager), then run this again; "
        "nothing was changed."
    ]
    assert sorted(p.name for p in clone.iterdir()) == [".copier-answers.yml"]
