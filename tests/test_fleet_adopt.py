"""`fleet adopt` (fleet/adopt.py, docs/platform-teams.md "Adopting existing repositories"):
existing repositories brought under the template without losing any of the team's files.

The repositories are made with the real tools: a cookiecutter-data-science (CCDS) v2 shaped
template of our own (tests/ccds_template, written from CCDS's documented layout) rendered with
the `cookiecutter` package, the same template created with `cruft` (its `.cruft.json`), and a
hand-made repository. Each has the team's data file (git-ignored where the layout ignores
data/), code, a notebook and a `.env`.

Budget: the CCDS repository is adopted for real and taken all the way (`poe ci`, `copier update`
to the next release, `fleet report`): about three minutes on an idle machine, most of it the
adoption's lock, sync and first pipeline run. The cruft and hand-made repositories are checked
through `--plan` (every answer, source, move and dependency, the same code that writes), and the
refusals stop before anything heavy; none of them runs `poe ci`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter

from fleet.inspect_repo import TemplateCache, inspect
from fleet.repos import RepoEntry
from tests.harness import datasets
from tests.harness.commands import run
from tests.harness.git import git

pytestmark = pytest.mark.xdist_group("fleet-adopt")

CCDS = Path(__file__).parent / "ccds_template"
NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
               "source": ["import pandas as pd\n", "pd.read_csv('../data/raw/customers.csv')"]}],
    "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
}  # fmt: skip


def fleet(*args: str, cwd: Path, env: dict[str, str], check: bool = False):
    return run([sys.executable, "-m", "fleet.cli", *args], cwd, env, check=check)


@pytest.fixture
def env(offline_uv_env, tmp_path) -> dict[str, str]:
    """The user's shell: uv on PATH (this suite's), DVC's local remotes under tmp_path. The
    stand-in PyTorch CPU index (UV_INDEX) is left out: these are scikit-learn projects, and uv
    would look for the team's packages (loguru, typer, ...) in that index and stop there."""
    base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT")}
    return {
        **base,
        **{k: v for k, v in offline_uv_env.items() if k != "UV_INDEX"},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_LOCAL_REMOTE_ROOT": str(tmp_path / "dvc-remotes"),
    }


def team_extras(repo: Path) -> Path:
    """What the team added after the layout was made: its data (under data/raw/, git-ignored
    by CCDS), a notebook, a `.env`; committed where git sees it. The data file's path."""
    data = datasets.write_csv(repo / "data" / "raw" / "customers.csv", datasets.churn().rows())
    (repo / "notebooks").mkdir(exist_ok=True)
    notebook = repo / "notebooks" / "1.0-dt-exploration.ipynb"
    notebook.write_text(json.dumps(NOTEBOOK, indent=1) + "\n")
    (repo / ".env").write_text("WAREHOUSE_PASSWORD=team-secret\n")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "The team's notebook")
    return data


def new_repo(repo: Path) -> Path:
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "-m", "The team's first commit")
    return repo


@pytest.fixture
def ccds_repo(tmp_path) -> Path:
    """A CCDS repository as `ccds` makes it (cookiecutter, our CCDS-shaped template)."""
    made = cookiecutter(
        str(CCDS),
        no_input=True,
        output_dir=str(tmp_path),
        extra_context={
            "project_name": "churn",
            "author_name": "Data Team",
            "description": "Who leaves, and when.",
        },  # fmt: skip
    )
    repo = new_repo(Path(made))
    team_extras(repo)
    return repo


@pytest.fixture
def cruft_repo(tmp_path) -> Path:
    """The same layout created with cruft from a git repository of the template."""
    from cruft import create

    source = shutil.copytree(CCDS, tmp_path / "ccds-template")
    new_repo(source)
    made = create(
        str(source),
        output_dir=tmp_path,
        no_input=True,
        extra_context={"project_name": "Fraud Signals", "author_name": "Risk Team",
                       "python_version_number": "3.11", "open_source_license": "BSD-3-Clause"},
    )  # fmt: skip
    repo = new_repo(Path(made))
    team_extras(repo)
    return repo


@pytest.fixture
def handmade_repo(tmp_path) -> Path:
    """A repository made by hand: train.py at the top, pinned requirements.txt, a pytest CI
    workflow, the data committed in git."""
    repo = tmp_path / "demand"
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (repo / "README.md").write_text("# Demand Forecast\n\nWeekly demand per store.\n")
    (repo / "train.py").write_text('"""Train the model."""\n\nprint("training")\n')
    (repo / "requirements.txt").write_text("# pinned by the team\ntyper==0.12.5\npandas>=2.2\n")
    (workflows / "ci.yml").write_text(
        "name: ci\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/setup-python@v5\n        with:\n"
        '          python-version: "3.13"\n      - run: pytest\n'
    )
    (repo / "tests").mkdir()
    (repo / "tests" / "test_pipeline.py").write_text("def test_nothing():\n    assert True\n")
    datasets.write_csv(repo / "data" / "sales.csv", datasets.prices().rows())
    new_repo(repo)
    return repo


def snapshot(repo: Path) -> dict[str, bytes]:
    """Every file, tracked or not (.git aside)."""
    return {
        p.relative_to(repo).as_posix(): p.read_bytes()
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(repo).parts[:1]
    }


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.mark.slow
def test_adopt_a_ccds_repository_then_ci_update_and_report(
    ccds_repo, env, template_releases, tmp_path
):
    """A CCDS repository with its data git-ignored: adopted with --defaults --data --target in
    named commits; every team file kept (byte for byte up to the merge commit, the formatting
    commit touching only whitespace and Python), the team's package under src/ and importable,
    its data DVC-tracked with the same content and pushed nowhere, the tree clean, `poe ci`
    green, `copier update` to v2.0.0 green without conflict markers, `fleet report` current
    with no drift (the merges are in the template files' team sections)."""
    repo = ccds_repo
    before = snapshot(repo)
    data = repo / "data" / "raw" / "customers.csv"
    result = fleet(
        "adopt", str(repo), "--defaults", "--data", str(data), "--target", "churned",
        "--template", str(template_releases), "--vcs-ref", "v1.0.0",
        cwd=tmp_path, env=env, check=True,
    )  # fmt: skip
    plan = result.stdout
    for line in (
        "project_name: churn    <- README.md title",
        "python_version: 3.12    <- pyproject.toml requires-python",
        "license: MIT    <- LICENSE",
        "package_name: churn_pipeline    <- 'churn' is the team's package",
        "churn/ -> src/churn/",
        "loguru (requirements.txt)",
        "`/data/` narrowed",
    ):
        assert line in plan, f"{line!r} not in the plan:\n{plan}"

    subjects = git(repo, "log", "--format=%s").splitlines()
    assert subjects[:4] == [
        "fleet adopt: customers.csv is the data set (DVC), first pipeline run",
        "fleet adopt: the team's files formatted (ruff; end-of-file, trailing whitespace)",
        "fleet adopt: the team's files merged and moved",
        f"fleet adopt: the template's files as rendered ({template_releases} at v1.0.0)",
    ]
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""

    # Every team file: byte for byte in the merge commit (moved or not), then only formatted.
    merged = {".gitignore", "pyproject.toml"}
    moved = {p: f"src/{p}" for p in before if p.startswith("churn/")}
    tracked = set(git(repo, "ls-files").splitlines())
    for path, content in before.items():
        new = moved.get(path, path)
        if path in merged:
            continue
        if new in tracked:
            assert git_bytes(repo, "HEAD~2", new) == content, f"{path} changed by the merge"
        else:  # untracked and ignored: data, .env, .gitkeep files in ignored folders
            assert (repo / new).read_bytes() == content, f"{path} changed"
    formatting = git(repo, "diff", "--name-only", "HEAD~2", "HEAD~1").splitlines()
    assert git(repo, "diff", "--ignore-all-space", "--ignore-blank-lines", "HEAD~2", "HEAD~1",
               "--", *(p for p in formatting if not p.endswith(".py"))) == ""  # fmt: skip
    for kept in ("README.md", "Makefile", "notebooks/1.0-dt-exploration.ipynb", "setup.cfg"):
        assert (repo / kept).read_bytes() == before[kept]
    team_rules = [line for line in before[".gitignore"].decode().splitlines() if line != "/data/"]
    gitignore = (repo / ".gitignore").read_text()
    assert all(rule in gitignore.splitlines() for rule in team_rules)
    assert ".env" in git(repo, "status", "--porcelain", "--ignored")
    pyproject = (repo / "pyproject.toml").read_text()
    assert 'module-name = ["churn_pipeline", "churn"]' in pyproject
    assert all(name in pyproject for name in ("loguru", "python-dotenv", "tqdm", "typer"))

    # The data: DVC-tracked, the same bytes, in DVC's cache only.
    raw = repo / "data" / "raw" / "dataset.csv"
    assert raw.read_bytes() == before["data/raw/customers.csv"]
    recorded = yaml.safe_load((repo / "data" / "raw" / "dataset.csv.dvc").read_text())
    assert recorded["outs"][0]["md5"] == md5(raw.read_bytes())
    assert not (tmp_path / "dvc-remotes").exists(), "adoption pushes nothing"

    imported = run(["uv", "run", "--frozen", "python", "-c",
                    "import churn.dataset, churn_pipeline; print(churn.dataset.__file__)"],
                   repo, env)  # fmt: skip
    assert imported.stdout.strip().endswith("src/churn/dataset.py")
    ci = run(["uv", "run", "--frozen", "poe", "ci"], repo, env)
    assert "quality gate: passed" in ci.stdout + ci.stderr

    run([sys.executable, "-m", "copier", "update", "--defaults", "--trust"], repo, env)
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"] == "v2.0.0"
    conflicts = run(["git", "grep", "-l", "-e", "^<<<<<<< ", "--", "."], repo, env, check=False)
    assert conflicts.stdout == "", f"conflict markers in {conflicts.stdout}"
    run(["uv", "run", "--frozen", "poe", "lint"], repo, env)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--no-verify", "-m", "Template v2.0.0")

    report = inspect(RepoEntry(str(repo), str(repo)), TemplateCache(tmp_path / "cache"), env)
    assert (report.release, report.behind, report.problems, report.drift) == ("v2.0.0", 0, [], [])


def git_bytes(repo: Path, commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=repo, capture_output=True, check=True
    ).stdout


def test_plan_of_a_cruft_repository(cruft_repo, env, template_releases, tmp_path):
    """Lighter (no writing, no `poe ci`): the answers come from .cruft.json's context, the
    .cruft.json is to be retired, the CCDS module moves under src/; nothing is written."""
    before = snapshot(cruft_repo)
    result = fleet("adopt", str(cruft_repo), "--plan", "--template", str(template_releases),
                   "--vcs-ref", "v1.0.0", cwd=tmp_path, env=env, check=True)  # fmt: skip
    for line in (
        "cruft repository",
        "project_name: Fraud Signals    <- .cruft.json context",
        "author_name: Risk Team    <- .cruft.json context",
        "python_version: 3.11    <- .cruft.json context",
        "license: BSD-3-Clause    <- LICENSE",
        "package_name: fraud_signals_pipeline    <- 'fraud_signals' is the team's package",
        "fraud_signals/ -> src/fraud_signals/",
        "Retired (its answers are the ones above; it stays in git history):\n  .cruft.json",
        "no --data: the template's sample is written to data/raw/dataset.csv",
    ):
        assert line in result.stdout, f"{line!r} not in the plan:\n{result.stdout}"
    assert snapshot(cruft_repo) == before


def test_plan_of_a_handmade_repository(handmade_repo, env, template_releases, tmp_path):
    """Lighter (no writing, no `poe ci`): the README's title, the CI's Python version, the
    team's pins (pandas left to the template's), its CI workflow and test kept beside the
    template's; nothing is written."""
    before = snapshot(handmade_repo)
    data = handmade_repo / "data" / "sales.csv"
    result = fleet("adopt", str(handmade_repo), "--plan", "--data", str(data), "--target",
                   datasets.prices().target, "--template", str(template_releases),
                   "--vcs-ref", "v1.0.0", cwd=tmp_path, env=env, check=True)  # fmt: skip
    for line in (
        "hand-made repository",
        "project_name: Demand Forecast    <- README.md title",
        "python_version: 3.13    <- .github/workflows/ci.yml (CI)",
        "license: Proprietary    <- no LICENSE file",
        "ci_providers: github    <- the team's CI files",
        ".github/workflows/ci.yml -> .github/workflows/team-ci.yml",
        "tests/test_pipeline.py -> tests/test_team_pipeline.py",
        "typer==0.12.5 (requirements.txt)",
        "pandas>=2.2 (requirements.txt)",  # under "already has"
    ):
        assert line in result.stdout, f"{line!r} not in the plan:\n{result.stdout}"
    assert snapshot(handmade_repo) == before


def refused(repo: Path, env, template_releases, tmp_path, *extra: str) -> str:
    """`fleet adopt --defaults` that must refuse: exit 2 and nothing changed; its stderr."""
    before, head = snapshot(repo), git(repo, "rev-parse", "HEAD")
    result = fleet("adopt", str(repo), "--defaults", "--template", str(template_releases),
                   "--vcs-ref", "v1.0.0", *extra, cwd=tmp_path, env=env)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "nothing was written" in result.stderr
    assert snapshot(repo) == before and git(repo, "rev-parse", "HEAD") == head
    return result.stderr


def test_refuses_a_dirty_tree(ccds_repo, env, template_releases, tmp_path):
    (ccds_repo / "Makefile").write_text((ccds_repo / "Makefile").read_text() + "\n# wip\n")
    stderr = refused(ccds_repo, env, template_releases, tmp_path)
    assert "uncommitted changes (git status): commit or stash them first" in stderr


def test_refuses_a_package_that_would_shadow_the_templates(
    ccds_repo, env, template_releases, tmp_path
):
    stderr = refused(ccds_repo, env, template_releases, tmp_path, "--answer", "package_name=churn")
    assert "the team's package churn would shadow src/churn, the template's package" in stderr


def test_refuses_data_at_a_pipeline_output_path(ccds_repo, env, template_releases, tmp_path):
    (ccds_repo / "models" / "model.joblib").write_bytes(b"the team's model")
    git(ccds_repo, "add", "models/model.joblib")
    git(ccds_repo, "commit", "--quiet", "-m", "The team's model")
    stderr = refused(ccds_repo, env, template_releases, tmp_path)
    assert (
        "models/model.joblib is at a pipeline output path (the train stage writes "
        "models/model.joblib): move it elsewhere first"
    ) in stderr


def test_copier_copy_into_an_existing_repository_refuses_naming_fleet_adopt(
    ccds_repo, env, template_releases, tmp_path
):
    """`copier copy` (the docs' command, --defaults so that nothing is asked) into a CCDS
    repository stops before writing anything and names `fleet adopt`."""
    before, head = snapshot(ccds_repo), git(ccds_repo, "rev-parse", "HEAD")
    copy = ["copy", "--trust", "--defaults", "--vcs-ref", "v1.0.0", str(template_releases)]
    result = run(
        [sys.executable, "-m", "copier", *copy, str(ccds_repo)], tmp_path, env, check=False
    )
    assert result.returncode != 0
    assert (
        f"{ccds_repo} already holds files this template writes (.gitignore, pyproject.toml): "
        "nothing was written."
    ) in result.stderr
    assert f"run `uv run fleet adopt {ccds_repo}` from a checkout of the template" in result.stderr
    assert snapshot(ccds_repo) == before and git(ccds_repo, "rev-parse", "HEAD") == head


def test_report_names_repositories_not_adopted_yet(
    ccds_repo, cruft_repo, handmade_repo, env, tmp_path
):
    """`fleet report` shows a repository without .copier-answers.yml as "not adopted" with
    what it is, never as a problem, and `fleet update` leaves it alone, saying why."""
    listed = tmp_path / "repos.txt"
    repos = (ccds_repo, cruft_repo, handmade_repo)
    listed.write_text("".join(f"{repo} team-a\n" for repo in repos))
    table = fleet("report", str(listed), "--format", "markdown", cwd=tmp_path, env=env, check=True)
    rows = table.stdout.splitlines()[2:]
    kinds = ("cookiecutter", f"cruft, from {tmp_path / 'ccds-template'}", "hand-made")
    for row, what in zip(rows, kinds, strict=True):
        assert f"| not adopted ({what}) |" in row, row
        assert row.endswith("|  |"), f"no problem reported: {row}"
    assert fleet("report", str(listed), "--strict", cwd=tmp_path, env=env).returncode == 0
    update = fleet("update", str(listed), "--label", "team-a", cwd=tmp_path, env=env, check=True)
    assert update.stdout.splitlines() == [
        f"{repo}: skipped (not adopted ({what}): run `fleet adopt` first)"
        for repo, what in zip(repos, kinds, strict=True)
    ]


def test_interactive_adoption_asks_each_answer_and_confirms(
    ccds_repo, env, template_releases, tmp_path
):
    """Without --defaults each answer is asked with the derived one as default (Enter keeps
    it), the package name follows a typed project name, and anything but `y` at the plan's
    prompt writes nothing (exit 1)."""
    before, head = snapshot(ccds_repo), git(ccds_repo, "rev-parse", "HEAD")
    typed = "Churn Model\n" + "\n" * 7 + "n\n"  # project_name, then Enter for the other seven
    result = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "adopt", str(ccds_repo), "--template",
         str(template_releases), "--vcs-ref", "v1.0.0"],
        cwd=tmp_path, env=env, input=typed, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "project_name [churn] (README.md title): " in result.stdout
    assert "python_version [3.12] (pyproject.toml requires-python): " in result.stdout
    assert "package_name: churn_model    <- from the project name" in result.stdout
    assert result.stdout.rstrip().endswith("fleet adopt: nothing was written")
    assert snapshot(ccds_repo) == before and git(ccds_repo, "rev-parse", "HEAD") == head


def test_the_teams_sections_of_gitignore_and_pyproject_are_not_drift(
    env, template_releases, tmp_path
):
    """What adoption (and any team) writes in the template's files: rules below .gitignore's
    marker, dependencies added by `uv add` (here sorted into the template's list, as uv does),
    its packages listed after the template's in module-name; `fleet report` shows no drift.
    An edit of the template's own lines in the same files still is drift, counted alone."""
    from fleet.adopt import post_copy
    from tests.harness.render import render

    answers = {"serving": "none", "package_name": "team_pipeline"}
    repo = render(template_releases, tmp_path / "team", answers, vcs_ref="v1.0.0")
    new_repo(repo)
    gitignore = repo / ".gitignore"
    gitignore.write_text(gitignore.read_text() + "/data/secrets/\n*.parquet\n")
    python = post_copy().find_python("3.12")
    run(["uv", "add", "--frozen", "--python", python, "loguru", "typer==0.12.5"], repo, env)
    pyproject = repo / "pyproject.toml"
    text = pyproject.read_text()
    assert text.index('"loguru"') < text.index('"pandas>=2.2"'), "uv sorted it in"
    pyproject.write_text(text.replace('"team_pipeline"', '["team_pipeline", "churn"]', 1))
    assert 'module-name = ["team_pipeline", "churn"]' in pyproject.read_text()
    git(repo, "commit", "--quiet", "--all", "-m", "The team's rules and dependencies")

    templates = TemplateCache(tmp_path / "cache")
    report = inspect(RepoEntry(str(repo), str(repo)), templates, env)
    assert (report.release, report.problems, report.drift) == ("v1.0.0", [], [])

    gitignore.write_text(gitignore.read_text().replace("dist/\n", "", 1))
    pyproject.write_text(pyproject.read_text().replace('"pandas>=2.2"', '"pandas>=2.0"', 1))
    git(repo, "commit", "--quiet", "--all", "-m", "The team edits the template's lines")
    report = inspect(RepoEntry(str(repo), str(repo)), templates, env)
    assert report.drift == [
        {"path": ".gitignore", "added": 0, "removed": 1},
        {"path": "pyproject.toml", "added": 1, "removed": 1},
    ]
