"""Bulk updates: each selected repository runs its OWN scheduled update path
(`uv run poe template-update`) in a temporary clone, with the environment its scheduled job has."""

from __future__ import annotations

import os
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fleet import forge
from fleet.git import GitError, clone, git, is_dirty, origin_url, remote_branches
from fleet.inspect_repo import UPDATE_BRANCH, Report, forge_project
from fleet.repos import RepoEntry

# Left out of the job's environment: the fleet's own uv project and virtualenv, and CI variables
# of whatever runs the fleet, which would make the update script think it runs elsewhere.
HOST_ONLY = (
    "VIRTUAL_ENV",
    "UV_PROJECT",
    "UV_FROZEN",
    "GITHUB_ACTIONS",
    "CI_API_V4_URL",
    "JENKINS_URL",
)


@dataclass
class Outcome:
    repo: str
    result: str  # updated | skipped | failed | reported (no token: the script only reports)
    detail: str

    def as_dict(self) -> dict:
        return {"repo": self.repo, "result": self.result, "detail": self.detail}


def selected(report: Report, behind: int | None, label: str | None) -> bool:
    if label is not None and label not in report.labels:
        return False
    return behind is None or (report.behind is not None and report.behind >= behind)


def why_not(entry: RepoEntry, report: Report) -> str | None:
    """The reason to leave a selected repository alone, or None."""
    if report.adoption:
        return f"{report.adoption}: run `fleet adopt` first"
    if report.update_pending:
        return f"an update for {report.latest} is already open"
    if report.problems:
        return "problems: " + "; ".join(report.problems)
    if not report.behind:
        return "up to date"
    if entry.is_local and is_dirty(Path(entry.location)):
        return "dirty working tree"
    return None


def job_environment(entry: RepoEntry, report: Report, remote: str, env: dict) -> dict:
    """What the repository's scheduled job would have: GitHub (GITHUB_ACTIONS, GH_TOKEN,
    GITHUB_REPOSITORY) or GitLab (CI_* and GITLAB_TOKEN), chosen by the forge and its token."""
    job = {k: v for k, v in env.items() if k not in HOST_ONLY}
    project = forge_project(entry, remote)
    providers = report.answers.get("ci_providers") or []
    for name in ("github", "gitlab"):
        known = project[0] == name if project else name in providers
        if not (known and forge.token(name, env)):
            continue
        path = project[1] if project else Path(entry.location).name
        if name == "github":
            return {**job, "GITHUB_ACTIONS": "true", "GH_TOKEN": forge.token(name, env),
                    "GITHUB_REPOSITORY": path}  # fmt: skip
        api = env.get("GITLAB_API_URL", "https://gitlab.com/api/v4").rstrip("/")
        protocol, _, host = api.removesuffix("/api/v4").partition("://")
        return {**job, "CI_API_V4_URL": api, "GITLAB_TOKEN": forge.token(name, env),
                "CI_PROJECT_ID": path, "CI_PROJECT_PATH": path, "CI_SERVER_HOST": host,
                "CI_SERVER_PROTOCOL": protocol, "CI_DEFAULT_BRANCH": "main"}  # fmt: skip
    return job


def update_one(entry: RepoEntry, report: Report, env: dict) -> Outcome:
    reason = why_not(entry, report)
    if reason:
        return Outcome(entry.source, "skipped", reason)
    remote = (origin_url(Path(entry.location)) if entry.is_local else None) or entry.location
    try:
        with tempfile.TemporaryDirectory(prefix="fleet-update-") as tmp:
            work = clone(entry.location, Path(tmp) / "repo")
            git("remote", "set-url", "origin", remote, cwd=work)  # push where CI would push
            result = subprocess.run(
                ["uv", "run", "poe", "template-update"],
                cwd=work,
                capture_output=True,
                text=True,
                env=job_environment(entry, report, remote, env),
                timeout=1800,
            )
        if result.returncode != 0:
            return Outcome(entry.source, "failed", (result.stdout + result.stderr)[-2000:])
        last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        pushed = set(remote_branches(remote, f"{UPDATE_BRANCH}*"))
        if pushed - set(report.update_branches):
            return Outcome(entry.source, "updated", last)
        return Outcome(entry.source, "reported", last)
    except (GitError, OSError, subprocess.TimeoutExpired) as error:
        return Outcome(entry.source, "failed", str(error))


def update_all(
    pairs: list[tuple[RepoEntry, Report]], jobs: int, env: dict | None = None
) -> list[Outcome]:
    """Every pair's update, at most `jobs` at a time; one failure never stops the others."""
    env = dict(os.environ if env is None else env)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(lambda pair: update_one(*pair, env), pairs))
