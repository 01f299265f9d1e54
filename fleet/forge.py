"""The pull/merge request of an update branch and its CI status, from GitHub's or GitLab's API.

Only urllib: the API base comes from GITHUB_API_URL / GITLAB_API_URL (defaults: the public
services), the token from GH_TOKEN (or GITHUB_TOKEN) / GITLAB_TOKEN.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from typing import Any

TOKENS = {"github": ("GH_TOKEN", "GITHUB_TOKEN"), "gitlab": ("GITLAB_TOKEN",)}


def token(forge: str, env: dict[str, str] = os.environ) -> str | None:
    return next((env[name] for name in TOKENS[forge] if env.get(name)), None)


def _get(url: str, headers: dict[str, str]) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        return json.load(r)


def github_request(slug: str, branch: str, env: dict[str, str] = os.environ) -> dict | None:
    """The open pull request from `branch` and the verdict of its head commit's check runs."""
    api = env.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    headers = {
        "Authorization": f"Bearer {token('github', env)}",
        "Accept": "application/vnd.github+json",
    }
    owner = slug.split("/", 1)[0]
    head = urllib.parse.quote(f"{owner}:{branch}", safe="")
    pulls = _get(f"{api}/repos/{slug}/pulls?state=open&head={head}", headers)
    if not pulls:
        return None
    sha = pulls[0]["head"]["sha"]
    runs = _get(f"{api}/repos/{slug}/commits/{sha}/check-runs", headers)["check_runs"]
    return {"url": pulls[0]["html_url"], "ci": _checks_verdict(runs)}


def _checks_verdict(runs: list[dict]) -> str:
    if not runs:
        return "none"
    if any(run["status"] != "completed" for run in runs):
        return "pending"
    passed = {"success", "skipped", "neutral"}
    return "success" if all(run["conclusion"] in passed for run in runs) else "failure"


def gitlab_request(path: str, branch: str, env: dict[str, str] = os.environ) -> dict | None:
    """The open merge request from `branch` and the status of its head pipeline."""
    api = env.get("GITLAB_API_URL", "https://gitlab.com/api/v4").rstrip("/")
    headers = {"PRIVATE-TOKEN": token("gitlab", env) or ""}
    project = f"{api}/projects/{urllib.parse.quote(path, safe='')}"
    source = urllib.parse.quote(branch, safe="")
    requests = _get(f"{project}/merge_requests?state=opened&source_branch={source}", headers)
    if not requests:
        return None
    request = _get(f"{project}/merge_requests/{requests[0]['iid']}", headers)
    pipeline = request.get("head_pipeline") or {}
    return {"url": request["web_url"], "ci": pipeline.get("status", "none")}


def open_request(forge: str, project: str, branch: str, env=os.environ) -> dict | None:
    """The open PR/MR for branch, or None; raises nothing for a missing token (returns None)."""
    if not token(forge, env):
        return None
    lookup = github_request if forge == "github" else gitlab_request
    return lookup(project, branch, env)
