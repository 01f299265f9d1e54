"""`uv run poe update` is a transaction: interrupted at any moment, the team's tree and its
`.copier-answers.yml` are byte for byte as before, and a later run completes with the team's
edits kept; conflicts are applied, listed by name, and fail the command.

The repository is made from the test template's v1.0.0 (rendered, locked, synced) while v2.0.0,
which adds a line at the top of .pre-commit-config.yaml, is out (tests/harness/render.py's
template_releases). Each interrupt is sent at a chosen moment: harness/faults.py's PAUSE holds
the update command, or Copier itself, just before it starts a chosen command (no sleeps).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.harness.commands import run
from tests.harness.faults import pausing_before, wait_gone
from tests.harness.git import commit, git
from tests.harness.render import TEMPLATE_V2_NOTE, generated_from_release, render

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("update-transaction")]

TEAM_HOOK_NOTE = "# Team: reviewed by the ML platform team.\n"
PARAMS_NOTE = "# Team: tuned on the 2026 data.\n"
# Moments of an update, as the command each process is about to start when it is held: the
# update command before it makes its worktree (its temporary directory made), and before it
# starts Copier; Copier (its temporary copy of the repository half updated) before it applies
# the template's changes; the command, Copier done, before it diffs the result to apply it
# (the apply itself holds an interrupt until it is done).
BEFORE_WORKTREE = ("worktree", "add")
BEFORE_COPIER = ("update", "--trust")
DURING_COPIER = ("apply", "--reject")
BEFORE_APPLY = ("diff-tree", "--binary")


@pytest.fixture(scope="module")
def behind(template_src, template_releases, tmp_path_factory, offline_uv_env):
    """A repository made from v1.0.0 with its environment synced (as `uv run` left it), the
    commit it starts each test from, and the environment its commands run with."""
    root = tmp_path_factory.mktemp("transaction")
    project = render(template_src, root / "my-model", {})
    git(project, "init", "--quiet", "--initial-branch=main")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(offline_uv_env, TMPDIR=str(root / "tmp"))
    (root / "tmp").mkdir()
    run(["uv", "sync", "--quiet"], project, env)
    commit(project, "Generated")
    generated_from_release(project, template_releases, "v1.0.0")
    return project, git(project, "rev-parse", "HEAD"), env


def start_over(project: Path, base: str) -> None:
    git(project, "reset", "--quiet", "--hard", base)
    git(project, "clean", "--quiet", "-d", "--force", "--exclude=.venv")


def snapshot(project: Path) -> dict[str, bytes]:
    """Every file of the tree but .git/ and .venv/, with its bytes (the answers file included),
    and the index and HEAD."""
    files = {
        str(path.relative_to(project)): path.read_bytes()
        for path in project.rglob("*")
        if path.is_file() and path.relative_to(project).parts[0] not in (".git", ".venv")
    }
    files["<index>"] = git(project, "write-tree").encode()
    files["<HEAD>"] = git(project, "rev-parse", "HEAD").encode()
    return files


def leftovers(project: Path, env: dict[str, str]) -> list[str]:
    """Worktrees besides the repository's own, and temporary directories of runs or Copier."""
    trees = git(project, "worktree", "list", "--porcelain").splitlines()
    others = [line for line in trees if line.startswith("worktree ")][1:]
    temporary = [p.name for p in Path(env["TMPDIR"]).iterdir() if "copier" in p.name
                 or p.name.startswith("template-update.")]  # fmt: skip
    return others + temporary


def start_update(project: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(["uv", "run", "poe", "update", *args], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip


def paused_pid(update: subprocess.Popen, marker: Path, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.is_file() and marker.read_text():
            return int(marker.read_text())
        if update.poll() is not None:
            raise AssertionError("the update ended before the moment:\n" + "".join(
                update.communicate()))  # fmt: skip
        time.sleep(0.1)
    raise AssertionError(f"the update never reached the moment ({marker} not written)")


def parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def interrupt(update: subprocess.Popen, pid: int, how: signal.Signals) -> tuple[int, str]:
    """SIGINT: Ctrl-C at the terminal (to `uv run poe`'s process group; poe passes it on).
    SIGTERM: to the held process itself (poe answers a SIGTERM of its own by killing the task,
    the SIGKILL case). SIGKILL: every process of the update's task at once (its group)."""
    if how == signal.SIGINT:
        os.killpg(update.pid, signal.SIGINT)
    elif how == signal.SIGTERM:
        os.kill(pid, signal.SIGTERM)
    else:
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    stdout, stderr = update.communicate(timeout=120)
    assert wait_gone(pid, 30), f"process {pid} outlived the interrupted update"
    return update.returncode, stdout + stderr


def test_an_interrupted_update_changes_nothing_and_the_next_one_completes(behind, tmp_path):
    project, base, env = behind
    start_over(project, base)
    hooks = project / ".pre-commit-config.yaml"
    hooks.write_text(hooks.read_text() + TEAM_HOOK_NOTE)  # template-owned, far from v2's line
    params = project / "params.yaml"
    params.write_text(PARAMS_NOTE + params.read_text())  # team-owned
    commit(project, "Team edits")
    before = snapshot(project)
    moments = [
        (BEFORE_WORKTREE, signal.SIGKILL),
        (BEFORE_COPIER, signal.SIGINT),
        (BEFORE_COPIER, signal.SIGKILL),
        (DURING_COPIER, signal.SIGINT),
        (DURING_COPIER, signal.SIGKILL),
        (BEFORE_APPLY, signal.SIGINT),
        (BEFORE_APPLY, signal.SIGTERM),
        (BEFORE_APPLY, signal.SIGKILL),
    ]
    for words, how in moments:
        moment = f"{how.name} before {' '.join(words)}"
        pause, marker = pausing_before(tmp_path / "pause", *words)
        update = start_update(project, {**env, **pause})
        pid = paused_pid(update, marker)
        returncode, output = interrupt(update, pid, how)
        assert returncode != 0, f"{moment}: {output}"
        assert snapshot(project) == before, f"{moment}: the tree changed\n{output}"
        if how != signal.SIGKILL:  # a killed run cannot say anything
            assert "template update: interrupted; nothing changed; run again" in output, (
                f"{moment}: {returncode}\n{output}")  # fmt: skip
    # `kill -9` of the command alone, Copier running: the orphaned Copier holds the update's
    # lock, so a run meanwhile is refused before doing anything; once it ends, the next run
    # clears what it left.
    pause, marker = pausing_before(tmp_path / "pause", *DURING_COPIER)
    update = start_update(project, {**env, **pause})
    copier = paused_pid(update, marker)
    uv_tool = parent(copier)
    command = parent(uv_tool)
    assert "template_update.py" in Path(f"/proc/{command}/cmdline").read_text()
    os.kill(command, signal.SIGKILL)
    update.wait(timeout=120)  # uv and poe end; the orphans keep their output pipes open
    refused = run(["uv", "run", "poe", "update"], project, env, check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "another template update is running in this repository" in refused.stderr
    assert snapshot(project) == before
    os.kill(copier, signal.SIGKILL)
    assert wait_gone(copier, 30) and wait_gone(uv_tool, 30)
    update.communicate(timeout=60)
    done = run(["uv", "run", "poe", "update"], project, env, timeout=600)
    output = done.stdout + done.stderr
    assert "template update: applied; review it" in output, output
    assert leftovers(project, env) == []
    assert hooks.read_text() == TEMPLATE_V2_NOTE + before[".pre-commit-config.yaml"].decode()
    assert params.read_bytes() == before["params.yaml"]
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v2.0.0"
    assert git(project, "diff", "--cached", "--name-only").split() == [
        ".copier-answers.yml", ".pre-commit-config.yaml"]  # fmt: skip
    # The post-update steps ran in the team's tree: `uv lock` in the worktree, `uv sync` here.
    assert "[post-update] lock dependencies: uv lock" in output
    assert "[post-update] install environment: uv sync" in output
    commit(project, "Update to template v2.0.0")
    again = run(["uv", "run", "poe", "update"], project, env, timeout=600)
    assert "template update: nothing to apply" in again.stdout, again.stdout + again.stderr
    assert git(project, "status", "--porcelain") == ""


def test_conflicts_are_applied_listed_by_name_and_fail_the_command(behind):
    project, base, env = behind
    start_over(project, base)
    hooks = project / ".pre-commit-config.yaml"
    first, rest = hooks.read_text().split("\n", 1)
    hooks.write_text(TEAM_HOOK_NOTE + rest)  # the line v2.0.0 adds one above
    commit(project, "Team edits")
    result = run(["uv", "run", "poe", "update"], project, env, check=False, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "template update: applied with 1 problem(s) to resolve" in result.stderr
    assert "- conflict: .pre-commit-config.yaml\n" in result.stderr
    merged = hooks.read_text()
    assert "<<<<<<< " in merged and TEMPLATE_V2_NOTE in merged and TEAM_HOOK_NOTE in merged
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_commit"] == "v2.0.0"
    assert leftovers(project, env) == []
    # Run again before the conflict is resolved: refused before anything is written.
    unresolved = snapshot(project)
    refused = run(["uv", "run", "poe", "update"], project, env, check=False)
    assert refused.returncode == 1
    assert "the tree has uncommitted changes: commit or stash them first" in refused.stderr
    assert "; nothing changed" in refused.stderr and snapshot(project) == unresolved
