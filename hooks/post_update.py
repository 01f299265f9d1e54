"""Update-time task: what a changed answer needs beyond the template's files.

Runs in the repository after every `copier update` has merged the files (a `_migrations` entry
without a version, stage "after"), before the team reviews and commits:
- `uv lock` and `uv sync`: pyproject.toml may have changed (dependencies of a feature turned on
  or off, requires-python of a new python_version), and CI installs with `uv sync --locked`; a
  new python_version is looked for where the copy-time task looks (pyenv, uv, the system).
  uv.lock is re-locked, never merged: one holding conflict markers (an earlier bad merge; uv
  cannot read it) is replaced by the last committed one, or removed when that has markers too,
  before `uv lock`; and UV_FROZEN / UV_LOCKED (set by the scheduled template-update job) are
  dropped, as with them `uv lock` only checks the old lock instead of writing the new one;
- a changed dvc_remote / dvc_remote_url answer becomes the default DVC remote in .dvc/config;
- a repository from a release before the data contract gets the bundled schema.yaml (team-owned,
  so the update itself does not write it), with a note on adapting it to the team's data;
- a repository from a release before the mlops/ layout gets its own modules' imports of the
  template's code pointed at their new place (mlops_layout.py), then sorted by ruff;
- a repository whose data set was the output of the bundled sample's `data` stage (gone from
  dvc.yaml: the data is a DVC-tracked file) has it put under DVC as it is (`dvc add`).
- a changed answer takes away the tracked pipeline outputs its old value owned (OWNED_OUTPUTS:
  DVCLive's `dvclive/`, kept in git as `cache: false` outputs); Copier itself deletes the
  template's files of the old value. serving and ci_providers own no such outputs: their files
  are the template's, and deploy/smoke-request.json is the team's. Local history that git
  ignores (MLflow's `mlruns/`) stays, and the hook says where it is.
A failure does not undo the update: it says what to run by hand.

Run by the generated repository's `poe update` (scripts/template_update.py), Copier works in a
temporary git worktree, where what git ignores (the data, `.venv`) is not. There
TEMPLATE_UPDATE_TREE names the team's tree, where those are looked for, and the steps that need
it (every step but `uv lock`) are written to the JSON file TEMPLATE_UPDATE_DEFERRED instead of
run: the command runs them in the team's tree once the update is applied.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml
from mlops_layout import migrate
from post_copy import RAW_DATA, find_python, local_remote_dir

ANSWERS = ".copier-answers.yml"
LOCK = "uv.lock"
# What git and Copier write around a conflict (pre-commit-hooks' check-merge-conflict looks for
# the same line starts).
CONFLICT_MARKERS = (b"<<<<<<< ", b">>>>>>> ")
REMOTE_ANSWERS = ("dvc_remote", "dvc_remote_url")
# The template's own copy of the contract (a plain file, not rendered), beside this script.
BUNDLED_CONTRACT = (
    Path(__file__).resolve().parents[1] / "template" / "src" / "{{ package_name }}" / "schema.yaml"
)


# Tracked outputs an answer's value owns beyond the template's files: (question, value) ->
# paths that `git rm -r` removes when the answer changes away from the value. Never a team-owned
# file, the data or the models (PROTECTED).
OWNED_OUTPUTS = {("experiment_tracking", "dvclive"): ("dvclive",)}
PROTECTED = ("data", "models", "src", "notebooks", "tests", "deploy", "params.yaml", "README.md")
# Git-ignored local history an answer's value leaves behind: kept, and named.
LOCAL_HISTORY = {
    ("experiment_tracking", "mlflow"): (
        "mlruns",
        "MLflow's local runs and registry stay in mlruns/ (git-ignored; "
        "`uv run --with mlflow mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db` "
        "browses them); delete the folder when you no longer need them",
    )
}


def leftovers(answers: dict, previous: dict) -> list[str]:
    """The paths the previous answers owned that the new answers do not."""
    paths = []
    for (question, value), owned in OWNED_OUTPUTS.items():
        if previous.get(question) == value and answers.get(question) != value:
            paths += [path for path in owned if path.split("/")[0] not in PROTECTED]
    return paths


def remove_leftovers(answers: dict, previous: dict) -> list[str]:
    """`git rm -r` each leftover path that git tracks; one line per path removed. The paths."""
    removed = []
    for path in leftovers(answers, previous):
        listed = subprocess.run(
            ["git", "ls-files", "--", path], capture_output=True, text=True, check=True
        ).stdout.split()
        if not listed:
            continue
        subprocess.run(["git", "rm", "-r", "--quiet", "--", path], check=True)
        owner = next(f"{q}={v}" for (q, v), owned in OWNED_OUTPUTS.items() if path in owned)
        print(
            f"[post-update] removed {path}/ ({len(listed)} tracked files, outputs of {owner}, "
            "an answer this update changed)",
            flush=True,
        )
        removed.append(path)
    for (question, value), (path, note) in LOCAL_HISTORY.items():
        if (
            previous.get(question) == value != answers.get(question)
            and (team_tree() / path).exists()
        ):
            print(f"[post-update] {note}", flush=True)
    return removed


def previous_answers() -> dict:
    """The answers as last committed (before this update)."""
    shown = subprocess.run(["git", "show", f"HEAD:{ANSWERS}"], capture_output=True, text=True)
    if shown.returncode != 0:
        return {}
    return yaml.safe_load(shown.stdout) or {}


def team_tree() -> Path:
    """Where git-ignored files (the data, .venv, mlruns/) are: the team's tree, which is not
    the current directory when Copier runs in `poe update`'s temporary worktree."""
    return Path(os.environ.get("TEMPLATE_UPDATE_TREE", "."))


def steps(
    answers: dict, previous: dict, rewritten: Sequence[Path] = (), tree: Path = Path(".")
) -> list[tuple[str, list[str]]]:
    """The commands this update needs, as (description, command); tree is where the data is."""
    result = [("lock dependencies", ["uv", "lock"]), ("install environment", ["uv", "sync"])]
    if rewritten:
        ruff = ["uv", "run", "ruff", "check", "--select", "I", "--fix", "--quiet"]
        result.append(("sort the rewritten imports", [*ruff, *map(str, rewritten)]))
    if (tree / RAW_DATA).is_file() and not Path(f"{RAW_DATA}.dvc").exists():
        result.append(("track the data with DVC", ["uv", "run", "dvc", "add", RAW_DATA]))
    if any(answers.get(name) != previous.get(name) for name in REMOTE_ANSWERS):
        url = (
            str(local_remote_dir(answers["project_slug"]))
            if answers["dvc_remote"] == "local"
            else answers["dvc_remote_url"]
        )
        remote = ["uv", "run", "dvc", "remote", "add", "--default", "--force", "storage", url]
        result.append(("DVC remote for the new dvc_remote answer", remote))
    return result


def has_conflict_markers(content: bytes) -> bool:
    return any(line.startswith(CONFLICT_MARKERS) for line in content.splitlines())


def discard_conflicted_lock(repo: Path = Path(".")) -> str | None:
    """Give `uv lock` a lock file it can read: a uv.lock with conflict markers is replaced by
    the committed one (so pins move no more than the update needs), or removed when that one
    has markers too. What was done, or None when uv.lock has no markers."""
    lock = repo / LOCK
    if not lock.is_file() or not has_conflict_markers(lock.read_bytes()):
        return None
    committed = subprocess.run(["git", "show", f"HEAD:{LOCK}"], cwd=repo, capture_output=True)
    if committed.returncode == 0 and not has_conflict_markers(committed.stdout):
        lock.write_bytes(committed.stdout)
        return f"{LOCK} had conflict markers: re-locking from the committed {LOCK}"
    lock.unlink()
    return f"{LOCK} had conflict markers, the committed one too: locking from scratch"


def lock_environment(env: dict[str, str] | os._Environ = os.environ) -> dict[str, str]:
    """env without what turns `uv lock` into a check of the old lock (UV_FROZEN, UV_LOCKED)."""
    return {k: v for k, v in env.items() if k not in ("UV_FROZEN", "UV_LOCKED")}


def write_missing_contract(package: str, repo: Path = Path(".")) -> Path | None:
    """Copy the template's schema.yaml (the bundled sample's contract) into a repository that
    has none; the path written, or None when the repository already has its own."""
    contract = repo / "src" / package / "schema.yaml"
    if contract.exists():
        return None
    shutil.copyfile(BUNDLED_CONTRACT, contract)
    return contract


def main() -> int:
    answers = yaml.safe_load(Path(ANSWERS).read_text())
    previous = previous_answers()
    remove_leftovers(answers, previous)
    written = write_missing_contract(answers["package_name"])
    if written:
        print(
            f"[post-update] wrote {written}: the data contract this release reads (the bundled "
            "sample's columns). If your data is not the sample, make it yours before committing: "
            "`uv run poe adopt-data data/raw/dataset.csv --target COLUMN`, or edit the file "
            '(its format: docs/how-to.md, "Your own data").',
            flush=True,
        )
    rewritten = migrate(Path("."), answers["package_name"])
    for path in rewritten:
        print(
            f"[post-update] {path}: imports of the template's code now name "
            f"src/{answers['package_name']}/mlops/ (api.py where it offers the names)",
            flush=True,
        )
    tree = team_tree()
    if not (tree / RAW_DATA).exists() and not Path(f"{RAW_DATA}.dvc").exists():
        print(
            f"[post-update] {RAW_DATA} is missing and no .dvc file tracks it (the bundled "
            "sample's `data` stage is gone from dvc.yaml): bring it back from the commit before "
            f"this update (`git stash; uv run dvc pull {RAW_DATA}; git stash pop`) and run "
            f"`uv run dvc add {RAW_DATA}`, or make a table of yours the data set with "
            "`uv run poe adopt-data PATH --target COLUMN`.",
            flush=True,
        )
    # uv does not look where pyenv keeps interpreters: hand it the one the copy would use.
    python = find_python(answers["python_version"])
    if python:
        os.environ["UV_PYTHON"] = python
    discarded = discard_conflicted_lock()
    if discarded:
        print(f"[post-update] {discarded}", flush=True)
    todo = steps(answers, previous, rewritten, tree)
    deferred = os.environ.get("TEMPLATE_UPDATE_DEFERRED")
    if deferred:  # `poe update`: only `uv lock` here; the rest in the team's tree, after
        env = {"UV_PYTHON": python} if python else {}
        Path(deferred).write_text(json.dumps({"env": env, "steps": todo[1:]}))
        todo = todo[:1]
    failed = []
    for description, command in todo:
        print(f"[post-update] {description}: {shlex.join(command)}", flush=True)
        if subprocess.run(command, env=lock_environment()).returncode != 0:
            failed.append(shlex.join(command))
    if failed:
        print(
            "post-update: the files are updated, but these commands failed; fix the cause and "
            "run them before committing:\n" + "\n".join(f"    {c}" for c in failed),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
