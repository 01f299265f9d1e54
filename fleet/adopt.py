"""`fleet adopt PATH_OR_URL`: bring an existing repository (cruft, cookiecutter-data-science or
hand-made) under the template without losing any of the team's files (docs/platform-teams.md,
"Adopting existing repositories").

Everything is worked out before anything is written: the answers (each with where it came from),
the template rendered in a temporary directory, the team's files it would keep, merge or move,
the merged .gitignore checked with git and the team's dependencies locked with the template's by
uv. Any blocker stops it there (exit 2, nothing written). Then it writes, one reviewable commit
at a time: the template as rendered, the merges and moves, the formatting of the team's code, and
the DVC set-up with the team's data set (through the repository's own `adopt-data`).
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pathspec
import yaml

from fleet import existing
from fleet.existing import ADOPTION_COMMIT, ADOPTION_DONE, Derived
from fleet.repos import URL
from fleet.team_sections import GITIGNORE_MARKER, TEAM_TASK, TEAM_TASK_NAME

TEMPLATE_ROOT = Path(__file__).resolve().parents[1]
ANSWERS_FILE = ".copier-answers.yml"
MERGED = (".gitignore", "pyproject.toml")  # the template's version with the team's content in
RETIRED = ".cruft.json"  # its answers become the derived ones; it leaves with a commit
RAW_DATA = "data/raw/dataset.csv"  # the pipeline's data set (hooks/post_copy.py)
# Paths DVC and the pipeline commit: no team ignore rule may hide them.
DVC_FILES = (
    "dvc.lock",
    ".dvc/config",
    ".dvc/.gitignore",
    f"{RAW_DATA}.dvc",
    "data/raw/.gitignore",
    "data/.gitignore",
    "models/.gitignore",
    "reports/.gitignore",
    "uv.lock",
)
ASKED = (
    "project_name",
    "package_name",
    "description",
    "author_name",
    "author_email",
    "python_version",
    "license",
    "ci_providers",
)


@cache
def _module(path: Path):
    """A file of the template checkout as a module: extensions.py (slugs and packages named as
    copier.yml names them), hooks/post_copy.py (the interpreter and DVC remote of the set-up)."""
    spec = importlib.util.spec_from_file_location(f"fleet_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extensions():
    return _module(TEMPLATE_ROOT / "extensions.py")


def post_copy():
    return _module(TEMPLATE_ROOT / "hooks" / "post_copy.py")


class Blocked(Exception):
    """Adoption cannot go on; nothing was written."""


@dataclass
class Plan:
    repo: Path
    kind: str
    answers: dict[str, Derived] = field(default_factory=dict)
    blockers: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)  # team packages moved under src/
    dependencies: list[tuple[str, str]] = field(default_factory=list)  # (requirement, source)
    template_has: list[str] = field(default_factory=list)  # team deps the template pins already
    added: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # team files the template leaves to the team
    merged: list[str] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)
    retired: list[str] = field(default_factory=list)
    ignore_notes: list[str] = field(default_factory=list)
    ci_commands: list[tuple[str, str]] = field(default_factory=list)  # (command, its CI file)
    ci_left: list[str] = field(default_factory=list)  # the team's CI commands not run by poe
    warnings: list[str] = field(default_factory=list)
    data: Path | None = None
    target: str | None = None
    work: Path | None = None  # temporary: render/ (as rendered) and merge/ (merged, locked)

    @property
    def package(self) -> str:
        return str(self.answers["package_name"].value)

    def data_answers(self) -> dict:
        return {key: derived.value for key, derived in self.answers.items()}


def git(repo: Path, *args: str, check: bool = True) -> str:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise Blocked(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def team_files(repo: Path) -> dict[str, str]:
    """Every file in the working tree (tracked, untracked and ignored; .git aside) -> sha256:
    what must still be there, byte for byte, unless the plan merges, moves or formats it."""
    found = {}
    for root, dirs, files in os.walk(repo):
        dirs[:] = [d for d in dirs if not (Path(root) == repo and d == ".git")]
        for name in files:
            path = Path(root, name)
            if path.is_file():
                found[path.relative_to(repo).as_posix()] = hashlib.sha256(
                    path.read_bytes()
                ).hexdigest()
    return found


# Deriving the answers -----------------------------------------------------------------------


def derive(repo: Path, overrides: dict[str, str], ask) -> dict[str, Derived]:
    """The answers: the repository's own, then --answer's, then the team's (interactive)."""
    found = existing.answers(repo)
    for key, value in overrides.items():
        found[key] = Derived(value.split(",") if key == "ci_providers" else value, "--answer")
    taken = set(existing.team_packages(repo)) | set(existing.src_packages(repo))
    for key in ASKED:
        if key == "package_name" and key not in found:
            slug = extensions().slug_from_name(str(found["project_name"].value)) or "model"
            package = extensions().package_from_slug(slug)
            source = "from the project name"
            if package in taken:
                package, source = f"{package}_pipeline", f"'{package}' is the team's package"
            found["package_name"] = Derived(package, source)
        if ask and key in found:
            found[key] = ask(key, found[key])
        elif ask:
            answer = ask(key, None)
            if answer is not None:
                found[key] = answer
    slug = extensions().slug_from_name(str(found["project_name"].value))
    found.setdefault("project_slug", Derived(slug, "from the project name"))
    return found


def prompt(key: str, derived: Derived | None) -> Derived | None:
    """Ask for one answer on the terminal; Enter keeps the derived one."""
    shown = derived.value if derived else ""
    if isinstance(shown, list):
        shown = ",".join(shown)
    where = f" ({derived.source})" if derived else " (copier.yml's default)"
    typed = input(f"{key} [{shown}]{where}: ").strip()
    if not typed:
        return derived
    return Derived(typed.split(",") if key == "ci_providers" else typed, "typed")


# Planning -----------------------------------------------------------------------------------


def plan(
    repo: Path,
    *,
    template: str,
    vcs_ref: str | None,
    data: Path | None,
    target: str | None,
    overrides: dict[str, str],
    ask=None,
) -> Plan:
    """Everything adoption would do, with its blockers; writes only to a temporary directory
    (the caller removes plan.work)."""
    result = Plan(repo, existing.kind(repo) if repo.is_dir() else "missing")
    if not (repo / ".git").exists():
        result.blockers.append(f"{repo}: not a git repository (adopt works on a git checkout)")
        return result
    if git(repo, "status", "--porcelain"):
        result.blockers.append(
            "uncommitted changes (git status): commit or stash them first, so that the "
            "adoption's commits hold only what it did"
        )
    if (repo / ANSWERS_FILE).exists():
        result.blockers.append(
            f"{ANSWERS_FILE} exists: the repository is adopted already (use `copier update`)"
        )
    # Nothing is asked of a repository that cannot be adopted as it is.
    result.answers = derive(repo, overrides, None if result.blockers else ask)
    result.data, result.target = data, target
    check_packages(result)
    check_data(result)
    if result.blockers:
        return result
    result.work = Path(tempfile.mkdtemp(prefix="fleet-adopt-"))
    try:
        render(result, template, vcs_ref)
    except Exception as error:  # copier's validators and errors, one line each
        result.blockers.append(f"the template cannot be rendered with these answers: {error}")
        return result
    check_outputs(result)
    sort_files(result)
    merge_gitignore(result)
    sort_ci_commands(result)
    if not result.blockers:
        lock_dependencies(result)
    return result


def check_packages(plan: Plan) -> None:
    repo, package = plan.repo, plan.package
    at_top = existing.team_packages(repo)
    in_src = existing.src_packages(repo)
    if package in at_top or package in in_src or (repo / f"{package}.py").exists():
        where = f"src/{package}" if package in in_src else package
        plan.blockers.append(
            f"the team's package {where} would shadow src/{package}, the template's package: "
            "choose another package_name (--answer package_name=NAME)"
        )
    for name in at_top:
        if (repo / "src" / name).exists():
            plan.blockers.append(f"{name}/ cannot move to src/{name}: that path exists")
    plan.packages = [name for name in at_top if name != package]
    if (repo / "src" / "__init__.py").exists():
        plan.blockers.append(
            "src/__init__.py makes src/ a package itself: the template's src/ layout cannot "
            "be installed with it; remove it (or move the code) first"
        )
    for name in plan.packages:
        for module in sorted((repo / name).rglob("*.py")):
            if "__file__" in module.read_text(errors="replace"):
                plan.warnings.append(
                    f"{module.relative_to(repo)} uses __file__: paths it builds from it are one "
                    f"folder deeper after the move to src/{name}"
                )


def check_data(plan: Plan) -> None:
    if (plan.data is None) != (plan.target is None):
        plan.blockers.append("--data and --target go together")
        return
    raw = plan.repo / RAW_DATA
    if raw.exists():
        plan.blockers.append(
            f"{RAW_DATA} exists: it is the path of the pipeline's data set; move the file and "
            "pass it with --data (adopt-data writes that path)"
        )
    if plan.data is None:
        return
    if not plan.data.is_file():
        plan.blockers.append(f"--data {plan.data}: no such file")
        return
    with plan.data.open(newline="", encoding="utf-8", errors="replace") as table:
        header = next(csv.reader(table), [])
    if plan.target not in header:
        plan.blockers.append(
            f"--target {plan.target}: not a column of {plan.data.name} ({', '.join(header)})"
        )


def render(plan: Plan, template: str, vcs_ref: str | None) -> None:
    """The template with the answers, tasks skipped, in plan.work/render (what commit 1 holds)."""
    import copier

    copier.run_copy(
        template,
        str(plan.work / "render"),
        data=plan.data_answers(),
        vcs_ref=vcs_ref,
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
    )


def rendered_files(plan: Plan) -> list[str]:
    root = plan.work / "render"
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def pipeline_outputs(plan: Plan) -> dict[str, tuple[str, bool]]:
    """dvc.yaml's outputs as rendered -> (the stage writing it, whether git keeps it: an
    output with `cache: false` is committed, the others are in DVC's cache)."""
    pipeline = yaml.safe_load((plan.work / "render" / "dvc.yaml").read_text())
    names = {}
    for variables in pipeline.get("vars", []):
        names.update(variables)
    outputs = {}
    for stage, definition in pipeline["stages"].items():
        for entry in definition.get("outs", []) + definition.get("metrics", []):
            path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            path = re.sub(r"\$\{(\w+)\}", lambda m: str(names[m[1]]), path)
            outputs[path] = (stage, (options or {}).get("cache") is False)
    return outputs


def check_outputs(plan: Plan) -> None:
    """A team file where the pipeline writes would be overwritten (or deleted by DVC)."""
    for output, (stage, _) in pipeline_outputs(plan).items():
        path = plan.repo / output
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in found:
            plan.blockers.append(
                f"{file.relative_to(plan.repo)} is at a pipeline output path (the {stage} stage "
                f"writes {output}): move it elsewhere first"
            )


def moved_name(path: str) -> str:
    """Where a team file goes when the template writes its path: beside it, named as the
    team's (test files keep the test_ prefix pytest collects; a Python module stays importable:
    the template's tests/conftest.py loads tests/team_conftest.py)."""
    name = Path(path)
    if name.name.startswith("test_"):
        return name.with_name("test_team_" + name.name[5:]).as_posix()
    return name.with_name(("team_" if name.suffix == ".py" else "team-") + name.name).as_posix()


def team_owned(plan: Plan) -> pathspec.PathSpec:
    """copier.yml's _skip_if_exists: files the template leaves to the team where they exist."""
    settings = yaml.safe_load((TEMPLATE_ROOT / "copier.yml").read_text())
    globs = settings["_skip_if_exists"]
    lines = [line.replace("{{ package_name }}", plan.package) for line in globs]
    return pathspec.PathSpec.from_lines("gitwildmatch", lines)


def sort_files(plan: Plan) -> None:
    owned = team_owned(plan)
    for path in rendered_files(plan):
        ours = plan.repo / path
        if any((plan.repo / parent).is_file() for parent in Path(path).parents):
            plan.blockers.append(f"{path}: the template writes it where the team has a file")
        elif ours.is_dir():
            plan.blockers.append(f"{path}: the template writes a file where the team has a folder")
        elif not ours.exists():
            plan.added.append(path)
        elif owned.match_file(path):
            plan.kept.append(path)
        elif path in MERGED:
            plan.merged.append(path)
        else:
            new = moved_name(path)
            if (plan.repo / new).exists():
                plan.blockers.append(f"{path}: the template writes it and {new} exists too")
            plan.moved[path] = new
    if (plan.repo / RETIRED).exists():
        plan.retired.append(RETIRED)


def must_stay_visible(plan: Plan) -> list[str]:
    """Paths that are committed after adoption: no ignore rule may hide them."""
    outputs = [
        path if Path(path).suffix else f"{path}/metrics.json"
        for path, (_, committed) in pipeline_outputs(plan).items()
        if committed
    ]
    moved_packages = [
        f"src/{name}/{p.relative_to(plan.repo / name).as_posix()}"
        for name in plan.packages
        for p in (plan.repo / name).rglob("*.py")
    ]
    return sorted(
        {*rendered_files(plan), *plan.moved.values(), *DVC_FILES, *outputs, *moved_packages}
        - {".gitignore"}
    )


def ignored(root: Path, paths: list[str]) -> list[str]:
    """Which of `paths` root's .gitignore hides, as git itself decides."""
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=root,
        input="\n".join(paths),
        capture_output=True,
        text=True,
    )
    return result.stdout.splitlines()


def merge_gitignore(plan: Plan) -> None:
    """The template's .gitignore, then every team rule in its section for them (below its
    marker: not drift): a folder rule that would hide DVC's files is narrowed to the folder's
    contents minus .dvc and .gitignore files; any other rule that would hide a committed file
    is kept as a comment, saying why."""
    team = plan.repo / ".gitignore"
    if ".gitignore" not in plan.merged:
        return
    visible = must_stay_visible(plan)
    lines = []
    for line in team.read_text().splitlines():
        rule = line.strip()
        if not rule or rule.startswith(("#", "!")):
            lines.append(line)
            continue
        hidden = [p for p in visible if pathspec.GitIgnoreSpec.from_lines([rule]).match_file(p)]
        if not hidden:
            lines.append(line)
            continue
        base = rule.rstrip("/")
        narrowed = [f"{base}/**", f"!{base}/**/", f"!{base}/**/*.dvc", f"!{base}/**/.gitignore"]
        spec = pathspec.GitIgnoreSpec.from_lines(narrowed)
        if "*" not in base and not any(spec.match_file(p) for p in visible):
            note = f"# fleet adopt narrowed `{rule}`: DVC's files in it are committed"
            lines += [note, *narrowed]
            plan.ignore_notes.append(f"`{rule}` narrowed: DVC's .dvc and .gitignore files in it")
        else:
            lines.append(f"# fleet adopt: `{rule}` would hide {hidden[0]}, which is committed")
            lines.append(f"# {line}")
            plan.ignore_notes.append(f"`{rule}` commented out: it would hide {hidden[0]}")
    # The team's rules go in the template's section for them, so that they are not drift.
    rendered = (plan.work / "render" / ".gitignore").read_text()
    if GITIGNORE_MARKER not in rendered.splitlines():  # a release from before the section
        rendered += f"\n{GITIGNORE_MARKER}\n"
    text = rendered + "\n".join(lines) + "\n"
    check = plan.work / "ignore-check"
    check.mkdir()
    git(check, "init", "--quiet")
    (check / ".gitignore").write_text(text)
    still = ignored(check, visible)
    if still:
        plan.blockers.append(f".gitignore: the merged rules still hide {', '.join(still)}")
    (plan.work / "gitignore").write_text(text)


# Commands of the team's CI that set up an environment: `uv sync` (the template's) replaces them.
INSTALLS = re.compile(
    r"^(sudo )?(python3? -m )?(pip3?|conda|mamba|micromamba|poetry|pipenv|apt|apt-get) "
    r"|^uv (sync|venv|pip|lock)\b|^(source|\.) .*activate"
)


def sort_ci_commands(plan: Plan) -> None:
    """The team's CI commands: the ones the template's `ci` does not run already go in its
    team-checks task; environment set-up is left to `uv sync`; a command using the CI's own
    expressions (`${{ ... }}`) cannot run outside it and is only listed."""
    rendered = (plan.work / "render" / "pyproject.toml").read_text()
    tasks = tomllib.loads(rendered).get("tool", {}).get("poe", {}).get("tasks", {})
    template_runs = {
        task["cmd"]: name
        for name, task in tasks.items()
        if isinstance(task, dict) and "cmd" in task
    }
    for command, source in existing.ci_commands(plan.repo):
        plain = re.sub(r"^python3? -m ", "", command)
        if plain in template_runs:
            plan.ci_left.append(
                f"{command} ({source}): `poe ci` runs it (`{template_runs[plain]}`)"
            )
        elif INSTALLS.search(command):
            plan.ci_left.append(f"{command} ({source}): environment set-up, `uv sync` does it")
        elif "${{" in command:
            plan.ci_left.append(f"{command} ({source}): uses the CI's expressions, run it there")
        else:
            plan.ci_commands.append((command, source))
    if plan.ci_commands and not TEAM_TASK.search(rendered):
        plan.warnings.append(
            f"this template release has no {TEAM_TASK_NAME} task: the team's CI commands stay "
            "in its moved CI files only"
        )
        plan.ci_commands = []


def with_team_checks(plan: Plan, pyproject: str) -> str:
    """The template's pyproject.toml with the team's CI commands in its team-checks task."""
    if not plan.ci_commands:
        return pyproject
    steps = ", ".join(f"{{ shell = {json.dumps(command)} }}" for command, _ in plan.ci_commands)
    sources = ", ".join(dict.fromkeys(source for _, source in plan.ci_commands))
    help_text = json.dumps(f"The team's CI commands (from {sources}), run last by ci")
    line = f"{TEAM_TASK_NAME} = {{ sequence = [{steps}], help = {help_text} }}"
    return TEAM_TASK.sub(lambda _: line, pyproject, count=1)


def lock_dependencies(plan: Plan) -> None:
    """The template's pyproject.toml with the team's packages installed beside its own and the
    team's dependencies added, locked with uv in plan.work/merge (a blocker if they cannot be
    resolved together)."""
    merge = plan.work / "merge"
    shutil.copytree(plan.work / "render", merge)
    pyproject = merge / "pyproject.toml"
    text = with_team_checks(plan, pyproject.read_text())
    pyproject.write_text(text)
    modules = [plan.package, *plan.packages, *(p for p in existing.src_packages(plan.repo))]
    if len(modules) > 1:
        listed = ", ".join(json.dumps(m) for m in modules)
        text = text.replace(f'module-name = "{plan.package}"', f"module-name = [{listed}]")
        pyproject.write_text(text)
    template_names = {
        re.split(r"[<>=!~\[; ]", line.strip().strip('",'))[0].lower().replace("_", "-")
        for line in text.splitlines()
        if line.startswith('    "')
    }
    team = existing.requirements(plan.repo)
    own = str(existing._pyproject(plan.repo).get("project", {}).get("name", "")).lower()
    for requirement, source in team:
        name = requirement.name.lower().replace("_", "-")
        if name == own.replace("_", "-"):
            continue
        if name in template_names:
            plan.template_has.append(f"{requirement} ({source})")
        else:
            plan.dependencies.append((str(requirement), source))
    environment = uv_environment(plan)
    command = ["uv", "add", "--no-sync", *(r for r, _ in plan.dependencies)]
    if not plan.dependencies:
        command = ["uv", "lock"]
    result = subprocess.run(command, cwd=merge, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        reason = [
            line
            for line in result.stderr.splitlines()
            if line.strip() and not line.startswith(("hint:", "Using ", "Resolved "))
        ]
        plan.blockers.append(
            "the team's dependencies cannot be locked with the template's: "
            + (" ".join(r.strip(" ×╰─▶") for r in reason) or f"`{shlex.join(command)}` failed")
        )


@cache
def _python(version: str) -> str | None:
    return post_copy().find_python(version)


def uv_environment(plan: Plan) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT")}
    python = _python(str(plan.answers.get("python_version", Derived("3.12", "")).value))
    if python:
        env["UV_PYTHON"] = python
    return env


def describe(plan: Plan) -> str:
    lines = [f"{plan.repo}: {plan.kind} repository", "", "Answers (and where each came from):"]
    if not plan.answers:  # refused before reading it
        return lines[0]
    for key, derived in plan.answers.items():
        value = ",".join(derived.value) if isinstance(derived.value, list) else derived.value
        lines.append(f"  {key}: {value}    <- {derived.source}")
    sections = [
        ("Files the template adds", plan.added),
        ("Team files kept as they are (the template leaves them to the team)", plan.kept),
        ("Team files merged with the template's", plan.merged + plan.ignore_notes),
        ("Team files moved beside the template's", [f"{a} -> {b}" for a, b in plan.moved.items()]),
        ("Team packages moved under src/ (still imported by their name)",
         [f"{name}/ -> src/{name}/" for name in plan.packages]),
        ("Team dependencies added to pyproject.toml and uv.lock",
         [f"{r} ({s})" for r, s in plan.dependencies]),
        ("Team dependencies the template already has (its version kept)", plan.template_has),
        (f"The team's CI commands, run last by `poe ci` ({TEAM_TASK_NAME} task)",
         [f"{command} ({source})" for command, source in plan.ci_commands]),
        ("The team's CI commands not in poe", plan.ci_left),
        ("Retired (its answers are the ones above; it stays in git history)", plan.retired),
        ("Check", plan.warnings),
    ]  # fmt: skip
    for title, entries in sections:
        if entries:
            lines += ["", f"{title}:", *(f"  {entry}" for entry in entries)]
    data = (
        f"{plan.data} becomes the data set (adopt-data --target {plan.target}), DVC-tracked, "
        "pushed nowhere"
        if plan.data
        else f"no --data: the template's sample is written to {RAW_DATA}"
    )
    lines += ["", f"Data: {data}"]
    return "\n".join(lines)


# Writing ------------------------------------------------------------------------------------


def identity(plan: Plan) -> list[str]:
    """The configured git identity, else the author answers (as the copy-time set-up does)."""
    args = []
    for key, answer in (("user.name", "author_name"), ("user.email", "author_email")):
        if not git(plan.repo, "config", key, check=False).strip():
            value = plan.answers.get(answer)
            args += ["-c", f"{key}={value.value if value else 'fleet adopt'}"]
    return args


def commit(plan: Plan, paths: list[str], message: str) -> bool:
    """Stage exactly `paths` (ignored ones too) and commit them; False when nothing changed."""
    if paths:
        git(plan.repo, "add", "--force", "--all", "--", *paths)
    if not git(plan.repo, "diff", "--cached", "--name-only").strip():
        return False
    git(plan.repo, *identity(plan), "commit", "--quiet", "--no-verify", "-m", message)
    return True


def run(plan: Plan, *command: str, env: dict[str, str]) -> None:
    print(f"[fleet adopt] $ {shlex.join(command)}", flush=True)
    result = subprocess.run(command, cwd=plan.repo, env=env)
    if result.returncode != 0:
        raise subprocess.CalledProcessError(result.returncode, command)


def execute(plan: Plan, template_label: str) -> list[str]:
    """Write the plan, one commit per kind of change; the commits' subjects."""
    repo, render_dir, merge_dir = plan.repo, plan.work / "render", plan.work / "merge"
    before = team_files(repo)
    tracked_before = set(git(repo, "ls-files", "-z").split("\0")) - {""}
    saved = {path: (repo / path).read_bytes() for path in plan.moved}
    subjects = []

    # 1. What the template rendered, as it rendered it.
    written = [p for p in rendered_files(plan) if p not in plan.kept]
    for path in written:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(render_dir / path, repo / path)
    subject = f"{ADOPTION_COMMIT}the template's files as rendered ({template_label})"
    kept = f"; kept the team's {', '.join(plan.kept)}" if plan.kept else ""
    commit(plan, written, f"{subject}\n\nCopier's render with the answers in {ANSWERS_FILE}{kept}.")
    subjects.append(subject)

    # 2. The team's files merged and moved back in.
    touched = []
    for path, new in plan.moved.items():
        (repo / new).write_bytes(saved[path])
        if path in tracked_before:  # an untracked or ignored one stays out of git
            touched.append(new)
        else:
            plan.warnings.append(f"{new} (was {path}) is not committed, as before: ignore it")
    for name in plan.packages:
        (repo / "src").mkdir(exist_ok=True)
        (repo / name).rename(repo / "src" / name)
        touched += [name, f"src/{name}"]
    if ".gitignore" in plan.merged:
        shutil.copy2(plan.work / "gitignore", repo / ".gitignore")
        touched.append(".gitignore")
    for path in ("pyproject.toml", "uv.lock"):
        shutil.copy2(merge_dir / path, repo / path)
        touched.append(path)
    body = []
    for path in plan.retired:
        recorded = (repo / path).read_text()
        body.append(f"Retired {path} (its answers are in {ANSWERS_FILE}):\n{recorded}")
        git(repo, "rm", "--quiet", "--", path)
    subject = f"{ADOPTION_COMMIT}the team's files merged and moved"
    commit(plan, touched, subject + ("\n\n" + "\n".join(body) if body else ""))
    subjects.append(subject)

    # 3. The team's files formatted as the template's lint (`poe lint`) wants them.
    env = uv_environment(plan)
    run(plan, "uv", "sync", "--quiet", env=env)
    renamed = {**{f: f for f in tracked_before}, **{old: new for old, new in plan.moved.items()}}
    for name in plan.packages:
        renamed.update({f: f"src/{f}" for f in tracked_before if f.startswith(f"{name}/")})
    formatted = format_team_files(plan, renamed, env)
    subject = (
        f"{ADOPTION_COMMIT}the team's files formatted (ruff; end-of-file, trailing whitespace)"
    )
    if commit(plan, formatted, subject):
        subjects.append(subject)

    # 4. DVC, the data set, the first pipeline run (DVC's set-up as the copy-time one does it,
    # in one interpreter; an existing remote is the team's and stays the default).
    setup = [] if (repo / ".dvc").exists() else [("dvc init", ["init", "--quiet"])]
    setup.append(("dvc autostage", ["config", "core.autostage", "true"]))
    if not post_copy().has_dvc_remote(repo / ".dvc" / "config"):
        remote = post_copy().local_remote_dir(str(plan.answers["project_slug"].value), env)
        setup.append(("dvc remote", ["remote", "add", "--default", "storage", str(remote)]))
    run(plan, *post_copy().dvc_step(setup)[1], env=env)
    run(plan, "uv", "run", "--frozen", "pre-commit", "install", env=env)
    module = ["uv", "run", "--frozen", "python", "-m", plan.package]
    if plan.data:
        run(plan, *module, "adopt-data", str(plan.data.resolve()), "--target", plan.target, env=env)
        subject = f"{ADOPTION_COMMIT}{plan.data.name} is the data set (DVC){ADOPTION_DONE}"
    else:
        run(plan, *module, "make-data", "--out", RAW_DATA, env=env)
        run(plan, *post_copy().dvc_step([("add", ["add", RAW_DATA]), ("repro", ["repro"])])[1],
            env=env)  # fmt: skip
        subject = f"{ADOPTION_COMMIT}the template's sample is the data set (DVC){ADOPTION_DONE}"
    untracked_before = set(before) - tracked_before
    status = git(repo, "status", "--porcelain", "--untracked-files=all", "-z").split("\0")
    changed = [line[3:] for line in status if len(line) > 3]
    commit(plan, [p for p in changed if p not in untracked_before], subject)
    subjects.append(subject)
    verify(plan, before, renamed)
    return subjects


def format_team_files(plan: Plan, renamed: dict[str, str], env: dict[str, str]) -> list[str]:
    """Run the fixers of the template's lint on the team's files: ruff on Python code, the
    end-of-file and trailing-whitespace fixers on text (the pre-commit hooks' own commands,
    with the hooks' exclude); what they may have changed."""
    config = yaml.safe_load((plan.repo / ".pre-commit-config.yaml").read_text())
    excluded = re.compile(config.get("exclude") or "^$")
    team = sorted(
        new
        for old, new in renamed.items()
        if old not in plan.merged
        and old not in plan.retired
        and (plan.repo / new).is_file()
        and not excluded.search(new)
    )
    text = [path for path in team if is_text(plan.repo / path)]
    python = [path for path in text if path.endswith(".py")]
    uv = ["uv", "run", "--frozen"]
    commands = [["end-of-file-fixer", *text], ["trailing-whitespace-fixer", *text]]
    if python:
        commands = [["ruff", "check", "--fix", "--quiet", *python],
                    ["ruff", "format", "--quiet", *python], *commands]  # fmt: skip
    for command in commands if text else []:
        # A fixer exits 1 when it changed a file; ruff check when something is left to fix
        # by hand (the lint then says what).
        subprocess.run([*uv, *command], cwd=plan.repo, env=env, stdout=subprocess.DEVNULL)
    return text


def is_text(path: Path) -> bool:
    data = path.read_bytes()
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def verify(plan: Plan, before: dict[str, str], renamed: dict[str, str]) -> None:
    """Every team file is still there, byte for byte, unless the plan merged, moved, formatted
    or retired it; the tree is clean."""
    after = team_files(plan.repo)
    formatted = set(renamed.values())  # the formatting commit's fixers may change them
    lost = []
    for path, digest in before.items():
        if path in plan.merged or path in plan.retired:
            continue
        new = plan.moved.get(path) or renamed.get(path) or path
        if any(path.startswith(f"{name}/") for name in plan.packages):
            new = f"src/{path}"
        if new in formatted and new in after:
            continue
        if after.get(new) != digest:
            lost.append(path)
    if lost:
        raise RuntimeError(f"team files changed or missing after adoption: {', '.join(lost)}")
    if git(plan.repo, "status", "--porcelain"):
        plan.warnings.append("the tree is not clean after adoption: see `git status`")


def clone_url(url: str) -> Path:
    """A URL is adopted in a fresh clone in the current folder (pushed nowhere)."""
    name = re.sub(r"\.git$", "", url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1])
    dst = Path.cwd() / name
    if dst.exists():
        raise Blocked(f"{dst} exists: adopt that checkout, or clone elsewhere")
    subprocess.run(["git", "clone", "--quiet", url, str(dst)], check=True)
    return dst


def adopt_command(args) -> int:
    overrides = {}
    for pair in args.answer or []:
        key, sep, value = pair.partition("=")
        if not sep:
            print(f"fleet adopt: --answer {pair}: expected KEY=VALUE", file=sys.stderr)
            return 2
        overrides[key] = value
    try:
        repo = clone_url(args.repo) if URL.match(args.repo) else Path(args.repo).resolve()
    except (Blocked, subprocess.CalledProcessError) as error:
        print(f"fleet adopt: cannot adopt {args.repo}: {error}", file=sys.stderr)
        return 2
    data = Path(args.data).resolve() if args.data else None
    try:
        found = plan(
            repo,
            template=args.template,
            vcs_ref=args.vcs_ref,
            data=data,
            target=args.target,
            overrides=overrides,
            ask=None if args.defaults or args.plan else prompt,
        )
    except (Blocked, OSError) as error:
        print(f"fleet adopt: cannot adopt {repo} (nothing was written): {error}", file=sys.stderr)
        return 2
    try:
        if found.blockers:
            print(describe(found), file=sys.stderr)
            print(f"\nfleet adopt: cannot adopt {repo} (nothing was written):", file=sys.stderr)
            for blocker in found.blockers:
                print(f"  - {blocker}", file=sys.stderr)
            return 2
        print(describe(found))
        if args.plan:
            return 0
        if not args.defaults and input("\nAdopt with this plan? [y/N] ").strip().lower() != "y":
            print("fleet adopt: nothing was written")
            return 1
        label = args.vcs_ref or "the latest release"
        try:
            subjects = execute(found, f"{args.template} at {label}")
        except (subprocess.CalledProcessError, Blocked, RuntimeError) as error:
            print(
                f"fleet adopt: stopped: {error}\nfleet adopt: the commits so far are in "
                f"`git log` of {repo}; no team file was deleted (the originals are in the commit "
                "before the first `fleet adopt:` one)",
                file=sys.stderr,
            )
            return 1
        print("\nfleet adopt: done, in these commits (nothing pushed, the data neither):")
        print("\n".join(f"  {subject}" for subject in subjects))
        for warning in found.warnings:
            print(f"  check: {warning}")
        print("Next: `uv run poe ci`, then `git push` and `uv run dvc push` when the team agrees.")
        return 0
    finally:
        if found.work:
            shutil.rmtree(found.work, ignore_errors=True)


def add_parser(commands) -> None:
    adopt = commands.add_parser("adopt", help="bring an existing repository under the template")
    adopt.add_argument("repo", help="the repository's checkout (a git URL is cloned here first)")
    adopt.add_argument("--defaults", action="store_true", help="take the derived answers")
    adopt.add_argument("--plan", action="store_true", help="print the plan, write nothing")
    adopt.add_argument("--data", help="the team's CSV file: it becomes the data set")
    adopt.add_argument("--target", help="the column --data's model predicts")
    adopt.add_argument("--answer", action="append", metavar="KEY=VALUE", help="set an answer")
    adopt.add_argument("--template", default=str(TEMPLATE_ROOT), help="template source")
    adopt.add_argument("--vcs-ref", help="template release (default: its latest)")
    adopt.set_defaults(run=adopt_command)
