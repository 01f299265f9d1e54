"""Copy-time task: turn a freshly rendered directory into a working, versioned repository.

Runs in the destination directory after `copier copy` (never during `copier update`):
git init, uv lock and sync, dvc init with the chosen remote, a first `dvc repro`, a push to the
default local remote, pre-commit hooks, and the first commit with dvc.lock and the baseline
metrics. Each step says what it does; a failure names the step, the command and how to resume.

Copied into an existing directory or repository, it commits only what the template and the
set-up wrote (files that were there before stay out of its commits) and keeps an existing DVC
remote. What was there before is recorded in .git/ when the set-up starts, so a set-up that was
interrupted and is run again (the same `copier copy`, or this script) tells its own files and
the team's apart, and resumes: a repository whose first commit exists but not its baseline
commit gets the pipeline run, the push and the baseline commit. Under `copier recopy` of a
repository already set up (its baseline committed) it does nothing: the recopy is reviewed and
committed like an update.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2
import yaml

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
# A teammate's clone finds its interpreter with the generated repository's own script
# (`python3 scripts/bootstrap.py`); the copy finds it with that same code.
sys.path.insert(0, str(TEMPLATE_ROOT / "template" / "scripts"))
from bootstrap import find_python  # noqa: E402

# The data set every stage reads: the bundled sample, until adopt-data makes it the team's.
RAW_DATA = "data/raw/dataset.csv"

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


def no_python_message(version: str) -> str:
    return (
        f"post-copy: Python {version} (the python_version answer) is not installed here and "
        f"could not be downloaded: install it (`uv python install {version}`, pyenv or your "
        f"package manager), or copy again with `--data python_version=X.Y` naming an installed "
        "version; nothing was set up yet."
    )


def git_identity(answers: dict) -> list[str]:
    """Use the configured git identity; fall back to the template's author answers."""
    args = []
    for key, answer in (("user.name", "author_name"), ("user.email", "author_email")):
        configured = subprocess.run(["git", "config", key], capture_output=True, text=True)
        if not configured.stdout.strip():
            args += ["-c", f"{key}={answers[answer]}"]
    return args


def template_paths(answers: dict, root: Path = TEMPLATE_ROOT) -> set[str]:
    """Paths the template may write with these answers: its file names rendered as Copier
    renders them (a name that renders empty is not written); every parent directory too."""
    settings = yaml.safe_load((root / "copier.yml").read_text(encoding="utf-8"))
    source = root / settings.get("_subdirectory", "")
    suffix = settings.get("_templates_suffix", ".jinja")
    context = {
        **answers,
        "_copier_conf": {"answers_file": settings.get("_answers_file", ".copier-answers.yml")},
    }
    environment = jinja2.Environment()
    paths = set()
    for path in source.rglob("*"):
        parts = [
            environment.from_string(part).render(context) for part in path.relative_to(source).parts
        ]
        if path.is_file() and all(parts):
            name = "/".join(parts)
            paths.add(name.removesuffix(suffix))
    return paths | {str(parent) for p in paths for parent in Path(p).parents} - {"."}


def files_not_from_template(answers: dict, has_git: bool) -> list[str]:
    """Files that were in the destination before the copy (untracked, or tracked with
    uncommitted changes) and that the template does not write: they stay out of the commits."""
    if has_git:
        listed = subprocess.run(
            ["git", "ls-files", "--others", "--modified", "--exclude-standard"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    else:
        listed = [str(p) for p in Path().rglob("*") if p.is_file()]
    written = template_paths(answers)
    return sorted(
        path
        for path in set(listed)
        if path not in written and not any(str(parent) in written for parent in Path(path).parents)
    )


def has_dvc_remote(config: Path = Path(".dvc") / "config") -> bool:
    """Whether the repository already names a DVC remote (it is the team's: keep it)."""
    return config.is_file() and bool(
        re.search(r"^\s*\[\s*'?remote\s+\"", config.read_text(), re.MULTILINE)
    )


def dvc_step(parts: list[tuple[str, list[str]]]) -> tuple[str, list[str]]:
    """One step for several DVC commands, as (description, command), stopping at the first that
    fails: a single `uv run dvc ...`, or DVC's own CLI called in turn in one interpreter of the
    project's environment, which imports DVC once instead of once per command."""
    description = ", ".join(name for name, _ in parts)
    commands = [arguments for _, arguments in parts]
    if len(commands) == 1:
        return description, ["uv", "run", "dvc", *commands[0]]
    # A JSON list of strings is a Python literal too, and in double quotes it reads plainly
    # inside the shell's single quotes of the printed command.
    listed = json.dumps(commands, ensure_ascii=False)
    script = (
        "import sys; from dvc.cli import main; "
        f"sys.exit(next((code for code in map(main, {listed}) if code), 0))"
    )
    return description, ["uv", "run", "python", "-c", script]


def plan(
    answers: dict,
    remote_url: str,
    has_git: bool,
    has_dvc: bool,
    keep_remote: bool = False,
    keep_out: list[str] | tuple[str, ...] = (),
    data: str = "absent",
) -> list[tuple[str, list[str]]]:
    """The set-up steps, in order, as (description, command). keep_remote: the repository
    has a DVC remote already (nothing added, nothing pushed); keep_out: files never staged;
    data: RAW_DATA is "absent" (the bundled sample is written and put under DVC), "untracked"
    (there already: put under DVC as it is) or "tracked" (its .dvc file exists: left alone)."""
    commit = ["git", *git_identity(answers), "commit", "--quiet", "--no-verify", "-m"]
    stage = ["git", "add", "--all", "--", ".", *(f":(exclude,literal){p}" for p in keep_out)]
    dvc_setup = [] if has_dvc else [("dvc init", ["init", "--quiet"])]
    dvc_setup.append(("dvc autostage", ["config", "core.autostage", "true"]))
    if not keep_remote:
        # --force: a set-up run again after an interruption finds its own remote there.
        remote = ["remote", "add", "--force", "--default", "storage", remote_url]
        dvc_setup.append(("dvc remote", remote))
    if data != "tracked":
        # The data set is a DVC-tracked file (RAW_DATA.dvc, the team's), not a pipeline stage:
        # adopt-data replaces it with the team's table without touching dvc.yaml.
        dvc_setup.append(("track the data", ["add", RAW_DATA]))
    first_run = [("first pipeline run", ["repro"])]
    if answers["dvc_remote"] == "local" and not keep_remote:
        first_run.append(("push data and models", ["push"]))
    steps = []
    if not has_git:
        steps.append(("git init", ["git", "init", "--quiet", "--initial-branch=main"]))
    steps += [
        ("lock dependencies", ["uv", "lock"]),
        ("install environment", ["uv", "sync"]),
    ]
    if data == "absent":
        sample = ["uv", "run", "python", "-m", answers["package_name"], "make-data"]
        steps.append(("bundled sample data", [*sample, "--out", RAW_DATA]))
    steps += [
        dvc_step(dvc_setup),
        ("git hooks", ["uv", "run", "pre-commit", "install"]),
        # Commit the code first: the pipeline's trackers record the git revision they ran on.
        ("stage files", stage),
        ("first commit", [*commit, "Initial commit from the ML CI/CD template"]),
        dvc_step(first_run),
        ("stage baseline", stage),
        ("baseline commit", [*commit, "Baseline pipeline run: dvc.lock and metrics"]),
    ]
    return steps


# What the first run of the set-up found in the destination (.git/ is never committed).
SETUP_RECORD = Path(".git") / "mlops-template-setup.json"


def recorded_setup() -> dict | None:
    """What an earlier, interrupted run of the set-up found before it wrote anything."""
    try:
        return json.loads(SETUP_RECORD.read_text())
    except (OSError, ValueError):
        return None


def resume_plan(answers: dict, keep_remote: bool, keep_out: list[str]) -> list:
    """The steps after the first commit, for a set-up interrupted after it: the environment,
    the first pipeline run (and push), and the baseline commit, which takes uv.lock too when
    an earlier run left it out."""
    steps = plan(answers, "", True, True, keep_remote, keep_out, data="tracked")
    names = [name for name, _ in steps]
    first_run = next(i for i, name in enumerate(names) if name.startswith("first pipeline run"))
    return [step for step in steps if step[0] == "install environment"] + steps[first_run:]


def committed(path: str) -> bool:
    return (
        subprocess.run(["git", "cat-file", "-e", f"HEAD:{path}"], capture_output=True).returncode
        == 0
    )


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
    has_git = Path(".git").exists()
    record = recorded_setup() if has_git else None
    resuming = has_git and committed(".copier-answers.yml")
    if resuming and (committed("dvc.lock") or record is None):
        print(
            "[post-copy] this repository is already set up (.copier-answers.yml is committed): "
            "review what the recopy changed with `git diff`, run `uv run poe ci`, and commit"
        )
        return 0
    # uv would otherwise try to download a missing interpreter (a DNS error offline), or pick
    # a pyenv shim that cannot run: give it one that works, before anything is set up.
    version = answers["python_version"]
    python = find_python(version)
    if python is None:
        installed = subprocess.run(["uv", "python", "install", version], capture_output=True)
        python = find_python(version) if installed.returncode == 0 else None
    if python is None:
        print(no_python_message(version), file=sys.stderr)
        return 1
    os.environ["UV_PYTHON"] = python
    local = answers["dvc_remote"] == "local"
    remote_url = (
        str(local_remote_dir(answers["project_slug"])) if local else answers["dvc_remote_url"]
    )
    if record is not None:  # a set-up run before and interrupted: its own files are not kept
        keep_remote, keep_out = record["keep_remote"], record["keep_out"]
        print("[post-copy] resuming the set-up an earlier run started (.git/ records it)")
    else:
        keep_remote = has_dvc_remote()
        keep_out = files_not_from_template(answers, has_git)
    if keep_remote:
        print("[post-copy] keeping the repository's DVC remote (.dvc/config); nothing pushed")
    if keep_out:
        print(f"[post-copy] not committed, they were here before the copy: {' '.join(keep_out)}")
    data = (
        "tracked"
        if Path(f"{RAW_DATA}.dvc").exists()
        else "untracked"
        if Path(RAW_DATA).exists()
        else "absent"
    )
    if resuming:
        steps = resume_plan(answers, keep_remote, keep_out)
    else:
        has_dvc = Path(".dvc").exists()
        steps = plan(answers, remote_url, has_git, has_dvc, keep_remote, keep_out, data)
    for index, (description, command) in enumerate(steps):
        if record is None and Path(".git").is_dir():  # from the start, or once `git init` ran
            record = {"keep_remote": keep_remote, "keep_out": keep_out}
            SETUP_RECORD.write_text(json.dumps(record))
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
    if not local and not keep_remote:
        print(
            f"[post-copy] not pushed: configure credentials for {remote_url}, then run "
            "`uv run poe push`"
        )
    SETUP_RECORD.unlink(missing_ok=True)
    print("[post-copy] done: the repository is committed and its pipeline is green")
    return 0


if __name__ == "__main__":
    sys.exit(main())
