"""What an existing, not yet adopted repository is and what it says about itself, read without
writing: cruft's `.cruft.json`, a cookiecutter-data-science (CCDS) layout, or a hand-made one.
`fleet adopt` derives its answers from here; `fleet report` names the kind of a repository that
has no `.copier-answers.yml` yet."""

from __future__ import annotations

import configparser
import json
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

PYTHONS = ("3.10", "3.11", "3.12", "3.13")  # copier.yml's python_version choices
# The licence answer from a LICENSE file's opening or an SPDX name (Apache and BSD before MIT:
# their texts say "permitted").
LICENCES = (
    (re.compile(r"\bapache\b", re.I), "Apache-2.0"),
    (re.compile(r"\bbsd[ -]3-clause\b|redistribution and use in source and binary", re.I),
     "BSD-3-Clause"),
    (re.compile(r"\bmit\b", re.I), "MIT"),
)  # fmt: skip
# Folders at the top that are never the team's Python package.
NOT_PACKAGES = {"tests", "test", "docs", "notebooks", "src", "scripts", "data", "models"}
VERSION = re.compile(r"3\.(1[0-9])")


@dataclass(frozen=True)
class Derived:
    value: object
    source: str  # where it came from, as the plan prints it


def kind(repo: Path) -> str:
    """cruft | cookiecutter | hand-made."""
    if (repo / ".cruft.json").is_file():
        return "cruft"
    readme = _read(repo / "README.md")
    ccds_folders = all((repo / d).is_dir() for d in ("notebooks", "references", "reports"))
    if "cookiecutter" in readme.lower() or ccds_folders or (repo / ".cookiecutter.json").exists():
        return "cookiecutter"
    return "hand-made"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _pyproject(repo: Path) -> dict:
    try:
        return tomllib.loads(_read(repo / "pyproject.toml"))
    except tomllib.TOMLDecodeError:
        return {}


def cruft_context(repo: Path) -> dict:
    """The answers cruft recorded (`.cruft.json`'s context.cookiecutter), or {}."""
    try:
        recorded = json.loads(_read(repo / ".cruft.json") or "{}")
    except json.JSONDecodeError:
        return {}
    return (recorded.get("context") or {}).get("cookiecutter") or {}


def team_packages(repo: Path) -> list[str]:
    """The team's Python packages at the top of the repository (CCDS's module folder)."""
    return sorted(
        path.name
        for path in repo.iterdir()
        if path.is_dir()
        and (path / "__init__.py").is_file()
        and path.name.isidentifier()
        and path.name not in NOT_PACKAGES
    )


def src_packages(repo: Path) -> list[str]:
    src = repo / "src"
    if not src.is_dir():
        return []
    return sorted(p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").is_file())


def _python(text: str) -> str | None:
    match = VERSION.search(text)
    return f"3.{match[1]}" if match else None


def _supported(version: str) -> str:
    """The nearest python_version choice at or above `version` (the newest if above all)."""
    return next((v for v in PYTHONS if tuple(map(int, v.split("."))) >= _key(version)), PYTHONS[-1])


def _key(version: str) -> tuple[int, ...]:
    return tuple(map(int, version.split(".")[:2]))


def python_version(repo: Path, context: dict) -> Derived | None:
    project = _pyproject(repo).get("project", {})
    candidates = [
        (str(context.get("python_version_number", "")), ".cruft.json context"),
        (project.get("requires-python", ""), "pyproject.toml requires-python"),
        (_read(repo / ".python-version"), ".python-version"),
    ]
    makefile = re.search(r"^PYTHON_VERSION\s*[:?]?=\s*(\S+)", _read(repo / "Makefile"), re.M)
    candidates.append((makefile[1] if makefile else "", "Makefile PYTHON_VERSION"))
    for workflow in sorted((repo / ".github" / "workflows").glob("*.y*ml")):
        found = re.search(r"python-version:\s*['\"]?(3\.\d+)", _read(workflow))
        candidates.append((found[1] if found else "", f"{workflow.relative_to(repo)} (CI)"))
    gitlab = re.search(r"image:\s*['\"]?python:(3\.\d+)", _read(repo / ".gitlab-ci.yml"))
    candidates.append((gitlab[1] if gitlab else "", ".gitlab-ci.yml image (CI)"))
    for text, source in candidates:
        version = _python(text)
        if version:
            supported = _supported(version)
            note = "" if supported == version else f" ({version} is not offered)"
            return Derived(supported, source + note)
    return None


def licence(repo: Path, context: dict) -> Derived:
    text = _read(repo / "LICENSE") or _read(repo / "LICENSE.txt") or _read(repo / "LICENSE.md")
    if text:
        for pattern, answer in LICENCES:
            if pattern.search(text[:1000]):
                return Derived(answer, "LICENSE")
        return Derived("Proprietary", "LICENSE (not one the template writes: kept as it is)")
    named = context.get("open_source_license") or _pyproject(repo).get("project", {}).get("license")
    spdx = str(named or "")
    for pattern, answer in LICENCES:
        if pattern.search(spdx):
            return Derived(answer, "licence named in .cruft.json / pyproject.toml")
    return Derived("Proprietary", "no LICENSE file (the template writes none)")


def readme_title(repo: Path) -> str | None:
    for line in _read(repo / "README.md").splitlines():
        if line.startswith("# ") and line[2:].strip():
            return line[2:].strip()
    return None


def first_author(repo: Path) -> tuple[str, str] | None:
    """(name, email) of the first commit's author."""
    result = subprocess.run(
        ["git", "log", "--reverse", "--format=%an%x00%ae"], cwd=repo, capture_output=True, text=True
    )
    lines = result.stdout.splitlines() if result.returncode == 0 else []
    return tuple(lines[0].split("\x00", 1)) if lines else None  # type: ignore[return-value]


def answers(repo: Path) -> dict[str, Derived]:
    """The answers the repository itself gives, each with where it came from (a question whose
    answer nothing gives is left to copier.yml's default)."""
    context = cruft_context(repo)
    project = _pyproject(repo).get("project", {})
    found: dict[str, Derived] = {}
    title = readme_title(repo)
    if context.get("project_name"):
        found["project_name"] = Derived(context["project_name"], ".cruft.json context")
    elif title:
        found["project_name"] = Derived(title, "README.md title")
    elif project.get("name"):
        found["project_name"] = Derived(project["name"], "pyproject.toml [project] name")
    else:
        found["project_name"] = Derived(repo.resolve().name, "the folder's name")
    description = context.get("description") or project.get("description")
    if description:
        source = ".cruft.json context" if context.get("description") else "pyproject.toml"
        found["description"] = Derived(str(description).splitlines()[0], source)
    authors = project.get("authors") or []
    author = context.get("author_name") or (authors[0].get("name") if authors else None)
    email = authors[0].get("email") if authors else None
    committer = first_author(repo)
    if author:
        source = ".cruft.json context" if context.get("author_name") else "pyproject.toml authors"
        found["author_name"] = Derived(author, source)
    elif committer:
        found["author_name"] = Derived(committer[0], "the first commit's author")
    if email:
        found["author_email"] = Derived(email, "pyproject.toml authors")
    elif committer and "@" in committer[1]:
        found["author_email"] = Derived(committer[1], "the first commit's author")
    version = python_version(repo, context)
    if version:
        found["python_version"] = version
    found["license"] = licence(repo, context)
    providers = [
        name
        for name, path in (
            ("github", ".github/workflows"),
            ("gitlab", ".gitlab-ci.yml"),
            ("jenkins", "Jenkinsfile"),
        )  # fmt: skip
        if (repo / path).exists()
    ]
    if providers:
        found["ci_providers"] = Derived(providers, "the team's CI files (kept beside)")
    return found


def requirements(repo: Path) -> list[tuple[Requirement, str]]:
    """The team's dependencies, each with the file that names it: requirements.txt, then
    pyproject.toml's [project] dependencies, then setup.cfg's install_requires."""
    found: list[tuple[Requirement, str]] = []
    lines = [(line, "requirements.txt") for line in _read(repo / "requirements.txt").splitlines()]
    listed = _pyproject(repo).get("project", {}).get("dependencies", [])
    lines += [(line, "pyproject.toml") for line in listed]
    setup = configparser.ConfigParser()
    try:
        setup.read_string(_read(repo / "setup.cfg"))
        install = setup.get("options", "install_requires", fallback="")
    except configparser.Error:
        install = ""
    lines += [(line, "setup.cfg") for line in install.splitlines()]
    seen = set()
    for line, source in lines:
        text = line.split("#", 1)[0].strip()
        if not text or text.startswith(("-", ".", "/")):
            continue  # -r/-e/--index-url lines and the project itself
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        name = requirement.name.lower().replace("_", "-")
        if name not in seen:
            seen.add(name)
            found.append((requirement, source))
    return found


def ci_commands(repo: Path) -> list[tuple[str, str]]:
    """The shell commands the team's CI runs, in order, each with its file: the `run:` steps of
    the GitHub workflows and the `script:` lines of .gitlab-ci.yml's jobs (a line continued
    with a backslash is one command)."""
    found: list[tuple[str, str]] = []
    for workflow in sorted((repo / ".github" / "workflows").glob("*.y*ml")):
        source = workflow.relative_to(repo).as_posix()
        jobs = _yaml(workflow).get("jobs") or {}
        for job in (job for job in jobs.values() if isinstance(job, dict)):
            for step in job.get("steps") or []:
                if isinstance(step, dict) and isinstance(step.get("run"), str):
                    found += [(command, source) for command in _commands(step["run"])]
    for name, job in _yaml(repo / ".gitlab-ci.yml").items():
        if isinstance(job, dict) and not str(name).startswith("."):
            script = job.get("script") or []
            for block in [script] if isinstance(script, str) else script:
                found += [(command, ".gitlab-ci.yml") for command in _commands(str(block))]
    return found


def _yaml(path: Path) -> dict:
    import yaml

    try:
        loaded = yaml.safe_load(_read(path))
    except yaml.YAMLError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _commands(script: str) -> list[str]:
    joined = re.sub(r"[ \t]*\\\n\s*", " ", script)
    lines = (line.strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# `fleet adopt`'s commits: each subject starts so, and the last one (the data set and the first
# pipeline run) ends so; an adoption whose newest commit is another one stopped half-way.
ADOPTION_COMMIT = "fleet adopt: "
ADOPTION_DONE = ", first pipeline run"


def unfinished_adoption(repo: Path) -> str | None:
    """What a `fleet adopt` that stopped half-way (killed, or a step failed) left, or None."""
    result = subprocess.run(
        ["git", "log", "--format=%H %s", f"--grep=^{ADOPTION_COMMIT}"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    commits = [line.split(" ", 1) for line in result.stdout.splitlines() if " " in line]
    commits = [(sha, subject) for sha, subject in commits if subject.startswith(ADOPTION_COMMIT)]
    if not commits or commits[0][1].endswith(ADOPTION_DONE):
        return None
    base = subprocess.run(
        ["git", "rev-parse", "--short", f"{commits[-1][0]}^"], cwd=repo, capture_output=True,
        text=True,
    ).stdout.strip()  # fmt: skip
    return (
        f"half-done adoption: `fleet adopt` stopped after `{commits[0][1]}`; go back to before "
        f"it (`git reset --hard {base}`) and adopt again"
    )


def describe(repo: Path) -> str:
    """One line for the fleet report: what the repository is, before adoption."""
    what = kind(repo)
    if what == "cruft":
        template = json.loads(_read(repo / ".cruft.json") or "{}").get("template", "?")
        return f"not adopted (cruft, from {template})"
    return f"not adopted ({what})"
