"""The parts of template-owned files that belong to the team: `fleet report` does not count them
as drift, and `fleet adopt` writes the team's own content there.

- `.gitignore`: everything below the template's marker line (the team's own rules; the template
  never writes below it, so `copier update` merges them without conflict).
- `pyproject.toml`: the requirements the team added to `[project] dependencies` and to the
  `[dependency-groups]` (`uv add` puts them there, anywhere in the list), and the team's packages
  listed after the template's in `[tool.uv.build-backend] module-name`, and the line of the
  `team-checks` poe task (the team's CI commands, which the template's `ci` runs last).

Anything else the team changes in these files is drift, as in any template-owned file.
"""

from __future__ import annotations

import re

GITIGNORE_MARKER = "# The team's own rules go below this line: the template never changes them."
TABLE = re.compile(r"^\[(?P<name>[^\]]+)\]\s*(#.*)?$")
ARRAY = re.compile(r"^(?P<key>[\w-]+)\s*=\s*\[\s*(#.*)?$")
REQUIREMENT = re.compile(r'^\s+"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)[^"]*",?\s*(#.*)?$')
MODULE_NAME = re.compile(r'^module-name = "(?P<package>[^"]+)"$', re.MULTILINE)
TEAM_TASK_NAME = "team-checks"
TEAM_TASK = re.compile(rf"^{TEAM_TASK_NAME} = .*$", re.MULTILINE)


def template_part(path: str, text: str, rendered: str) -> str:
    """`text`, the repository's copy of `path`, without the team's parts (`rendered` is the
    template's version: what the template wrote there)."""
    if path == ".gitignore":
        return up_to_marker(text)
    if path == "pyproject.toml":
        text = without_team_packages(without_team_requirements(text, rendered), rendered)
        return with_template_task(text, rendered)
    return text


def up_to_marker(text: str) -> str:
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.rstrip("\r\n") == GITIGNORE_MARKER:
            return "".join(lines[: index + 1])
    return text


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(text: str):
    """(line, its requirement's name or None) for each line of a pyproject.toml: a name for the
    entries of `[project] dependencies` and of the `[dependency-groups]` lists."""
    table, in_list = "", False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if in_list:
            if stripped.startswith("]"):
                in_list = False
            match = REQUIREMENT.match(line)
            yield line, normalized(match["name"]) if match and in_list else None
            continue
        if header := TABLE.match(stripped):
            table = header["name"].strip()
        elif array := ARRAY.match(stripped):
            in_list = (table, array["key"]) == ("project", "dependencies") or (
                table == "dependency-groups"
            )
        yield line, None


def without_team_requirements(text: str, rendered: str) -> str:
    template = {name for _, name in requirement_lines(rendered) if name}
    return "".join(
        line for line, name in requirement_lines(text) if name is None or name in template
    )


def without_team_packages(text: str, rendered: str) -> str:
    """module-name listing the template's package first, then the team's: the template's."""
    match = MODULE_NAME.search(rendered)
    if not match:
        return text
    package = re.escape(match["package"])
    listed = re.compile(rf'^module-name = \["{package}"(, "[\w.]+")*\]$', re.MULTILINE)
    return listed.sub(lambda _: match[0], text)


def with_template_task(text: str, rendered: str) -> str:
    """The team-checks task as the template wrote it, whatever the team's line says."""
    match = TEAM_TASK.search(rendered)
    return TEAM_TASK.sub(lambda _: match[0], text, count=1) if match else text
