"""Template updates, as a transaction: done, or nothing changed.

`uv run poe update [--vcs-ref REF] [--data NAME=VALUE ...]` updates this repository to a newer
template release (or changes an answer). Copier runs in a temporary git worktree, detached at
HEAD; only when it has completed is its result applied to the team's tree, in one
`git apply --index`. Interrupted at any moment before that (Ctrl-C, SIGTERM, SIGKILL), the tree
and `.copier-answers.yml` are as they were; the command says so, and the next run clears what a
killed run left. Conflicts (files with markers, Copier's `*.rej` files) are applied for a person
to resolve, listed by name, and fail the command. The post-update steps that need the team's
tree (`uv sync`, `dvc add` of the data, ...: hooks/post_update.py defers them) run there after
the apply; a failing one is named with the command to run.

`uv run poe template-update` (no arguments) is the scheduled job, through the same transaction:
1. `copier check-update` finds whether a newer template release exists;
2. if so, the update runs on a branch `template-update/<version>`, which is committed (the git
   hooks, when installed, run: a refusal fails the job with their output) and pushed;
3. a pull request (GitHub, with GH_TOKEN) or merge request (GitLab, with GITLAB_TOKEN) is
   opened through scripts/forge.py. Without a token, or on a provider without pull requests
   (Jenkins), the job reports the new version and the command to run instead, and still
   succeeds.
An update that needs a person (conflict markers or `*.rej` files, a failed post-update step, or
a uv.lock that could not be brought in line with pyproject.toml) is still pushed and proposed,
with what to fix listed in the request and in the job's output, and the job then fails: a red
job, never a green one with conflict markers.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

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


def conflicts(tree: Path) -> list[str]:
    """Files the update left conflicted in tree: holding conflict markers (among the files it
    changed or added), or a `*.rej` file (ignored ones included)."""
    changed = git_lines(tree, "ls-files", "--modified", "--others", "--exclude-standard")
    found = [
        name
        for name in changed
        if (tree / name).is_file()
        and any(line.startswith(MARKERS) for line in (tree / name).read_bytes().splitlines())
    ]
    ignored = git_lines(tree, "ls-files", "--others", "--ignored", "--exclude-standard")
    rejects = {name for name in changed + ignored if name.endswith(".rej")}
    return sorted(set(found) | rejects)


def git_lines(tree: Path, *args: str) -> list[str]:
    listed = subprocess.run(["git", *args, "-z"], cwd=tree, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name]


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


class UpdateError(RuntimeError):
    """An update that stopped before its result was applied: nothing changed."""


class UpdateInterrupted(UpdateError):
    """Ctrl-C or SIGTERM before the result was applied. Said at once, before the clean-up:
    poe kills a task that has not ended 1.6 s after a Ctrl-C (the next run clears what that
    leaves)."""

    def __init__(self) -> None:
        super().__init__("interrupted")
        print("template update: interrupted; nothing changed; run again", file=sys.stderr,
              flush=True)  # fmt: skip


class AppliedButInterrupted(Exception):
    """Interrupted after the apply, during the post-update steps: what did not run."""

    def __init__(self, remaining: list[str]) -> None:
        super().__init__(remaining)
        self.remaining = remaining


class Outcome(NamedTuple):
    """What an applied update leaves for a person: conflicting files, post-update commands that
    failed (to run by hand)."""

    conflicts: list[str]
    failed: list[str]
    applied: bool = True  # False: Copier's result is the tree as it is (nothing to apply)


# A run's worktree and Copier's temporary files live in one directory named so: a killed run's
# is found (git still lists its worktree) and removed by the next run.
RUN_PREFIX = "template-update."
# Signals held while the result is applied: an interrupt then waits for the apply to finish.
HELD = {signal.SIGINT, signal.SIGTERM}


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout.strip()


@contextmanager
def one_update_at_a_time() -> Iterator[int]:
    """A lock held for the whole update, so a second update never takes the first one's
    worktree for a killed run's leftovers; its file descriptor, which Copier inherits: a
    Copier left running by a `kill -9` of this command holds it until it ends. The kernel
    drops it when the last holder dies, even by SIGKILL."""
    common = Path(git("rev-parse", "--git-common-dir")).resolve()
    with open(common / "template-update.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpdateError(
                "another template update is running in this repository (or the Copier of one "
                "that was killed is finishing): wait for it and run again"
            ) from None
        yield lock.fileno()


def run_prefix() -> str:
    """The name this repository's runs start with: RUN_PREFIX and its git directory's hash."""
    common = str(Path(git("rev-parse", "--git-common-dir")).resolve())
    return f"{RUN_PREFIX}{hashlib.sha256(common.encode()).hexdigest()[:12]}."


def clear_leftovers() -> None:
    """Remove the worktrees and temporary directories of this repository's runs that were
    killed (one killed before its worktree was made is found by its name)."""
    for leftover in Path(tempfile.gettempdir()).glob(f"{run_prefix()}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    listed = git("worktree", "list", "--porcelain").splitlines()
    for line in listed:
        tree = Path(line.removeprefix("worktree "))
        if line.startswith("worktree ") and tree.parent.name.startswith(RUN_PREFIX):
            subprocess.run(["git", "worktree", "remove", "--force", "--force", str(tree)],
                           capture_output=True)  # fmt: skip
            shutil.rmtree(tree.parent, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], check=True)


def transaction(
    copier_args: list[str], copier_env: dict[str, str], lock: int
) -> tuple[list[str], dict | None]:
    """Run `copier update` (with copier_env) in a temporary worktree at HEAD and apply its
    result to this tree in one `git apply --index` (it checks the whole patch before writing
    a file). The conflicting files, and the post-update steps deferred to this tree (None:
    nothing to apply)."""
    if git("status", "--porcelain"):
        raise UpdateError(
            "the tree has uncommitted changes: commit or stash them first (an update is "
            "reviewed as a diff of its own)"
        )
    root = Path(git("rev-parse", "--show-toplevel"))
    head = git("rev-parse", "HEAD")
    clear_leftovers()
    work = Path(tempfile.mkdtemp(prefix=run_prefix()))
    tree = work / "tree"
    (work / "tmp").mkdir()  # Copier's own temporary copies go with the run's directory
    deferred = work / "deferred.json"
    plan: dict = {"steps": []}
    applied = False
    try:
        git("worktree", "add", "--detach", "--quiet", str(tree), head)
        env = {**copier_env, "TMPDIR": str(work / "tmp"), "TEMPLATE_UPDATE_TREE": str(root),
               "TEMPLATE_UPDATE_DEFERRED": str(deferred)}  # fmt: skip
        copier = subprocess.run([*COPIER, "update", "--trust", "--defaults", *copier_args],
                                cwd=tree, env=env, pass_fds=(lock,))  # fmt: skip
        if copier.returncode:
            raise UpdateError("copier update failed (its output is above)")
        found = conflicts(tree)
        git("add", "--all", cwd=tree)
        rejects = [name for name in found if name.endswith(".rej")]
        if rejects:  # Copier's .rej files may be git-ignored: they are part of the result
            git("add", "--force", "--", *rejects, cwd=tree)
        result = git("write-tree", cwd=tree)
        # Plumbing (diff-tree), so no diff setting of the person's (noprefix, colour, an
        # external diff) changes the patch that git apply reads.
        diff = subprocess.run(["git", "diff-tree", "-p", "--binary", head, result],
                              capture_output=True, check=True).stdout  # fmt: skip
        if deferred.is_file():
            plan = json.loads(deferred.read_text())
        if git("rev-parse", "HEAD") != head or git("status", "--porcelain"):
            raise UpdateError("the repository changed while Copier ran")
        if diff:
            # Ctrl-C and SIGTERM wait for the apply (git in its own session, out of reach of
            # the terminal's Ctrl-C): it is never stopped half-way.
            signal.pthread_sigmask(signal.SIG_BLOCK, HELD)
            try:
                applying = subprocess.run(
                    ["git", "apply", "--index", "--whitespace=nowarn", "-"],
                    input=diff,
                    capture_output=True,
                    start_new_session=True,
                )
                applied = applying.returncode == 0
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, HELD)  # a held Ctrl-C comes here
            if not applied:
                detail = applying.stderr.decode().strip()
                raise UpdateError(f"the result could not be applied: {detail}")
        else:
            plan = None
    except KeyboardInterrupt:
        if applied:
            raise AppliedButInterrupted([shlex.join(c) for _, c in plan["steps"]]) from None
        raise UpdateInterrupted from None
    finally:
        with ignoring_interrupts():  # a second Ctrl-C does not stop the clean-up
            subprocess.run(["git", "worktree", "remove", "--force", "--force", str(tree)],
                           capture_output=True)  # fmt: skip
            shutil.rmtree(work, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"])
    return found, plan


@contextmanager
def ignoring_interrupts() -> Iterator[None]:
    previous = {number: signal.signal(number, signal.SIG_IGN) for number in HELD}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_deferred(plan: dict, env: dict[str, str]) -> list[str]:
    """Run the post-update steps in this tree; the commands that failed."""
    env = {k: v for k, v in env.items() if k not in ("UV_FROZEN", "UV_LOCKED")}
    env.update(plan.get("env", {}))
    commands = [(description, shlex.join(command)) for description, command in plan["steps"]]
    failed, done = [], 0
    try:
        for description, command in commands:
            print(f"[post-update] {description}: {command}", flush=True)
            if subprocess.run(shlex.split(command), env=env).returncode:
                failed.append(command)
            done += 1
    except KeyboardInterrupt:
        raise AppliedButInterrupted([c for _, c in commands[done:]]) from None
    return failed


def update(copier_args: list[str], copier_env: dict[str, str], env: dict[str, str]) -> Outcome:
    """The whole update: the transaction, then the deferred post-update steps (with env)."""
    try:
        with one_update_at_a_time() as lock:
            found, plan = transaction(copier_args, copier_env, lock)
    except KeyboardInterrupt:  # before the worktree was made: nothing was written
        raise UpdateInterrupted from None
    if plan is None:
        return Outcome(found, [], applied=False)
    return Outcome(found, run_deferred(plan, env))


def listed(outcome: Outcome) -> list[str]:
    return [f"conflict: {name}" for name in outcome.conflicts] + [
        f"post-update command failed, run it: {command}" for command in outcome.failed
    ]


def main_update(argv: list[str], env: dict[str, str] = os.environ) -> int:
    """`uv run poe update`: a person's update of this repository."""
    parser = argparse.ArgumentParser(prog="poe update", description=__doc__.split("\n\n")[1])
    parser.add_argument("--vcs-ref", metavar="REF", help="the template release (tag) to update to")
    parser.add_argument("--data", action="append", default=[], metavar="NAME=VALUE",
                        help="a new answer (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    copier_args = [f"--data={data}" for data in args.data]
    if args.vcs_ref:
        copier_args.append(f"--vcs-ref={args.vcs_ref}")
    # The worktree has no .venv: uv is not pointed at this tree's (uv run's VIRTUAL_ENV).
    copier_env = {name: value for name, value in env.items() if name != "VIRTUAL_ENV"}
    outcome = update(copier_args, copier_env, dict(env))
    problems = listed(outcome)
    if not outcome.applied:
        print("template update: nothing to apply (the repository is at that release, with "
              "these answers)")  # fmt: skip
        return 0
    if not problems:
        print("template update: applied; review it (`git diff --staged`), run `uv run poe ci` "
              "and commit")  # fmt: skip
        return 0
    print(
        f"template update: applied with {len(problems)} problem(s) to resolve before "
        "committing (conflict markers start with `<<<<<<<`; a `.rej` file holds a change that "
        "did not apply):\n" + "\n".join(f"- {problem}" for problem in problems),
        file=sys.stderr,
    )
    return 1


def main(env: dict[str, str] = os.environ) -> int:
    """`uv run poe template-update`: the scheduled job."""
    version = newer_version()
    if version is None:
        print("template update: up to date")
        return 0
    kind = provider(env)
    if not token(kind, env):
        print(
            f"template update: version {version} is available. Run `uv run poe update` "
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
            listed_marks = "\n".join(f"- conflict: {name.split(':', 1)[1]}" for name in marked)
            print(f"template update: FAILED: {branch} still has conflict markers; resolve "
                  f"them in its pull/merge request:\n{listed_marks}", file=sys.stderr)  # fmt: skip
            return 1
        print(f"template update: {branch} already exists; review its pull/merge request")
        return 0
    run("git", "switch", "--create", branch)
    # `--trust` runs the template's tasks and migrations: with no secret of the job's. Copier's
    # output, post-update's included, goes to the job log as it comes.
    trusted = template_env(env)
    problems = listed(update([], trusted, trusted))
    lock = stale_lock(trusted)
    if lock:
        problems.append(f"uv.lock not updated (run `uv lock` on the branch): {lock}")
    run("git", "add", "--all")
    # Committed as any commit is: the git hooks, when installed, run, and one that refuses the
    # update (conflict markers, say) fails the job with its output; nothing is pushed.
    commit = subprocess.run([*BOT, "commit", "-m", f"Update to template {version}"],
                            capture_output=True, text=True)  # fmt: skip
    if commit.returncode:
        raise RuntimeError(
            f"git commit refused the update on {branch} (nothing pushed):\n"
            + (commit.stdout + commit.stderr).strip()
            + ("\n" + "\n".join(f"- {p}" for p in problems) if problems else "")
        )
    run("git", "push", remote, branch, env=git_env)
    listed_problems = "\n".join(f"- {problem}" for problem in problems)
    title = f"Template {version}" + (" (conflicts to resolve)" if problems else "")
    body = f"Template release {version}: review the diff and merge when CI is green."
    if problems:
        body = (
            f"Template release {version} needs a person before it can be merged: resolve "
            "these on this branch (conflict markers start with `<<<<<<<`; a `.rej` file holds "
            "a change that did not apply; run a failed post-update command), run `uv lock`, "
            f"commit, and merge when CI is green.\n\n{listed_problems}"
        )
    print(f"template update: {open_request(kind, branch, title, body, env)}", flush=True)
    if not problems:
        return 0
    print(
        f"template update: FAILED: {branch} is pushed with {len(problems)} problem(s) to "
        f"resolve before merging:\n{listed_problems}",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped like Ctrl-C
    try:
        sys.exit(main_update(sys.argv[2:]) if sys.argv[1:2] == ["update"] else main())
    except UpdateInterrupted:
        sys.exit(130)
    except KeyboardInterrupt:
        print("template update: interrupted", file=sys.stderr)
        sys.exit(130)
    except AppliedButInterrupted as stopped:
        print("template update: interrupted after the update was applied (review it with "
              "`git diff --staged`); these post-update commands did not run, run them:\n"
              + "\n".join(f"    {c}" for c in stopped.remaining), file=sys.stderr)  # fmt: skip
        sys.exit(130)
    except UpdateError as error:
        print(f"template update: FAILED: {error}; nothing changed", file=sys.stderr)
        sys.exit(1)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or str(error)
        print(f"template update: FAILED: {detail.strip()}", file=sys.stderr)
        sys.exit(1)
