"""`fleet adopt` (fleet/adopt.py, docs/platform-teams.md "Adopting existing repositories"):
existing repositories brought under the template without losing any of the team's files.

The repositories are made with the real tools: a cookiecutter-data-science (CCDS) v2 shaped
template of our own (tests/ccds_template, written from CCDS's documented layout) rendered with
the `cookiecutter` package, the same template created with `cruft` (its `.cruft.json`), and a
hand-made repository. Each has the team's data file (git-ignored where the layout ignores
data/), code and a notebook (the CCDS-made ones a `.env` too).

Budget: two repositories are adopted for real and taken all the way (`poe ci`, `fleet report`
with no drift, an update to the next release): the cruft-made CCDS one with its own data
(`--data`, `copier update`), about two and a half minutes on an idle machine, most of it the
adoption's lock, sync and first pipeline run; and the hand-made one from its git URL with the
sample (`fleet update`, `copier update`), about two minutes. The plain CCDS repository is checked
through `--plan` (every answer, source, move and dependency, the same code that writes), the
refusals stop before anything heavy, and the half-done adoption is killed at its `uv sync`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
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
    """A repository made by hand: train.py at the top, pinned requirements.txt, a CI workflow
    (install, then train and pytest), a test with its conftest.py fixture, a notebook, the data
    committed in git, its own .gitignore."""
    repo = tmp_path / "demand"
    workflows = repo / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (repo / "README.md").write_text("# Demand Forecast\n\nWeekly demand per store.\n")
    (repo / ".gitignore").write_text(".env\n*.log\n")
    (repo / "train.py").write_text(
        '"""Train the model."""\n\nprint("training the team\'s model")\n'
    )
    (repo / "requirements.txt").write_text("# pinned by the team\ntyper==0.12.5\npandas>=2.2\n")
    (workflows / "ci.yml").write_text(
        "name: ci\non: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/setup-python@v5\n        with:\n"
        '          python-version: "3.13"\n'
        "      - run: pip install -r requirements.txt\n"
        "      - run: |\n          python train.py\n          pytest\n"
    )
    (repo / "tests").mkdir()
    (repo / "tests" / "conftest.py").write_text(
        "import pytest\n\n\n@pytest.fixture\ndef store_ids():\n    return [1, 2]\n"
    )
    (repo / "tests" / "test_pipeline.py").write_text(
        "def test_stores(store_ids):\n    assert store_ids == [1, 2]\n"
    )
    (repo / "notebooks").mkdir()
    (repo / "notebooks" / "weekly.ipynb").write_text(json.dumps(NOTEBOOK, indent=1) + "\n")
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
def test_adopt_a_cruft_made_ccds_repository_then_ci_update_and_report(
    cruft_repo, env, template_releases, tmp_path
):
    """A CCDS repository made with cruft, its data git-ignored: adopted with --defaults --data
    --target in named commits, the answers from .cruft.json, which is retired (its content in
    the merge commit's message); every team file kept (byte for byte up to the merge commit,
    the formatting commit touching only whitespace and Python), the team's package under src/
    and importable,
    its data DVC-tracked with the same content and pushed nowhere, the tree clean, `poe ci`
    green, `copier update` to v2.0.0 green without conflict markers, `fleet report` current
    with no drift (the merges are in the template files' team sections)."""
    repo = cruft_repo
    before = snapshot(repo)
    data = repo / "data" / "raw" / "customers.csv"
    result = fleet(
        "adopt", str(repo), "--defaults", "--data", str(data), "--target", "churned",
        "--template", str(template_releases), "--vcs-ref", "v1.0.0",
        cwd=tmp_path, env=env, check=True,
    )  # fmt: skip
    plan = result.stdout
    for line in (
        "project_name: Fraud Signals    <- .cruft.json context",
        "python_version: 3.11    <- .cruft.json context",
        "package_name: fraud_signals_pipeline    <- 'fraud_signals' is the team's package",
        "fraud_signals/ -> src/fraud_signals/",
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

    package = {p: f"src/{p}" for p in before if p.startswith("fraud_signals/")}
    assert_team_files_kept(repo, before, package)
    assert not (repo / ".cruft.json").exists()
    merge = adoption_commit(repo, "the team's files merged and moved")
    message = git(repo, "log", "-1", "--format=%B", merge)
    assert before[".cruft.json"].decode().strip() in message, "its answers recorded as it left"
    for kept in ("README.md", "Makefile", "notebooks/1.0-dt-exploration.ipynb", "setup.cfg"):
        assert (repo / kept).read_bytes() == before[kept]
    team_rules = [line for line in before[".gitignore"].decode().splitlines() if line != "/data/"]
    gitignore = (repo / ".gitignore").read_text()
    assert all(rule in gitignore.splitlines() for rule in team_rules)
    assert ".env" in git(repo, "status", "--porcelain", "--ignored")
    pyproject = (repo / "pyproject.toml").read_text()
    assert 'module-name = ["fraud_signals_pipeline", "fraud_signals"]' in pyproject
    assert all(name in pyproject for name in ("loguru", "python-dotenv", "tqdm", "typer"))

    # The data: DVC-tracked, the same bytes, in DVC's cache only.
    raw = repo / "data" / "raw" / "dataset.csv"
    assert raw.read_bytes() == before["data/raw/customers.csv"]
    recorded = yaml.safe_load((repo / "data" / "raw" / "dataset.csv.dvc").read_text())
    assert recorded["outs"][0]["md5"] == md5(raw.read_bytes())
    assert not (tmp_path / "dvc-remotes").exists(), "adoption pushes nothing"

    imported = run(["uv", "run", "--frozen", "python", "-c",
                    "import fraud_signals.dataset as team, fraud_signals_pipeline; "
                    "print(team.__file__)"], repo, env)  # fmt: skip
    assert imported.stdout.strip().endswith("src/fraud_signals/dataset.py")
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


def adoption_commit(repo: Path, subject: str) -> str | None:
    """The sha of the adoption's commit whose subject starts with `fleet adopt: <subject>`."""
    found = git(repo, "log", "--format=%H %s").splitlines()
    return next((line.split()[0] for line in found if f" fleet adopt: {subject}" in line), None)


def assert_team_files_kept(repo: Path, before: dict[str, bytes], moved: dict[str, str]) -> None:
    """Every team file of `before` (the merged .gitignore and pyproject.toml, the retired
    .cruft.json aside) byte for
    byte in the merge commit, at its place or where `moved` says (an untracked one on disk);
    then the formatting commit, if any, changes only whitespace outside Python code."""
    merge = adoption_commit(repo, "the team's files merged and moved")
    tracked = set(git(repo, "ls-tree", "-r", "--name-only", merge).splitlines())
    for path, content in before.items():
        new = moved.get(path, path)
        if path in {".gitignore", "pyproject.toml", ".cruft.json"}:
            continue  # merged, or retired
        if new in tracked:
            assert git_bytes(repo, merge, new) == content, f"{path} changed by the merge"
        else:  # untracked and ignored: data, .env, .gitkeep files in ignored folders
            assert (repo / new).read_bytes() == content, f"{path} changed"
    formatting = adoption_commit(repo, "the team's files formatted")
    if formatting:
        changed = git(repo, "diff", "--name-only", merge, formatting).splitlines()
        assert set(changed) <= {moved.get(p, p) for p in before}, "only the team's files"
        assert git(repo, "diff", "--ignore-all-space", "--ignore-blank-lines", merge, formatting,
                   "--", *(p for p in changed if not p.endswith(".py"))) == ""  # fmt: skip


def git_bytes(repo: Path, commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=repo, capture_output=True, check=True
    ).stdout


def assert_plan(repo: Path, env, template_releases, tmp_path, args: list[str], lines) -> None:
    """`fleet adopt --plan` on repo (from template v1.0.0) prints each of lines and writes
    nothing: every file of the repository byte for byte as before."""
    before = snapshot(repo)
    result = fleet("adopt", str(repo), "--plan", *args, "--template", str(template_releases),
                   "--vcs-ref", "v1.0.0", cwd=tmp_path, env=env, check=True)  # fmt: skip
    for line in lines:
        assert line in result.stdout, f"{line!r} not in the plan:\n{result.stdout}"
    assert snapshot(repo) == before


def test_plan_of_a_ccds_repository(ccds_repo, env, template_releases, tmp_path):
    """Lighter (no writing): a CCDS repository's answers come from its README, pyproject.toml
    and LICENSE, its package moves under src/ and the template's is named around it; its
    requirements are added and CCDS's `/data/` rule narrowed. (A CCDS repository made with
    cruft is adopted all the way above.)"""
    data = ccds_repo / "data" / "raw" / "customers.csv"
    args = ["--data", str(data), "--target", "churned"]
    assert_plan(ccds_repo, env, template_releases, tmp_path, args, [
        "cookiecutter repository",
        "project_name: churn    <- README.md title",
        "python_version: 3.12    <- pyproject.toml requires-python",
        "license: MIT    <- LICENSE",
        "package_name: churn_pipeline    <- 'churn' is the team's package",
        "churn/ -> src/churn/",
        "loguru (requirements.txt)",
        "`/data/` narrowed",
    ])  # fmt: skip


def test_plan_of_a_cruft_repository(cruft_repo, env, template_releases, tmp_path):
    """Lighter (no writing, no `poe ci`): the answers come from .cruft.json's context, the
    .cruft.json is to be retired, the CCDS module moves under src/; nothing is written."""
    assert_plan(cruft_repo, env, template_releases, tmp_path, [], [
        "cruft repository",
        "project_name: Fraud Signals    <- .cruft.json context",
        "author_name: Risk Team    <- .cruft.json context",
        "python_version: 3.11    <- .cruft.json context",
        "license: BSD-3-Clause    <- LICENSE",
        "package_name: fraud_signals_pipeline    <- 'fraud_signals' is the team's package",
        "fraud_signals/ -> src/fraud_signals/",
        "Retired (its answers are the ones above; it stays in git history):\n  .cruft.json",
        "no --data: the template's sample is written to data/raw/dataset.csv",
    ])  # fmt: skip


def test_plan_of_a_handmade_repository(handmade_repo, env, template_releases, tmp_path):
    """Lighter (no writing, no `poe ci`): the README's title, the CI's Python version, the
    team's pins (pandas left to the template's), its CI workflow and test kept beside the
    template's; nothing is written."""
    data = handmade_repo / "data" / "sales.csv"
    args = ["--data", str(data), "--target", datasets.prices().target]
    assert_plan(handmade_repo, env, template_releases, tmp_path, args, [
        "hand-made repository",
        "project_name: Demand Forecast    <- README.md title",
        "python_version: 3.13    <- .github/workflows/ci.yml (CI)",
        "license: Proprietary    <- no LICENSE file",
        "ci_providers: github    <- the team's CI files",
        ".github/workflows/ci.yml -> .github/workflows/team-ci.yml",
        "tests/test_pipeline.py -> tests/test_team_pipeline.py",
        "tests/conftest.py -> tests/team_conftest.py",
        "The team's CI commands, run last by `poe ci` (team-checks task):\n"
        "  python train.py (.github/workflows/ci.yml)",
        "pytest (.github/workflows/ci.yml): `poe ci` runs it (`test`)",
        "pip install -r requirements.txt (.github/workflows/ci.yml): environment set-up",
        "typer==0.12.5 (requirements.txt)",
        "pandas>=2.2 (requirements.txt)",  # under "already has"
    ])  # fmt: skip


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
    its packages listed after the template's in module-name, its CI commands in team-checks;
    `fleet report` shows no drift.
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
    text = text.replace('"team_pipeline"', '["team_pipeline", "churn"]', 1)
    checks = 'team-checks = { sequence = [{ shell = "python train.py" }] }'
    pyproject.write_text(re.sub(r"^team-checks = .*$", checks, text, count=1, flags=re.M))
    assert 'module-name = ["team_pipeline", "churn"]' in pyproject.read_text()
    assert checks in pyproject.read_text()
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


@pytest.mark.slow
def test_adopt_a_handmade_repository_from_its_url_with_the_sample(
    handmade_repo, env, template_releases, tmp_path
):
    """A hand-made repository adopted from its git URL (a local file:// remote: offline) with
    no --data: cloned, every team file kept byte for byte (its CI workflow and test moved
    beside the template's, its conftest.py still loading), the template's sample as the data
    set beside the team's, its CI's commands in team-checks; `poe ci` green, running them;
    `fleet report` current with no drift; `fleet update` takes it up; `copier update` to the
    next release applies without a conflict."""
    origin = tmp_path / "remotes" / "demand.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(handmade_repo), str(origin))
    before = snapshot(handmade_repo)  # all of it is committed: what the clone has
    work = tmp_path / "work"
    work.mkdir()
    result = fleet("adopt", origin.as_uri(), "--defaults", "--template", str(template_releases),
                   "--vcs-ref", "v1.0.0", cwd=work, env=env, check=True)  # fmt: skip
    repo = work / "demand"
    assert "no --data: the template's sample is written to data/raw/dataset.csv" in result.stdout
    assert git(repo, "remote", "get-url", "origin").strip() == origin.as_uri()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(repo, "log", "-1", "--format=%s").strip() == (
        "fleet adopt: the template's sample is the data set (DVC), first pipeline run"
    )
    moved = {
        ".github/workflows/ci.yml": ".github/workflows/team-ci.yml",
        "tests/test_pipeline.py": "tests/test_team_pipeline.py",
        "tests/conftest.py": "tests/team_conftest.py",
    }
    assert_team_files_kept(repo, before, moved)
    for kept in ("README.md", "notebooks/weekly.ipynb", "data/sales.csv", "requirements.txt"):
        assert (repo / kept).read_bytes() == before[kept]
    assert (
        (repo / ".gitignore")
        .read_text()
        .endswith(
            "# The team's own rules go below this line: the template never changes them.\n"
            ".env\n*.log\n"
        )
    )
    raw = repo / "data" / "raw" / "dataset.csv"
    recorded = yaml.safe_load((repo / "data" / "raw" / "dataset.csv.dvc").read_text())
    assert recorded["outs"][0]["md5"] == md5(raw.read_bytes())
    pyproject = (repo / "pyproject.toml").read_text()
    assert '"typer==0.12.5"' in pyproject
    assert 'team-checks = { sequence = [{ shell = "python train.py" }]' in pyproject

    ci = run(["uv", "run", "--frozen", "poe", "ci"], repo, env)
    output = ci.stdout + ci.stderr
    assert "quality gate: passed" in output and "training the team's model" in output
    junit = (repo / "reports" / "junit.xml").read_text()
    assert 'name="test_stores"' in junit, "the team's test ran, with its conftest's fixture"
    assert "<failure" not in junit and "<error" not in junit

    listed = tmp_path / "repos.txt"
    listed.write_text(f"{repo} team-d\n")
    report = json.loads(fleet("report", str(listed), "--format", "json", cwd=tmp_path,
                              env=env, check=True).stdout)[0]  # fmt: skip
    assert (report["release"], report["behind"], report["drift"], report["problems"]) == (
        "v1.0.0", 1, [], []
    )  # fmt: skip
    update = fleet("update", str(listed), "--label", "team-d", cwd=tmp_path, env=env, check=True)
    assert update.stdout.startswith(
        f"{repo}: reported (template update: version 2.0.0 is available."
    ), update.stdout  # no forge token: the job says what to do

    run([sys.executable, "-m", "copier", "update", "--defaults", "--trust"], repo, env)
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["_commit"] == "v2.0.0"
    conflicts = run(["git", "grep", "-l", "-e", "^<<<<<<< ", "--", "."], repo, env, check=False)
    assert conflicts.stdout == "", f"conflict markers in {conflicts.stdout}"
    assert not list(repo.rglob("*.rej"))
    assert (
        'team-checks = { sequence = [{ shell = "python train.py" }]'
        in (repo / "pyproject.toml").read_text()
    )


def test_a_half_done_adoption_is_a_problem_in_the_report(
    handmade_repo, env, template_releases, tmp_path
):
    """`fleet adopt` killed after its merge commit (when it starts `uv sync`): the answers file
    is there, the data set's commit is not; `fleet report` names the half-done adoption and
    the commit to go back to, and `--strict` fails on it."""
    base = git(handmade_repo, "rev-parse", "--short", "HEAD").strip()
    adopting = subprocess.Popen(
        [sys.executable, "-m", "fleet.cli", "adopt", str(handmade_repo), "--defaults",
         "--template", str(template_releases), "--vcs-ref", "v1.0.0"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        for line in adopting.stdout:
            if line.startswith("[fleet adopt] $ uv sync"):
                os.killpg(adopting.pid, 9)
                break
    finally:
        adopting.stdout.close()
        adopting.wait(timeout=60)
    assert adopting.returncode == -9, "killed while adopting"
    assert git(handmade_repo, "log", "-1", "--format=%s").strip() == (
        "fleet adopt: the team's files merged and moved"
    )
    listed = tmp_path / "repos.txt"
    listed.write_text(f"{handmade_repo}\n")
    report = fleet("report", str(listed), "--format", "json", "--strict", cwd=tmp_path, env=env)
    assert report.returncode == 1
    assert json.loads(report.stdout)[0]["problems"] == [
        "half-done adoption: `fleet adopt` stopped after `fleet adopt: the team's files merged "
        f"and moved`; go back to before it (`git reset --hard {base}`) and adopt again"
    ]


def test_the_teams_ci_commands_are_read_from_github_and_gitlab(tmp_path):
    """Each `run:` step's lines (a backslash continues a command; comments and blank lines
    left out) and each GitLab job's `script:` lines, in order, with their file; hidden
    GitLab jobs (`.name`) and `uses:` steps have none."""
    from fleet.existing import ci_commands

    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "ci.yml").write_text(
        "jobs:\n  test:\n    steps:\n      - uses: actions/checkout@v4\n"
        "      - run: |\n          # quick\n          ruff check . \\\n            --quiet\n\n"
        "          pytest -x\n"
    )
    (tmp_path / ".gitlab-ci.yml").write_text(
        "stages: [test]\n.base:\n  script: [echo hidden]\n"
        "lint:\n  script:\n    - make lint\n    - make docs\ntrain:\n  script: python train.py\n"
    )
    assert ci_commands(tmp_path) == [
        ("ruff check . --quiet", ".github/workflows/ci.yml"),
        ("pytest -x", ".github/workflows/ci.yml"),
        ("make lint", ".gitlab-ci.yml"),
        ("make docs", ".gitlab-ci.yml"),
        ("python train.py", ".gitlab-ci.yml"),
    ]
