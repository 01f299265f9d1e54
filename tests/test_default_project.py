"""The default variant, generated for real (copy-time tasks included), is green end to end:
its `uv run poe ci` passes, and DVC versioning works across clones on the same machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.harness.commands import run
from tests.harness.docs import fenced_block
from tests.harness.imports import API_START, HELP, imported
from tests.harness.readme import run_readme_commands
from tests.harness.render import REPO_ROOT, generate_project
from tests.harness.services import api_command, free_port, http_ok, service

sys.path.insert(0, str(REPO_ROOT / "hooks"))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import bench  # noqa: E402
import post_copy  # noqa: E402

pytestmark = pytest.mark.slow
PACKAGE = "my_model"  # the default answers' package


def sh(*command: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run(list(command), cwd, {**os.environ, "NO_COLOR": "1"}, check=check)


@pytest.fixture(scope="module")
def project(template_src, tmp_path_factory, offline_uv_env) -> Path:
    root = tmp_path_factory.mktemp("default")
    return generate_project(template_src, root / "my-model", {}, offline_uv_env)


def test_copy_tasks_leave_a_committed_repository(project):
    log = sh("git", "log", "--format=%s", cwd=project).stdout.splitlines()
    assert log == [
        "Baseline pipeline run: dvc.lock and metrics",
        "Initial commit from the ML CI/CD template",
    ]
    assert sh("git", "status", "--porcelain", cwd=project).stdout == ""
    tracked = sh("git", "ls-files", cwd=project).stdout.splitlines()
    assert {"dvc.lock", "reports/metrics.json", "uv.lock", ".dvc/config"} <= set(tracked)
    assert "data/raw/dataset.csv.dvc" in tracked  # the data set: DVC's pointer to the sample
    assert not [
        f
        for f in tracked
        if f.startswith(("data/", "models/")) and not f.endswith((".gitignore", ".dvc"))
    ], "data and models are DVC's, not git's"
    assert (project / ".git" / "hooks" / "pre-commit").is_file()
    config = (project / ".dvc" / "config").read_text()
    assert "autostage = true" in config and "remote = storage" in config


def test_copy_time_dvc_step_stops_at_the_first_failing_command(project):
    """The copy-time task runs several DVC commands in one process (one command to resume by
    hand): a failing one ends it with DVC's exit code, and the next ones never run."""
    description, command = post_copy.dvc_step(
        [
            ("read", ["config", "core.autostage"]),
            ("fail", ["remote", "remove", "no-such-remote"]),
            ("write", ["config", "--local", "core.checksum_jobs", "3"]),
        ]
    )
    assert description == "read, fail, write"
    result = sh(*command, cwd=project, check=False)
    assert result.returncode == 251, result.stderr
    assert result.stdout.strip() == "true"
    assert not (project / ".dvc" / "config.local").exists()


def test_poe_ci_is_green(project):
    result = sh("uv", "run", "poe", "ci", cwd=project)
    assert "quality gate: passed" in result.stdout
    assert (project / "reports" / "junit.xml").is_file()
    assert "| accuracy |" in (project / "reports" / "ci-report.md").read_text()


def test_team_code_that_imports_the_template_internals_fails_lint(project):
    """The team's modules import the template's code only through mlops/api.py: importing
    one of the modules beside it fails `poe lint` (and so `poe ci`), naming the import."""
    data = project / "src" / PACKAGE / "data.py"
    original = data.read_bytes()
    try:
        data.write_bytes(original + b"\nfrom .mlops.schema import load_contract  # noqa: E402\n")
        result = sh("uv", "run", "poe", "lint", cwd=project, check=False)
        assert result.returncode != 0
        assert "Your code imports the template's code only through my_model.mlops.api BROKEN" in (
            result.stdout
        )
        assert "my_model.data -> my_model.mlops.schema" in result.stdout
    finally:
        data.write_bytes(original)
    assert sh("uv", "run", "poe", "lint", cwd=project).returncode == 0


CONFLICT = "<<<<<<< before updating\n{ours}=======\n{theirs}>>>>>>> after updating\n"


def test_conflict_markers_are_refused_by_the_git_hook_and_poe_ci(project):
    """What a `copier update` conflict leaves (inline markers, no merge in progress) in a
    template file and in DVC's lock file (which the fixers leave as written): the git hook the
    copy-time task installed refuses the commit, and `poe ci` fails, naming both files."""
    edited = {name: (project / name).read_bytes() for name in (".gitignore", "dvc.lock")}
    head = sh("git", "rev-parse", "HEAD", cwd=project).stdout
    try:
        for name, content in edited.items():
            text = content.decode()
            first, rest = text.split("\n", 1)
            marked = CONFLICT.format(ours=f"{first}\n", theirs=f"{first}  # v2\n")
            (project / name).write_text(marked + rest)
        sh("git", "add", *edited, cwd=project)
        refused = sh("git", "-c", "user.name=T", "-c", "user.email=t@example.com", "commit",
                     "-m", "Update to template v2", cwd=project, check=False)  # fmt: skip
        output = refused.stdout + refused.stderr
        assert refused.returncode != 0, output
        for name in edited:
            assert f"{name}:1: Merge conflict string '<<<<<<<' found" in output, output
        assert sh("git", "rev-parse", "HEAD", cwd=project).stdout == head
        ci = sh("uv", "run", "poe", "ci", cwd=project, check=False)
        assert ci.returncode != 0, ci.stdout[-2000:]
        assert "no conflict markers" in ci.stdout and "Failed" in ci.stdout, ci.stdout[-3000:]
        for name in edited:
            assert f"{name}:1: Merge conflict string '<<<<<<<' found" in ci.stdout
        assert f"Poe => python -m {PACKAGE} pipeline" not in ci.stdout + ci.stderr  # lint first
    finally:
        sh("git", "reset", "--quiet", cwd=project)
        for name, content in edited.items():
            (project / name).write_bytes(content)
    assert sh("git", "status", "--porcelain", cwd=project).stdout == ""


def test_benchmark_times_every_command_poe_ci_runs(project):
    """benchmarks/bench.py times `poe ci` task by task from its own reading of pyproject.toml:
    those tasks' commands must be the ones poe itself would run for `ci` (its dry run)."""
    tasks = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["poe"]["tasks"]
    timed = [tasks[task]["cmd"] for task in bench.ci_tasks(project)]
    dry_run = sh("uv", "run", "poe", "--dry-run", "ci", cwd=project)
    prefix = "Poe => "
    would_run = [
        line.removeprefix(prefix)
        for line in (dry_run.stdout + dry_run.stderr).splitlines()
        if line.startswith(prefix)
    ]
    assert would_run and sorted(timed) == sorted(would_run)


def test_bundled_sample_is_scikit_learns_wine_data(project, tmp_path):
    """make_sample reads scikit-learn's wine CSV itself so that the data stage need not import
    scikit-learn: it must give what load_wine gives, columns named as schema.yaml names them,
    and the pipeline's data file must be those rows written as pandas writes them."""
    check = f"""
import re, pandas as pd
from sklearn.datasets import load_wine
from {PACKAGE}.data import make_sample
from {PACKAGE}.mlops.api import FEATURES, TARGET
wine = load_wine(as_frame=True)
expected = wine.data.rename(columns=lambda c: re.sub("[^a-z0-9]+", "_", c.lower()).strip("_"))
expected[TARGET] = wine.target.astype("int64")
expected = expected[[*FEATURES, TARGET]]
pd.testing.assert_frame_equal(make_sample("{tmp_path}/all.csv"), expected, check_exact=True)
part = expected.sample(n=50, random_state=7).sort_index().reset_index(drop=True)
pd.testing.assert_frame_equal(make_sample("{tmp_path}/part.csv", 50, 7), part, check_exact=True)
expected.to_csv("{tmp_path}/expected.csv", index=False)
"""
    sh("uv", "run", "python", "-c", check, cwd=project)
    data = (project / "data" / "raw" / "dataset.csv").read_bytes()
    assert data == (tmp_path / "expected.csv").read_bytes()


def test_help_and_the_api_start_import_only_what_they_use(project):
    assert imported(project, HELP, PACKAGE) == set()
    api = imported(project, API_START, PACKAGE)
    assert {"fastapi", "sklearn"} <= api, api  # the model is scikit-learn's
    assert not api & {"dvc", "dvclive", "mlflow", "torch"}, api


# Journey 8: the default README's and how-to's shell commands that are not run here, and why.
README_NOT_RUN = {
    "uv run poe deploy staging": "needs a real staging host and registry (DEPLOY_HOST, ...); "
    "tests/test_deploy.py deploys the same task to a local SSH host",
    "uv run poe rollback staging": "needs a real staging host with two releases; "
    "tests/test_deploy.py rolls back on a local SSH host",
}


def test_every_readme_shell_command_runs(project):
    run_readme_commands(project, README_NOT_RUN, {**os.environ, "NO_COLOR": "1"})
    assert sh("git", "status", "--porcelain", cwd=project).stdout == "", "commands left changes"


def test_fresh_clone_pulls_instead_of_recomputing(project, tmp_path):
    clone = tmp_path / "clone"
    sh("git", "clone", "--quiet", str(project), str(clone), cwd=tmp_path)
    result = sh("uv", "run", "poe", "pipeline", cwd=clone)
    assert "dvc pull:" in result.stdout and "not reachable" not in result.stdout
    assert "Running stage" not in result.stdout, "pulled outputs must not be recomputed"
    assert (clone / "models" / "model.joblib").read_bytes() == (
        project / "models" / "model.joblib"
    ).read_bytes()


def test_unreachable_remote_recomputes_with_one_line(project, tmp_path):
    clone = tmp_path / "runner"
    sh("git", "clone", "--quiet", str(project), str(clone), cwd=tmp_path)
    sh(
        "uv",
        "run",
        "dvc",
        "remote",
        "modify",
        "--local",
        "storage",
        "url",
        str(tmp_path / "no-such-remote"),
        cwd=clone,
    )
    result = sh("uv", "run", "poe", "pipeline", cwd=clone)
    notices = [line for line in result.stdout.splitlines() if "not reachable" in line]
    assert len(notices) == 1, result.stdout + result.stderr
    assert "dvc repro will recompute" in notices[0]
    assert "Running stage 'train'" in result.stdout
    metrics = sh("uv", "run", "dvc", "metrics", "diff", "HEAD", "--json", cwd=clone).stdout
    assert metrics.strip() in ("{}", ""), (
        f"recomputed metrics differ from the committed ones: {metrics}"
    )


def test_failing_push_prints_dvcs_own_error(project, tmp_path):
    """`poe push` to a remote DVC cannot write names DVC's error, not its support footer."""
    clone = tmp_path / "clone"
    sh("git", "clone", "--quiet", str(project), str(clone), cwd=tmp_path)
    sh("uv", "run", "dvc", "remote", "add", "--local", "--default", "broken", "s3://b/x", cwd=clone)
    direct = sh("uv", "run", "dvc", "push", cwd=clone, check=False)
    (error,) = [line for line in direct.stderr.splitlines() if line.startswith("ERROR:")]
    pushed = sh("uv", "run", "poe", "push", cwd=clone, check=False)
    assert pushed.returncode == 1
    failure = [line for line in pushed.stdout.splitlines() if "failed:" in line]
    assert failure == [
        f"dvc push to remote 'broken' (s3://b/x) failed: {error[len('ERROR:') :].strip()}"
    ]
    assert "Having any troubles" not in pushed.stdout


def test_the_readme_request_is_answered(project, tmp_path):
    """The README's curl request, as written there, gets a prediction from the model served as
    the README says (`poe serve`, on port 8000; here on a free port, the one change made to the
    command), and so does the deployment's smoke request file sent with curl."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    curl = fenced_block(project / "README.md", "## Ask the model")
    smoke = f"curl -s {base}/predict -H 'Content-Type: application/json' "
    requests = {
        curl.replace("127.0.0.1:8000", f"127.0.0.1:{port}"): 1,
        smoke + "-d @deploy/smoke-request.json": len(
            json.loads((project / "deploy" / "smoke-request.json").read_text())["rows"]
        ),
    }
    log = tmp_path / "api.log"
    with service(
        api_command(PACKAGE, port), lambda: http_ok(f"{base}/health"), project, {}, 120, log
    ):
        for command, rows in requests.items():
            answer = json.loads(sh("bash", "-euo", "pipefail", "-c", command, cwd=project).stdout)
            labels = [prediction.get("label") for prediction in answer.get("predictions", [])]
            assert len(labels) == rows and set(labels) <= {0, 1, 2}, f"{command}\n{answer}"
