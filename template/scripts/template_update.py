"""Scheduled template update: find a newer template release and propose it for review.

Run by each CI provider's scheduled job (`uv run poe template-update`):
1. `copier check-update` finds whether a newer template release exists;
2. if so, `copier update` runs on a branch `template-update/<version>`, which is committed and
   pushed;
3. a pull request (GitHub, with GH_TOKEN) or merge request (GitLab, with GITLAB_TOKEN) is
   opened through scripts/forge.py. Without a token, or on a provider without pull requests
   (Jenkins), the job reports the new version and the command to run instead, and still
   succeeds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from forge import TOKENS, branch_exists, open_request, provider, push_remote, run, token

# The exact Copier release the template is tested with (copier.yml, _min_copier_version is
# the oldest it accepts): a template update never picks up an untested release.
COPIER = ["uvx", "--with", "copier-template-extensions==0.3.4", "copier==9.19.1"]
# CI checkouts have no git identity; the update commit is signed off as this bot.
BOT = ["git", "-c", "user.name=template-update", "-c", "user.email=template-update@localhost"]


def newer_version() -> str | None:
    """The newest template release, or None when the repository is up to date."""
    result = run(*COPIER, "check-update", "--output-format", "json", check=False)
    if result.returncode not in (0, 2):
        raise RuntimeError(f"copier check-update failed: {result.stderr.strip()}")
    status = json.loads(result.stdout or "{}")
    return status.get("latest_version") if status.get("update_available") else None


def main(env: dict[str, str] = os.environ) -> int:
    version = newer_version()
    if version is None:
        print("template update: up to date")
        return 0
    kind = provider(env)
    if not token(kind, env):
        print(
            f"template update: version {version} is available. Run `copier update --trust` "
            f"on a branch and open a pull request"
            + (f" (set {TOKENS[kind]} to let CI do it)" if kind in TOKENS else "")
        )
        return 0
    branch = f"template-update/{version}"
    remote, git_env = push_remote(kind, env)
    if branch_exists(remote, branch, git_env):
        print(f"template update: {branch} already exists; review its pull/merge request")
        return 0
    run("git", "switch", "--create", branch)
    # `--trust` runs the template's tasks and migrations: without the forge tokens.
    without_tokens = {k: v for k, v in env.items() if k not in TOKENS.values()}
    run(*COPIER, "update", "--trust", "--defaults", env=without_tokens)
    run("git", "add", "--all")
    run(*BOT, "commit", "--no-verify", "-m", f"Update to template {version}")
    run("git", "push", remote, branch, env=git_env)
    body = (
        f"Template release {version}: review the diff, resolve any conflict markers, "
        "and merge when CI is green."
    )
    print(f"template update: {open_request(kind, branch, f'Template {version}', body, env)}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or str(error)
        print(f"template update: FAILED: {detail.strip()}", file=sys.stderr)
        sys.exit(1)
