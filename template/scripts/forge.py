"""The forge the repository lives on (GitHub or GitLab), for the CI jobs that talk to it.

Used by scripts/template_update.py (push a branch, open a pull/merge request) and by
`uv run poe report`:

    python scripts/forge.py report reports/ci-report.md

posts the quality report on the pull/merge request being checked (GitHub: with GH_TOKEN, also
in the job summary; GitLab: with GITLAB_TOKEN). Anywhere else, or without the token, it prints
the report and says which token to set. `uv run poe retrain` ends with

    python scripts/forge.py propose reports/retrain.json

which commits a challenger that beats the champion (the new data version) on a branch
`retrain/<date>`, pushes it and opens a pull/merge request with both results; on Jenkins, or
without the token, it pushes the branch (when there is a remote) and prints the results.
`uv run poe register-release` (the CD job of a version tag) runs

    python scripts/forge.py push-tags 'model@*' 'model#*' --made-by python -m PACKAGE register ...

which checks that the token is set and the remote can be read, then runs the command that makes
the model registry's git tags (GTO), then pushes the new tags matching the patterns to the
repository with the same credentials (CI checkouts keep none): without the token, or when the
command fails, nothing is made or pushed. With a deploy target, the approved deploy of a tag
(`poe deploy-release ENV`) gives its version the environment's stage the same way.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

TOKENS = {"github": "GH_TOKEN", "gitlab": "GITLAB_TOKEN"}


def run(
    *command: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=check, env=env)


def last_error_line(result: subprocess.CompletedProcess) -> str:
    """What a failed git command said last (its stderr's last line)."""
    return (result.stderr.strip().splitlines() or ["no details"])[-1]


def provider(env: dict[str, str]) -> str:
    if env.get("GITHUB_ACTIONS") == "true":
        return "github"
    if env.get("CI_API_V4_URL"):  # GitLab's API, where merge requests and notes go
        return "gitlab"
    return "jenkins" if env.get("JENKINS_URL") else "local"


def token(kind: str, env: dict[str, str]) -> str | None:
    """The API token's value on this forge, or None (no token, or no forge)."""
    name = TOKENS.get(kind)
    return env.get(name) if name else None


def push_remote(kind: str, env: dict[str, str]) -> tuple[str, dict[str, str]]:
    """Where a branch goes, and the environment git needs to reach it. The token travels as an
    HTTP header passed through git's environment (GIT_CONFIG_*), never in the URL or a file,
    so no log, error message or later step can find it: GitHub pushes to the checkout's
    origin (checked out without persisting credentials) with GH_TOKEN; GitLab's job token
    cannot push, so GitLab pushes to the project's URL with GITLAB_TOKEN."""
    if kind == "github" and token(kind, env):
        return "origin", {**env, **_auth_header("x-access-token", env["GH_TOKEN"])}
    if kind != "gitlab":
        return "origin", dict(env)
    url = (
        f"{env.get('CI_SERVER_PROTOCOL', 'https')}://{env['CI_SERVER_HOST']}/"
        f"{env['CI_PROJECT_PATH']}.git"
    )
    return url, {**env, **_auth_header("oauth2", env["GITLAB_TOKEN"])}


def _auth_header(user: str, secret: str) -> dict[str, str]:
    basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }


def branch_exists(remote: str, branch: str, env: dict[str, str]) -> bool:
    """Whether the remote has the branch; a remote that cannot be read is an error, never
    taken for "absent" (that would push and open a second request)."""
    found = run("git", "ls-remote", "--exit-code", "--heads", remote, branch, check=False, env=env)
    if found.returncode in (0, 2):  # 2: the remote answered and has no such branch
        return found.returncode == 0
    raise RuntimeError(f"cannot read branches of the remote ({last_error_line(found)})")


def _gitlab_post(env: dict[str, str], path: str, fields: dict[str, str]) -> dict:
    project = urllib.parse.quote(env["CI_PROJECT_ID"], safe="")
    request = urllib.request.Request(
        f"{env['CI_API_V4_URL']}/projects/{project}/{path}",
        data=urllib.parse.urlencode(fields).encode(),
        headers={"PRIVATE-TOKEN": env["GITLAB_TOKEN"]},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def open_request(kind: str, branch: str, title: str, body: str, env: dict[str, str]) -> str:
    """Open a pull (GitHub) or merge (GitLab) request from branch; return its address."""
    if kind == "github":
        return run("gh", "pr", "create", "--head", branch, "--title", title, "--body", body).stdout
    fields = {
        "source_branch": branch,
        "target_branch": env.get("CI_DEFAULT_BRANCH", "main"),
        "title": title,
        "description": body,
    }
    return _gitlab_post(env, "merge_requests", fields)["web_url"]


def request_under_review(kind: str, env: dict[str, str]) -> str | None:
    """The number of the pull/merge request this job checks, if any. GitHub: not for pull
    requests from forks, whose token is read-only (they have the job summary)."""
    if kind == "gitlab":
        return env.get("CI_MERGE_REQUEST_IID") or None
    if kind != "github" or env.get("GITHUB_EVENT_NAME") != "pull_request":
        return None
    pull = json.loads(Path(env["GITHUB_EVENT_PATH"]).read_text())["pull_request"]
    same_repository = pull["head"]["repo"]["full_name"] == env.get("GITHUB_REPOSITORY")
    return str(pull["number"]) if same_repository else None


def comment(kind: str, number: str, report: Path, env: dict[str, str]) -> None:
    if kind == "github":  # one comment per pull request, updated by each run
        run("gh", "pr", "comment", number, "--body-file", str(report), "--edit-last",
            "--create-if-none")  # fmt: skip
    else:
        _gitlab_post(env, f"merge_requests/{number}/notes", {"body": report.read_text()})


def post_report(report: Path, env: dict[str, str]) -> int:
    if not report.is_file():
        print(f"quality report: {report} was not written (the job stopped before the gate)")
        return 0
    if env.get("GITHUB_STEP_SUMMARY"):
        with open(env["GITHUB_STEP_SUMMARY"], "a") as summary:
            summary.write(report.read_text())
    kind = provider(env)
    number = request_under_review(kind, env)
    if number and token(kind, env):
        comment(kind, number, report, env)
        where = "pull request #" if kind == "github" else "merge request !"
        print(f"quality report: posted on {where}{number}")
        return 0
    missing = kind in TOKENS and not token(kind, env)
    hint = f" (set {TOKENS[kind]} to post it on pull/merge requests)" if missing else ""
    print(f"quality report, in the job artifacts{hint}:\n{report.read_text()}")
    return 0


# CI checkouts have no git identity; a retraining commit is signed off as this bot.
RETRAIN_BOT = ["git", "-c", "user.name=retrain", "-c", "user.email=retrain@localhost"]


def propose(result_path: Path, env: dict[str, str]) -> int:
    """Propose the challenger `retrain` kept (result_path, its JSON result) for review."""
    if not result_path.is_file():
        print(f"retrain: {result_path} was not written (retraining stopped before it)")
        return 0
    result = json.loads(result_path.read_text())
    if not result["proposed"]:
        print(f"retrain: nothing to propose ({result['summary']})")
        return 0
    report = result_path.with_suffix(".md").read_text()
    kind = provider(env)
    branch = "retrain/" + time.strftime("%Y-%m-%d-%H%M%S", time.gmtime())
    run("git", "switch", "--create", branch)
    run("git", "add", "--update")  # the new data version and what the pipeline rewrote
    run(*RETRAIN_BOT, "commit", "-m", "Retrain on recent labelled data (challenger beats champion)")
    has_remote = bool(run("git", "remote").stdout.split())
    if kind in TOKENS and not token(kind, env):
        print(f"retrain: branch {branch} committed, not pushed (set {TOKENS[kind]} to let CI "
              f"push it and open the request):\n{report}")  # fmt: skip
        return 0
    if has_remote:
        remote, git_env = push_remote(kind, env)
        run("git", "push", remote, branch, env=git_env)
    if kind not in TOKENS:
        where = "pushed" if has_remote else "committed (no remote to push to)"
        print(f"retrain: branch {branch} {where}; open its pull request by hand:\n{report}")
        return 0
    title = "Retrain: the challenger beats the deployed model"
    print(f"retrain: {open_request(kind, branch, title, report, env).strip()}")
    return 0


def push_tags(patterns: list[str], env: dict[str, str], made_by: list[str] | None = None) -> int:
    """Push the local tags matching each pattern (a glob such as `model@*`) to the forge's
    remote; tags the remote has already are left as they are. made_by: the command that makes
    the tags, run first once the token is set and the remote can be read, so that a job that
    cannot push them makes none; its failure pushes nothing."""
    kind = provider(env)
    if kind in TOKENS and not token(kind, env):
        print(f"push-tags: FAILED: set {TOKENS[kind]} (a token that may push tags); "
              "nothing was made or pushed", file=sys.stderr)  # fmt: skip
        return 1
    remote, git_env = push_remote(kind, env)
    if made_by:
        found = run("git", "ls-remote", "--heads", remote, check=False, env=git_env)
        if found.returncode != 0:
            print(f"push-tags: FAILED: cannot read the remote ({last_error_line(found)}); "
                  "nothing was made or pushed", file=sys.stderr)  # fmt: skip
            return 1
        made = subprocess.run(made_by, env=env)
        if made.returncode != 0:
            print(f"push-tags: FAILED: `{shlex.join(made_by)}` exited with {made.returncode}; "
                  "nothing was pushed", file=sys.stderr)  # fmt: skip
            return made.returncode
    refspecs = [f"refs/tags/{p}:refs/tags/{p}" for p in patterns]
    pushed = run("git", "push", "--porcelain", remote, *refspecs, check=False, env=git_env)
    if pushed.returncode != 0:
        print(f"push-tags: FAILED: {last_error_line(pushed)}", file=sys.stderr)
        return 1
    new = [line.split("\t")[1].split(":")[0] for line in pushed.stdout.splitlines()
           if line.startswith("*\t")]  # fmt: skip
    print(f"push-tags: {', '.join(t.removeprefix('refs/tags/') for t in new) or 'no new tags'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Talk to the forge from a CI job.")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("report", help="post a Markdown quality report").add_argument(
        "path", type=Path
    )
    actions.add_parser("propose", help="a retrained model's pull/merge request").add_argument(
        "path", type=Path
    )
    tags = actions.add_parser("push-tags", help="push the tags matching globs")
    tags.add_argument("patterns", nargs="+", metavar="PATTERN")
    tags.add_argument(
        "--made-by", nargs=argparse.REMAINDER, metavar="COMMAND",
        help="the command that makes the tags: run once the token and remote are checked",
    )  # fmt: skip
    args = parser.parse_args()
    if args.action == "push-tags":
        sys.exit(push_tags(args.patterns, dict(os.environ), args.made_by))
    action = post_report if args.action == "report" else propose
    sys.exit(action(args.path, dict(os.environ)))
