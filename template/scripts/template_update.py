"""Scheduled template update: find a newer template release and propose it for review.

Run by each CI provider's scheduled job (`uv run poe template-update`):
1. `copier check-update` finds whether a newer template release exists;
2. if so, `copier update` runs on a branch `template-update/<version>`, which is committed and
   pushed;
3. a pull request (GitHub, with GH_TOKEN) or merge request (GitLab, with GITLAB_TOKEN) is
   opened through scripts/forge.py. Without a token, or on a provider without pull requests
   (Jenkins), the job reports the new version and the command to run instead, and still
   succeeds.
An update that needs a person (conflict markers or `*.rej` files left by `copier update`, or a
uv.lock that post-update's `uv lock` could not bring in line with pyproject.toml) is still
pushed and proposed, with what to fix listed in the request and in the job's output, and the
job then fails: a red job, never a green one with conflict markers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from forge import TOKENS, branch_exists, open_request, provider, push_remote, run, token

# The exact Copier release the template is tested with (copier.yml, _min_copier_version is
# the oldest it accepts): a template update never picks up an untested release.
COPIER = ["uvx", "--with", "copier-template-extensions==0.3.4", "copier==9.19.1"]
# CI checkouts have no git identity; the update commit is signed off as this bot.
BOT = ["git", "-c", "user.name=template-update", "-c", "user.email=template-update@localhost"]
# The line starts git and Copier write around a conflict (as check-merge-conflict looks for).
MARKERS = (b"<<<<<<< ", b">>>>>>> ")
# What `copier update --trust` (the template's tasks and migrations: code from elsewhere) gets of
# the job's environment: what runs git, uv and Python and reaches the package index, never the
# job's other variables (the forge's token, a cloud key). TEMPLATE_UPDATE_PASS_ENV names more,
# separated by spaces (a private index's credentials, say).
PASSED_ON = {"PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "TZ", "TMPDIR", "LANG", "CI"}
PASSED_ON_PREFIXES = ("LC_", "UV_", "PYENV", "SSL_CERT_", "REQUESTS_CA_BUNDLE", "XDG_")
PROXIES = {"http_proxy", "https_proxy", "no_proxy", "all_proxy"}
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|CREDENTIAL|_KEY\b", re.IGNORECASE)


def newer_version() -> str | None:
    """The newest template release, or None when the repository is up to date."""
    result = run(*COPIER, "check-update", "--output-format", "json", check=False)
    if result.returncode not in (0, 2):
        raise RuntimeError(f"copier check-update failed: {result.stderr.strip()}")
    status = json.loads(result.stdout or "{}")
    return status.get("latest_version") if status.get("update_available") else None


def conflicts() -> list[str]:
    """Files the update left conflicted: unmerged in git's index, holding conflict markers
    (among the files it changed or added), or a `*.rej` file (ignored ones included)."""
    unmerged = run("git", "diff", "--name-only", "-z", "--diff-filter=U").stdout.split("\0")
    changed = run("git", "ls-files", "-z", "--modified", "--others", "--exclude-standard").stdout
    changed = sorted({name for name in unmerged + changed.split("\0") if name})
    found = [
        name
        for name in changed
        if os.path.isfile(name)
        and any(line.startswith(MARKERS) for line in Path(name).read_bytes().splitlines())
    ]
    ignored = run("git", "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                  "--directory").stdout  # fmt: skip
    rejects = {name for name in (changed + ignored.split("\0")) if name.endswith(".rej")}
    return sorted(set(found) | rejects)


def template_env(env: dict[str, str]) -> dict[str, str]:
    """The environment the template's code runs with (PASSED_ON): nothing secret unless named."""
    named = set(env.get("TEMPLATE_UPDATE_PASS_ENV", "").split())
    return {
        name: value
        for name, value in env.items()
        if name in named
        or (
            (name in PASSED_ON or name.startswith(PASSED_ON_PREFIXES) or name.lower() in PROXIES)
            and not SECRET_NAME.search(name)  # UV_PUBLISH_TOKEN, an index's password
        )
    }


def stale_lock(env: dict[str, str]) -> str | None:
    """Why uv.lock does not match pyproject.toml after the update (post-update's `uv lock`
    failed; its output is above), or None."""
    check = {k: v for k, v in env.items() if k not in ("UV_FROZEN", "UV_LOCKED")}
    result = run("uv", "lock", "--check", check=False, env=check)
    if result.returncode == 0:
        return None
    said = [line.strip() for line in result.stderr.splitlines()]
    said = [line for line in said if line.startswith(("error:", "cause:"))]
    return " ".join(said[:2]) or f"`uv lock --check` exited {result.returncode}"


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
        # Not a second request; but a branch still holding conflict markers keeps the job red.
        run("git", "fetch", "--quiet", remote, branch, env=git_env)
        marked = run("git", "grep", "-l", "-z", "-E", "^(<<<<<<<|>>>>>>>)( |$)", "FETCH_HEAD",
                     check=False).stdout.split("\0")[:-1]  # fmt: skip
        if marked:
            listed = "\n".join(f"- conflict: {name.split(':', 1)[1]}" for name in marked)
            print(f"template update: FAILED: {branch} still has conflict markers; resolve "
                  f"them in its pull/merge request:\n{listed}", file=sys.stderr)  # fmt: skip
            return 1
        print(f"template update: {branch} already exists; review its pull/merge request")
        return 0
    run("git", "switch", "--create", branch)
    # `--trust` runs the template's tasks and migrations: with no secret of the job's.
    trusted = template_env(env)
    # Copier's output, post-update's `uv lock` included, goes to the job log as it comes.
    if subprocess.run([*COPIER, "update", "--trust", "--defaults"], env=trusted).returncode:
        raise RuntimeError("copier update failed (its output is above)")
    problems = [f"conflict: {name}" for name in conflicts()]
    lock = stale_lock(trusted)
    if lock:
        problems.append(f"uv.lock not updated (run `uv lock` on the branch): {lock}")
    run("git", "add", "--all")
    # A clean update is committed as any commit is (the git hooks, when installed, run). One
    # with conflicts skips them (--no-verify): the hooks refuse conflict markers, and the
    # branch must still be pushed for someone to resolve them in review.
    verify = ["--no-verify"] if problems else []
    run(*BOT, "commit", *verify, "-m", f"Update to template {version}")
    run("git", "push", remote, branch, env=git_env)
    listed = "\n".join(f"- {problem}" for problem in problems)
    title = f"Template {version}" + (" (conflicts to resolve)" if problems else "")
    body = f"Template release {version}: review the diff and merge when CI is green."
    if problems:
        body = (
            f"Template release {version} needs a person before it can be merged: resolve "
            "these on this branch (conflict markers start with `<<<<<<<`; a `.rej` file holds "
            "a change that did not apply), run `uv lock`, commit, and merge when CI is green."
            f"\n\n{listed}"
        )
    print(f"template update: {open_request(kind, branch, title, body, env)}", flush=True)
    if not problems:
        return 0
    print(
        f"template update: FAILED: {branch} is pushed with {len(problems)} problem(s) to "
        f"resolve before merging:\n{listed}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or str(error)
        print(f"template update: FAILED: {detail.strip()}", file=sys.stderr)
        sys.exit(1)
