"""Copy-time task: turn a freshly rendered directory into a working, versioned repository.

Runs in the destination directory after `copier copy` (never during `copier update`):
git init, uv lock and sync, dvc init with the chosen remote, a first `dvc repro`, a push to the
default local remote, pre-commit hooks, and the first commit with dvc.lock and the baseline
metrics. Each step says what it does; a failure names the step, the command and how to resume.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REQUIRED_TOOLS = {
    "git": "install git from your package manager (https://git-scm.com/downloads)",
    "uv": "install it with `python -m pip install uv` (https://docs.astral.sh/uv/)",
}


def missing_tools(which=shutil.which) -> list[str]:
    return [
        f"'{tool}' was not found on PATH: {how}"
        for tool, how in REQUIRED_TOOLS.items()
        if which(tool) is None
    ]


def local_remote_dir(slug: str, env: dict[str, str] | os._Environ = os.environ) -> Path:
    """Directory of the embedded default DVC remote: outside the repository, one per project."""
    root = (
        env.get("DVC_LOCAL_REMOTE_ROOT")
        or Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "dvc-remotes"
    )
    return Path(root).expanduser().resolve() / slug


def git_identity(answers: dict) -> list[str]:
    """Use the configured git identity; fall back to the template's author answers."""
    args = []
    for key, answer in (("user.name", "author_name"), ("user.email", "author_email")):
        configured = subprocess.run(["git", "config", key], capture_output=True, text=True)
        if not configured.stdout.strip():
            args += ["-c", f"{key}={answers[answer]}"]
    return args


def plan(
    answers: dict, remote_url: str, has_git: bool, has_dvc: bool
) -> list[tuple[str, list[str]]]:
    """The set-up steps, in order, as (description, command)."""
    commit = ["git", *git_identity(answers), "commit", "--quiet", "--no-verify", "-m"]
    steps = []
    if not has_git:
        steps.append(("git init", ["git", "init", "--quiet", "--initial-branch=main"]))
    steps += [
        ("lock dependencies", ["uv", "lock"]),
        ("install environment", ["uv", "sync"]),
    ]
    if not has_dvc:
        steps.append(("dvc init", ["uv", "run", "dvc", "init", "--quiet"]))
    steps += [
        ("dvc autostage", ["uv", "run", "dvc", "config", "core.autostage", "true"]),
        (
            "dvc remote",
            ["uv", "run", "dvc", "remote", "add", "--default", "--force", "storage", remote_url],
        ),
        ("git hooks", ["uv", "run", "pre-commit", "install"]),
        # Commit the code first: the pipeline's trackers record the git revision they ran on.
        ("stage files", ["git", "add", "--all"]),
        ("first commit", [*commit, "Initial commit from the ML CI/CD template"]),
        ("first pipeline run", ["uv", "run", "dvc", "repro"]),
    ]
    if answers["dvc_remote"] == "local":
        steps.append(("push data and models", ["uv", "run", "dvc", "push"]))
    steps += [
        ("stage baseline", ["git", "add", "--all"]),
        ("baseline commit", [*commit, "Baseline pipeline run: dvc.lock and metrics"]),
    ]
    return steps


def main() -> int:
    problems = missing_tools()
    if problems:
        print(
            "post-copy: cannot set up the repository:\n  - " + "\n  - ".join(problems),
            file=sys.stderr,
        )
        print(
            f"post-copy: the files are rendered in {Path.cwd()}; after installing the tools, "
            "run the remaining set-up by hand (see the README's 'What is where').",
            file=sys.stderr,
        )
        return 1
    answers = yaml.safe_load(Path(".copier-answers.yml").read_text())
    local = answers["dvc_remote"] == "local"
    remote_url = (
        str(local_remote_dir(answers["project_slug"])) if local else answers["dvc_remote_url"]
    )
    steps = plan(answers, remote_url, Path(".git").exists(), Path(".dvc").exists())
    for index, (description, command) in enumerate(steps):
        print(f"[post-copy] {description}: {shlex.join(command)}", flush=True)
        code = subprocess.run(command).returncode
        if code != 0:
            remaining = "\n".join(f"    {shlex.join(c)}" for _, c in steps[index:])
            print(
                f"post-copy: step '{description}' failed (exit {code}). Fix the cause, then "
                f"finish the set-up in {Path.cwd()} with:\n{remaining}",
                file=sys.stderr,
            )
            return 1
    if not local:
        print(
            f"[post-copy] not pushed: configure credentials for {remote_url}, then run "
            "`uv run poe push`"
        )
    print("[post-copy] done: the repository is committed and its pipeline is green")
    return 0


if __name__ == "__main__":
    sys.exit(main())
