"""Run a generated project's GitHub Actions workflows with `act`, on this machine.

act runs each job on the host (`-P ubuntu-latest=-self-hosted`), so `run:` steps execute the
generated project's own `uv run poe ...` tasks. This machine cannot reach GitHub, so every
third-party action is replaced by a local stand-in from github_actions/ (`--local-repository
owner/repo@sha=DIR`; each does what the real action does for these jobs, see its README) and
`gh` by a recording stand-in (gh_standin); every run lists what it substituted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.ci_run import GREEN, CiRun
from tests.harness.git import git

ACT = Path(sys.executable).with_name("act")
ACTIONS_DIR = Path(__file__).resolve().parent / "github_actions"
WORKFLOWS = Path(".github") / "workflows"
PROVIDER = "github (act)"

# Every third-party action the generated workflows may use, at the commit of its release
# (verified against public references); the workflows must pin exactly these. The value's
# last item is the local stand-in under github_actions/, or None for actions act runs
# itself (checkout of the repository under test).
PINNED_ACTIONS: dict[str, tuple[str, str, str | None]] = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2", None),
    "astral-sh/setup-uv": ("6b9c6063abd6010835644d4c2e1bef4cf5cd0fca", "v6.0.1", "setup-uv"),
    "actions/cache": ("5a3ec84eff668545956fd18022155c47e93e2684", "v4.2.3", "cache"),
    "actions/upload-artifact": (
        "ea165f8d65b6e75b540449e92b4886f43607fa02",
        "v4.6.2",
        "upload-artifact",
    ),
    "actions/download-artifact": (
        "d3f86a106a0bac45b974a628896c90dbdf5c8093",
        "v4.3.0",
        "download-artifact",
    ),
}
POE_STEP = re.compile(r"^.*?Poe => (.*)$", re.MULTILINE)


def real_uv() -> str:
    """The uv binary itself (PyPI's `uv` wheel), never pyenv's shim script."""
    try:
        import uv  # type: ignore[import-not-found]

        return uv.find_uv_bin()
    except ImportError:
        pass
    found = subprocess.run(["pyenv", "which", "uv"], capture_output=True, text=True)
    candidate = found.stdout.strip() if found.returncode == 0 else shutil.which("uv")
    if not candidate or "shims" in Path(candidate).parts:
        pytest.skip("no uv binary found (install PyPI's uv into the dev environment)")
    return str(Path(candidate).resolve())


def _uses_refs(project: Path) -> set[tuple[str, str]]:
    refs = set()
    for workflow in (project / WORKFLOWS).glob("*.y*ml"):
        for match in re.finditer(r"uses:\s*([\w.-]+/[\w.-]+)@([0-9a-f]{40})", workflow.read_text()):
            refs.add((match.group(1), match.group(2)))
    return refs


def run_act(
    project: Path,
    event: str,
    payload: dict,
    work: Path,
    offline_uv_env: dict[str, str],
    *,
    workflow: str,
    variant: str,
    trigger: str,
    job: str | None = None,
    not_run: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    variables: dict[str, str] | None = None,
    gh: Path | None = None,
    cache_dir: Path | None = None,
) -> CiRun:
    """One `act <event>` run of the project's workflow, with its own action cache and artifacts
    (run.artifacts). not_run: jobs left out on purpose -> why (listed as not run, never passed).
    gh: a gh_standin directory, first on the jobs' PATH: the `gh` calls are recorded there."""
    work.mkdir(parents=True, exist_ok=True)
    event_file = work / "event.json"
    event_file.write_text(json.dumps(payload))
    artifacts = work / "artifacts"
    artifacts.mkdir()
    substitutes = {}
    for repo, sha in sorted(_uses_refs(project)):
        pinned = PINNED_ACTIONS.get(repo)
        assert pinned and pinned[0] == sha, f"{repo}@{sha} is not the pinned, verified release"
        if pinned[2]:
            substitutes[f"{repo}@{sha}"] = ACTIONS_DIR / pinned[2]
    job_env = {
        # What the generated project needs offline (the pytorch-cpu index, no Python downloads),
        # passed explicitly: act's own process below does not carry it.
        **offline_uv_env,
        "SUBSTITUTE_UV_BIN": real_uv(),
        "SUBSTITUTE_ARTIFACT_DIR": str(artifacts),
        "SUBSTITUTE_CACHE_DIR": str(cache_dir or work / "actions-cache"),
        **(env or {}),
        **({"GH_STANDIN_DIR": str(gh)} if gh else {}),
    }
    command = [
        str(ACT),
        event,
        "-P",
        "ubuntu-latest=-self-hosted",
        "-W",
        str(WORKFLOWS / workflow),
        "--eventpath",
        str(event_file),
        "--action-cache-path",
        str(work / "act-cache"),
        "--json",
    ]
    if job:
        command += ["-j", job]
    for ref, directory in substitutes.items():
        command += ["--local-repository", f"{ref}={directory}"]
    for key, value in job_env.items():
        command += ["--env", f"{key}={value}"]
    for key, value in (secrets or {}).items():
        command += ["-s", f"{key}={value}"]
    for key, value in (variables or {}).items():
        command += ["--var", f"{key}={value}"]
    process_env = {k: v for k, v in os.environ.items() if k not in offline_uv_env}
    if gh:
        process_env["PATH"] = f"{gh}{os.pathsep}{process_env['PATH']}"
    result = subprocess.run(
        command,
        cwd=project,
        env=process_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    lines, jobs, used = [], {}, set()
    for raw in (result.stdout + result.stderr).splitlines():
        try:
            record = json.loads(raw)
        except ValueError:
            lines.append(raw)
            continue
        message = str(record.get("msg", "")).rstrip("\n")
        lines.append(message)
        if "jobResult" in record:
            jobs[record.get("jobID", "?")] = record["jobResult"]
        cached = re.search(r"LocalRepositoryCache read cachedir (\S+) with ref", message)
        if cached:
            used.add(cached.group(1))
    log = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", "\n".join(lines))
    passed = result.returncode == 0 and bool(jobs) and set(jobs.values()) <= set(GREEN)
    not_run = not_run or {}
    return CiRun(
        provider=PROVIDER,
        variant=variant,
        trigger=trigger,
        passed=passed,
        jobs={**jobs, **dict.fromkeys(not_run, "not run")},
        steps_run=POE_STEP.findall(log),
        substituted=[
            *sorted(used),
            *(["gh: a stand-in recording the calls (GitHub's API is out of reach)"] if gh else []),
            *(f"{job}: not run ({why})" for job, why in not_run.items()),
        ],
        log=log,
        command=command,
        artifacts=artifacts,
    )


def push_event(project: Path, ref: str, repository: str = "acme/My-Model") -> dict:
    """The payload of a push of the project's HEAD to ref."""
    sha = git(project, "rev-parse", "HEAD")
    owner, name = repository.split("/")
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": sha,
        "head_commit": {"id": sha, "message": "test"},
        "repository": {
            "full_name": repository,
            "name": name,
            "owner": {"login": owner, "name": owner},
            "default_branch": "main",
        },
        "pusher": {"name": "tester"},
    }


def schedule_event(project: Path, cron: str) -> dict:
    """The payload of a scheduled run."""
    return {"schedule": cron, "repository": push_event(project, "refs/heads/main")["repository"]}


GH_STANDIN = """#!/usr/bin/env bash
# Stand-in for the GitHub CLI (GitHub is unreachable): records the call and checks what the
# real command would check. `release create`: a token, every asset and the notes file exist (a
# copy of the assets is kept for the test). `pr create`: a token, and the head branch is on
# the remote.
set -euo pipefail
printf '%s\\n' "$*" >> "$GH_STANDIN_DIR/calls.log"
[ -n "${GH_TOKEN:-}" ] || { echo "gh: GH_TOKEN is not set" >&2; exit 4; }
command="${1:-} ${2:-}"
shift 2
case "$command" in
  "release create")
    tag="$1"; shift
    mkdir -p "$GH_STANDIN_DIR/assets"
    while [ $# -gt 0 ]; do
      case "$1" in
        --title) shift 2 ;;
        --notes-file) [ -f "$2" ] || { echo "gh: notes file $2 missing" >&2; exit 1; }; shift 2 ;;
        --*) shift ;;
        *) [ -f "$1" ] || { echo "gh: asset $1 missing" >&2; exit 1; }
           cp "$1" "$GH_STANDIN_DIR/assets/"; shift ;;
      esac
    done
    echo "https://github.com/$GITHUB_REPOSITORY/releases/tag/$tag" ;;
  "pr create")
    head=""
    while [ $# -gt 0 ]; do
      case "$1" in
        --head) head="$2"; shift 2 ;;
        --title|--body) shift 2 ;;
        *) shift ;;
      esac
    done
    git ls-remote --exit-code --heads origin "$head" > /dev/null \\
      || { echo "gh: branch $head is not on the remote" >&2; exit 1; }
    echo "https://github.com/$GITHUB_REPOSITORY/pull/1" ;;
  *) echo "gh stand-in: unsupported: $command $*" >&2; exit 2 ;;
esac
"""


def gh_standin(directory: Path) -> Path:
    """A directory holding the `gh` stand-in, for run_act's gh: calls go to directory/calls.log,
    assets to directory/assets."""
    directory.mkdir()
    (directory / "gh").write_text(GH_STANDIN)
    (directory / "gh").chmod(0o755)
    return directory
