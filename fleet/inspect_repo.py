"""One repository's report, read from a temporary clone (the repository is never changed)."""

from __future__ import annotations

import difflib
import re
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from packaging.version import InvalidVersion, Version

from fleet import existing, forge
from fleet.git import GitError, clone, git, origin_url, remote_branches
from fleet.repos import URL, RepoEntry
from fleet.team_sections import template_part

ANSWERS_FILE = ".copier-answers.yml"
SHAPING_ANSWERS = (
    "ci_providers",
    "ml_framework",
    "experiment_tracking",
    "serving",
    "deploy_target",
)
UPDATE_BRANCH = "template-update/"
# Copier changes the process's working directory while it clones a template (plumbum's
# local.cwd), so renders run one at a time; clones and remote lookups stay parallel.
RENDER_LOCK = threading.Lock()
DESCRIBE = re.compile(r"^(?P<tag>.+?)(-\d+-g(?P<sha>[0-9a-f]+))?$")  # v1.0.0 or v1.0.0-3-gabc


@dataclass
class Report:
    repo: str
    labels: list[str]
    release: str | None = None
    latest: str | None = None
    behind: int | None = None
    answers: dict = field(default_factory=dict)
    drift: list[dict] = field(default_factory=list)  # {"path", "added", "removed"}
    update_branches: list[str] = field(default_factory=list)
    update_pending: bool = False  # a branch for the latest release is on the remote
    update_request: dict | None = None  # {"url", "ci"} with a forge token
    problems: list[str] = field(default_factory=list)
    # Without .copier-answers.yml: "not adopted (cruft | cookiecutter | hand-made)", no problem.
    adoption: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def version_of(ref: str) -> Version | None:
    match = DESCRIBE.match(ref)
    try:
        return Version(match["tag"]) if match else None
    except InvalidVersion:
        return None


class TemplateCache:
    """One clone per template source for the whole run (repositories share their template)."""

    def __init__(self, root: Path):
        self.root, self._clones, self._lock = root, {}, threading.Lock()

    def get(self, src: str) -> Path:
        with self._lock:
            if src not in self._clones:
                self._clones[src] = clone(src, self.root / f"template-{len(self._clones)}")
            return self._clones[src]


def inspect(entry: RepoEntry, templates: TemplateCache, env: dict[str, str]) -> Report:
    report = Report(entry.source, entry.labels)
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        try:
            work = clone(entry.location, Path(tmp) / "repo")
        except GitError as error:
            report.problems.append(f"cannot clone {entry.location}: {error}")
            return report
        answers = read_answers(work, report)
        if answers is not None and (unfinished := existing.unfinished_adoption(work)):
            report.problems.append(unfinished)
        if answers is not None:
            template = template_checkout(answers, templates, report)
            if template is not None:
                report.drift = drift(work, template, answers)
        remote = (origin_url(Path(entry.location)) if entry.is_local else None) or entry.location
        update_state(report, remote, entry, env)
    return report


def read_answers(work: Path, report: Report) -> dict | None:
    if not (work / ANSWERS_FILE).exists():
        report.adoption = existing.describe(work)  # `fleet adopt` brings it in
        return None
    try:
        answers = yaml.safe_load((work / ANSWERS_FILE).read_text())
    except (OSError, yaml.YAMLError) as error:
        report.problems.append(f"unreadable {ANSWERS_FILE}: {str(error).splitlines()[0]}")
        return None
    if not isinstance(answers, dict) or "_commit" not in answers or "_src_path" not in answers:
        report.problems.append(f"unreadable {ANSWERS_FILE}: no _commit and _src_path recorded")
        return None
    report.release = str(answers["_commit"])
    report.answers = {key: answers.get(key) for key in SHAPING_ANSWERS}
    return answers


def template_checkout(answers: dict, templates: TemplateCache, report: Report) -> Path | None:
    """The template's clone, with releases counted; None (and a problem) when unusable."""
    src = str(answers["_src_path"])
    if not (URL.match(src) or src.startswith(("/", "gh:", "gl:"))):
        report.problems.append(
            f"relative _src_path {src!r}: set it to the template's absolute path or URL"
        )
        return None
    try:
        template = templates.get(src)
    except GitError as error:
        report.problems.append(f"unknown template source {src!r}: {error}")
        return None
    tags = {tag: version_of(tag) for tag in git("tag", "--list", cwd=template).split()}
    releases = sorted((v, tag) for tag, v in tags.items() if v is not None)
    if releases:
        report.latest = releases[-1][1]
    match = DESCRIBE.match(report.release)
    ref = match["sha"] or match["tag"]
    try:
        git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=template)
    except GitError:
        report.problems.append(f"release {report.release} no longer exists in {src}")
        return None
    recorded = version_of(report.release)
    if recorded is not None:
        report.behind = sum(1 for v, _ in releases if v > recorded)
    return template


def render_release(template: Path, answers: dict, dst: Path) -> Path:
    """The template at the recorded release with the recorded answers, as `copier update` sees
    it: tasks and migrations skipped, and the `update` operation set so that copier.yml's
    `_exclude` leaves the team-owned files out (copier has no public switch for this)."""
    import copier
    from copier._main import _operation

    data = {key: value for key, value in answers.items() if not key.startswith("_")}
    with RENDER_LOCK:
        token = _operation.set("update")
        try:
            copier.run_copy(
                str(template),
                str(dst),
                data=data,
                vcs_ref=str(answers["_commit"]),
                defaults=True,
                unsafe=True,
                skip_tasks=True,
                quiet=True,
            )
        finally:
            _operation.reset(token)
    return dst


def drift(work: Path, template: Path, answers: dict) -> list[dict]:
    """Template-owned files whose content differs from the recorded release's rendering (the
    team's sections of them aside: fleet/team_sections.py)."""
    with tempfile.TemporaryDirectory(prefix="fleet-render-") as tmp:
        rendered = render_release(template, answers, Path(tmp) / "render")
        changed = []
        for path in sorted(p for p in rendered.rglob("*") if p.is_file()):
            relative = path.relative_to(rendered)
            ours = work / relative
            if str(relative) == ANSWERS_FILE or not ours.is_file():
                continue  # the answers differ by design; a file deleted on purpose stays deleted
            if ours.read_bytes() == path.read_bytes():
                continue
            template = path.read_text(errors="replace")
            theirs = template_part(relative.as_posix(), template, template)
            mine = template_part(relative.as_posix(), ours.read_text(errors="replace"), template)
            if mine == theirs:
                continue  # only the team's sections differ (fleet/team_sections.py)
            diff = difflib.unified_diff(
                theirs.splitlines(),
                mine.splitlines(),
                lineterm="",
                n=0,
            )
            lines = [line for line in diff if not line.startswith(("---", "+++", "@@"))]
            added = sum(line.startswith("+") for line in lines)
            changed.append({"path": str(relative), "added": added, "removed": len(lines) - added})
    return changed


def forge_project(entry: RepoEntry, remote: str) -> tuple[str, str] | None:
    """("github" | "gitlab", project) from the list's `github=`/`gitlab=` or the remote URL."""
    for name in forge.TOKENS:
        if name in entry.forge:
            return name, entry.forge[name]
    match = re.search(r"(github|gitlab)[\w.-]*[:/](?P<project>.+?)(\.git)?/?$", remote)
    return (match[1], match["project"]) if match and URL.match(remote) else None


def update_state(report: Report, remote: str, entry: RepoEntry, env: dict[str, str]) -> None:
    try:
        report.update_branches = remote_branches(remote, f"{UPDATE_BRANCH}*")
    except GitError as error:
        report.problems.append(f"cannot list the branches of {remote}: {error}")
        return
    latest = version_of(report.latest) if report.latest else None
    pending = [
        b
        for b in report.update_branches
        if latest and version_of(b[len(UPDATE_BRANCH) :]) == latest
    ]
    report.update_pending = bool(pending)
    project = forge_project(entry, remote)
    if pending and project:
        try:
            report.update_request = forge.open_request(*project, pending[0], env)
        except OSError as error:
            report.problems.append(f"cannot read the {project[0]} request: {error}")
