"""The generated scripts/forge.py: tokens stay out of URLs and logs, and a remote that cannot
be read is an error, never taken for "the branch is absent". scripts/template_update.py: an
update that conflicts (or whose uv.lock could not be re-locked) is pushed and proposed with what
to fix listed, and the job fails; a clean one stays a green job. The generated .gitattributes:
lock files are never merged line by line when the update branch is merged."""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.commands import run
from tests.harness.git import commit, git
from tests.harness.github import gh_standin
from tests.harness.render import (
    REPO_ROOT,
    TEMPLATE_V2_NOTE,
    clone,
    generated_from_release,
    render,
)

TOKEN = "glpat-secret-token-value"
GITLAB = {
    "CI_SERVER_PROTOCOL": "https",
    "CI_SERVER_HOST": "gitlab.example.com",
    "CI_PROJECT_PATH": "team/my-model",
    "GITLAB_TOKEN": TOKEN,
}


@pytest.fixture(scope="module")
def forge(template_src, tmp_path_factory):
    scripts = render(template_src, tmp_path_factory.mktemp("forge") / "p", {}) / "scripts"
    spec = importlib.util.spec_from_file_location("forge", scripts / "forge.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gitlab_token_travels_in_a_header_not_the_url(forge, tmp_path):
    url, env = forge.push_remote("gitlab", {**os.environ, **GITLAB})
    assert url == "https://gitlab.example.com/team/my-model.git"
    assert TOKEN not in url
    # git itself reads the header from its environment (GIT_CONFIG_*), not from argv or files.
    header = subprocess.run(
        ["git", "config", "--get", "http.extraHeader"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    scheme, value = header.removeprefix("Authorization: ").split()
    assert scheme == "Basic" and base64.b64decode(value).decode() == f"oauth2:{TOKEN}"


def test_github_push_sends_its_token_as_a_header(forge, tmp_path):
    """The checkout persists no credentials (template-update.yml); the push to origin brings
    GH_TOKEN itself, in git's environment only."""
    remote, env = forge.push_remote("github", {**os.environ, "GH_TOKEN": TOKEN})
    assert remote == "origin"
    assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    scheme, value = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: ").split()
    assert scheme == "Basic" and base64.b64decode(value).decode() == f"x-access-token:{TOKEN}"


def test_template_update_runs_the_copier_release_the_template_is_tested_with(forge):
    """`uvx copier` at the exact version this repository locks, not any release in a range,
    with the exact copier-template-extensions that loads the template's extensions.py."""
    scripts = Path(forge.__file__).parent
    update = (scripts / "template_update.py").read_text()
    command = re.search(r"^COPIER = (.*)$", update, re.MULTILINE).group(1)
    for package in ("copier", "copier-template-extensions"):
        pinned = re.search(rf'"{package}==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text())
        assert pinned, f"the template's pyproject.toml pins {package}"
        assert f'"{package}=={pinned.group(1)}"' in command
    assert '"--with", "copier-template-extensions==' in command


def test_the_template_code_runs_with_no_secret_of_the_job(forge):
    """`copier update --trust` runs the template's tasks and migrations with what runs git, uv
    and Python (and reaches the index), never the job's secrets: GitLab masks its variables in
    logs but gives them all to every process, so each is dropped unless the team names it."""
    scripts = Path(forge.__file__).parent
    sys.path.insert(0, str(scripts))
    try:
        spec = importlib.util.spec_from_file_location(
            "template_update", scripts / "template_update.py"
        )
        update = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(update)
    finally:
        sys.path.remove(str(scripts))
    needed = {"PATH": "/usr/bin", "HOME": "/root", "LANG": "C.UTF-8", "CI": "true",
              "UV_INDEX": "corp=https://pypi.corp/simple", "UV_FROZEN": "1",
              "PYENV_VERSION": "3.12.1", "https_proxy": "http://proxy:3128",
              "SSL_CERT_FILE": "/etc/ssl/ca.pem"}  # fmt: skip
    secrets = {"GITLAB_TOKEN": TOKEN, "CI_JOB_TOKEN": TOKEN, "GH_TOKEN": TOKEN,
               "AWS_SECRET_ACCESS_KEY": TOKEN, "AWS_ACCESS_KEY_ID": "AKIA", "API_KEY": TOKEN,
               "CI_REGISTRY_PASSWORD": TOKEN, "UV_PUBLISH_TOKEN": TOKEN,
               "UV_INDEX_CORP_PASSWORD": TOKEN, "DEPLOY_SSH_KEY": TOKEN}  # fmt: skip
    assert update.template_env({**needed, **secrets}) == needed
    named = {**needed, **secrets, "TEMPLATE_UPDATE_PASS_ENV": "UV_INDEX_CORP_PASSWORD"}
    assert update.template_env(named) == {**needed, "UV_INDEX_CORP_PASSWORD": TOKEN}


def test_a_failing_push_prints_no_token(forge, tmp_path):
    """The URL git reports when it cannot reach GitLab holds no token."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    env = {**os.environ, **GITLAB, "CI_SERVER_HOST": "127.0.0.1:9"}  # refuses at once
    url, git_env = forge.push_remote("gitlab", env)
    result = subprocess.run(
        ["git", "push", url, "HEAD:refs/heads/x"],
        cwd=repo,
        env={**git_env, "GIT_TERMINAL_PROMPT": "0"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert TOKEN not in result.stdout + result.stderr


def origin_and_clone(tmp_path: Path) -> tuple[Path, Path]:
    """A bare repository standing for the forge and a clone of it holding one commit."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "--quiet", str(origin), str(work))
    commit(work, "first", allow_empty=True)
    return origin, work


def test_branch_exists_tells_absent_from_unreachable(forge, tmp_path):
    _, work = origin_and_clone(tmp_path)
    git(work, "push", "--quiet", "origin", "HEAD:refs/heads/template-update/2.0.0")
    env = dict(os.environ)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        assert forge.branch_exists("origin", "template-update/2.0.0", env) is True
        assert forge.branch_exists("origin", "template-update/3.0.0", env) is False
        with pytest.raises(RuntimeError, match="cannot read branches of the remote"):
            forge.branch_exists(str(tmp_path / "no-such-remote"), "template-update/3.0.0", env)
    finally:
        os.chdir(cwd)


def test_template_update_fails_clearly_when_the_remote_cannot_be_read(
    template_src, template_releases, tmp_path
):
    """A newer release exists (a real `copier check-update`), but the remote cannot be read:
    one line saying so, no traceback, no token, and no update branch made."""
    project = render(template_src, tmp_path / "p", {})
    git(project, "init", "--quiet")
    commit(project, "Generated", add_all=True)
    generated_from_release(project, template_releases, "v1.0.0")  # v2.0.0 is out
    env = {**os.environ, **GITLAB, "CI_API_V4_URL": "https://gitlab.example.com/api/v4"}
    result = subprocess.run(
        [sys.executable, "scripts/template_update.py"],
        cwd=project,
        env={**env, "CI_SERVER_HOST": "127.0.0.1:9"},  # refuses at once
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("template update: FAILED: cannot read branches of the remote")
    assert "Traceback" not in result.stderr and TOKEN not in result.stdout + result.stderr
    assert git(project, "branch", "--list", "template-update/*") == ""


@pytest.fixture(scope="module")
def one_release_behind(template_src, template_releases, tmp_path_factory, offline_uv_env):
    """A repository made from v1.0.0 (rendered, locked and committed, as generated), while
    v2.0.0, which adds a line at the top of .pre-commit-config.yaml, is out."""
    project = render(template_src, tmp_path_factory.mktemp("behind") / "my-model", {})
    git(project, "init", "--quiet", "--initial-branch=main")
    run(["uv", "lock", "--quiet"], project, {**os.environ, **offline_uv_env})
    commit(project, "Generated")
    generated_from_release(project, template_releases, "v1.0.0")
    return project


def job_env(gh: Path, uv_env: dict[str, str]) -> dict[str, str]:
    """The GitHub job's environment (GITHUB_ACTIONS, GH_TOKEN, the workflow's UV_FROZEN), with
    the recording `gh` stand-in in gh first on PATH."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(uv_env)
    env.update(GITHUB_ACTIONS="true", GH_TOKEN="t0k", GITHUB_REPOSITORY="acme/my-model",
               GH_STANDIN_DIR=str(gh), PATH=f"{gh}{os.pathsep}{env['PATH']}",
               UV_FROZEN="1")  # fmt: skip
    return env


def scheduled_update(project: Path, tmp_path: Path, uv_env: dict[str, str], team_edit=None):
    """The GitHub job's `poe template-update` (GITHUB_ACTIONS, GH_TOKEN, the workflow's
    UV_FROZEN) in a fresh clone of a bare origin made from project, after team_edit (if any)
    was committed and pushed; `gh pr create` meets the recording stand-in. The job's result,
    the origin and the stand-in's calls."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(project), str(origin))
    work = clone(origin, tmp_path / "work")
    if team_edit:
        team_edit(work)
        commit(work, "Team edits")
        git(work, "push", "--quiet", "origin", "HEAD")
    gh = gh_standin(tmp_path / "gh-standin")
    result = run([sys.executable, "scripts/template_update.py"], work, job_env(gh, uv_env),
                 check=False)  # fmt: skip
    print(result.stdout[-3000:], result.stderr[-3000:])
    calls = gh / "calls.log"
    return result, origin, calls.read_text() if calls.exists() else ""


def conflicting_edits(work: Path) -> None:
    """The team rewrote the first line of .pre-commit-config.yaml, where v2.0.0 adds one, and
    asked for a pyyaml release that does not exist (`uv lock` cannot succeed)."""
    hooks = work / ".pre-commit-config.yaml"
    first, rest = hooks.read_text().split("\n", 1)
    hooks.write_text("# Team: hooks reviewed by the ML platform team.\n" + rest)
    pyproject = work / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pyyaml>=6"', '"pyyaml>=999"', 1))


@pytest.mark.slow
def test_conflicting_scheduled_update_is_proposed_with_its_conflicts_and_fails(
    one_release_behind, tmp_path, offline_uv_env
):
    result, origin, calls = scheduled_update(
        one_release_behind, tmp_path, offline_uv_env, conflicting_edits
    )
    branch = "template-update/2.0.0"
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    # Pushed and proposed for review, with the conflicting file and the lock named.
    assert "https://github.com/acme/my-model/pull/1" in result.stdout
    assert calls.startswith(f"pr create --head {branch} --title Template 2.0.0 (conflicts"), calls
    assert "- conflict: .pre-commit-config.yaml\n" in calls
    assert "- uv.lock not updated (run `uv lock` on the branch): " in calls
    pushed = git(origin, "show", f"{branch}:.pre-commit-config.yaml")
    assert "<<<<<<< " in pushed and TEMPLATE_V2_NOTE in pushed and "# Team: hooks" in pushed
    # The job's own output says so too, and shows post-update's failing `uv lock`.
    assert f"template update: FAILED: {branch} is pushed with 3 problem(s)" in result.stderr
    assert "- conflict: .pre-commit-config.yaml" in result.stderr
    # uv sync, which post-update leaves for the job's own tree, fails the same way: shown.
    assert "- post-update command failed, run it: uv sync\n" in result.stderr
    assert "- post-update command failed, run it: uv sync\n" in calls
    assert "[post-update] lock dependencies: uv lock" in output
    assert "these commands failed" in output and "    uv lock" in output
    # Next week's run opens no second request, and stays red while the markers are there.
    again = run([sys.executable, "scripts/template_update.py"], clone(origin, tmp_path / "again"),
                job_env(tmp_path / "gh-standin", offline_uv_env), check=False)  # fmt: skip
    assert again.returncode == 1, again.stdout + again.stderr
    assert f"{branch} still has conflict markers" in again.stderr
    assert "- conflict: .pre-commit-config.yaml" in again.stderr
    assert (tmp_path / "gh-standin" / "calls.log").read_text() == calls


@pytest.mark.slow
def test_a_git_hook_that_refuses_the_update_fails_the_job_with_its_output(
    one_release_behind, tmp_path, offline_uv_env
):
    """The update is committed as any commit is (no --no-verify): a pre-commit hook that
    refuses conflict markers (git's own `diff --check`, as the generated hooks do with
    check-merge-conflict) stops the job with the hook's words, and nothing is pushed."""

    def refusing_hook(work: Path) -> None:
        conflicting_edits(work)
        hook = work / ".git" / "hooks" / "pre-commit"
        hook.write_text("#!/bin/sh\nexec git diff --cached --check\n")
        hook.chmod(0o755)

    result, origin, calls = scheduled_update(
        one_release_behind, tmp_path, offline_uv_env, refusing_hook
    )
    assert result.returncode == 1, result.stdout + result.stderr
    refused = "template update: FAILED: git commit refused the update on template-update/2.0.0"
    assert f"{refused} (nothing pushed)" in result.stderr
    assert ".pre-commit-config.yaml:1: leftover conflict marker" in result.stderr
    assert "- conflict: .pre-commit-config.yaml" in result.stderr
    assert git(origin, "branch", "--list", "template-update/*") == "" and calls == ""


@pytest.mark.slow
def test_clean_scheduled_update_is_a_green_job_with_a_fresh_lock(
    one_release_behind, tmp_path, offline_uv_env
):
    result, origin, calls = scheduled_update(one_release_behind, tmp_path, offline_uv_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        "template update: https://github.com/acme/my-model/pull/1"
    )
    assert "FAILED" not in result.stdout + result.stderr
    assert calls.startswith("pr create --head template-update/2.0.0 --title Template 2.0.0 --body")
    assert "conflict" not in calls
    # post-update's `uv lock` ran in the job despite its UV_FROZEN, and the lock it pushed is
    # current.
    assert "[post-update] lock dependencies: uv lock" in result.stdout
    review = clone(origin, tmp_path / "review")
    git(review, "checkout", "--quiet", "template-update/2.0.0")
    assert git(review, "show", "HEAD:.pre-commit-config.yaml").startswith(TEMPLATE_V2_NOTE)
    run(["uv", "lock", "--check"], review, {**os.environ, **offline_uv_env})
    again = run([sys.executable, "scripts/template_update.py"], clone(origin, tmp_path / "again"),
                job_env(tmp_path / "gh-standin", offline_uv_env), check=False)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "template-update/2.0.0 already exists" in again.stdout


def test_merging_an_update_branch_never_writes_markers_into_lock_files(
    one_release_behind, tmp_path
):
    """The update branch and main both changed uv.lock and dvc.lock (re-locked, re-run) and a
    template file: git marks the lock files conflicted but keeps main's copy, without markers
    (they are re-locked / re-run, not merged), while the template file gets ordinary markers."""
    repo = clone(one_release_behind, tmp_path / "repo")
    lock = (repo / "uv.lock").read_text()
    (repo / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    commit(repo, "Pipeline run")
    changed = ("uv.lock", "dvc.lock", "params.yaml")

    def change_all(side: str) -> dict[str, bytes]:
        for name in changed:
            path = repo / name
            path.write_text(f"# {side}\n" + path.read_text())
        commit(repo, f"Changed on {side}")
        return {name: (repo / name).read_bytes() for name in changed}

    git(repo, "switch", "--quiet", "--create", "template-update/2.0.0")
    change_all("the update branch")
    git(repo, "switch", "--quiet", "-")
    main = change_all("main")
    merge = subprocess.run(
        ["git", "merge", "template-update/2.0.0"], cwd=repo, capture_output=True, text=True
    )
    assert merge.returncode == 1, merge.stdout + merge.stderr
    assert git(repo, "diff", "--name-only", "--diff-filter=U").split() == sorted(changed)
    for name in ("uv.lock", "dvc.lock"):
        assert (repo / name).read_bytes() == main[name], f"{name} was merged line by line"
    assert "<<<<<<< " in (repo / "params.yaml").read_text()  # a real conflict, for contrast
    assert lock in (repo / "uv.lock").read_text()


def test_push_tags_makes_the_tags_only_when_it_can_push_them(forge, tmp_path):
    """forge.py push-tags PATTERN... --made-by COMMAND, the CD jobs' change to the model
    registry's git tags (GTO): on GitHub without GH_TOKEN, or with a remote it cannot read,
    refused with what to fix before the command runs (no tag made, none pushed); a command that
    fails pushes nothing; with the token, the command's tags matching the patterns reach the
    remote (a local bare repository stands for GitHub: git ignores the token's header there),
    and no other tag; a second push finds nothing new."""
    origin, work = origin_and_clone(tmp_path)
    git(work, "push", "--quiet", "origin", "HEAD")
    git(work, "tag", "v1.0.0")  # not the registry's: stays local
    make_tags = [
        "sh", "-c", 'for t in "$@"; do git tag --annotate "$t" --message "$t"; done', "sh",
        "model@v1.0.0", "model#staging#1",
    ]  # fmt: skip

    def push_tags(*args: str, **extra: str) -> subprocess.CompletedProcess:
        unset = ("GH_TOKEN", "GITLAB_TOKEN", "CI_API_V4_URL", "JENKINS_URL", "VIRTUAL_ENV")
        env = {k: v for k, v in os.environ.items() if k not in unset}
        command = [sys.executable, forge.__file__, "push-tags", *args]
        env.update(GITHUB_ACTIONS="true", **extra)
        return subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)

    def tags(repo: Path) -> list[str]:
        return git(repo, "tag", "--list", "model*").split()

    refused = (
        "push-tags: FAILED: set GH_TOKEN (a token that may push tags); nothing was made or pushed\n"
    )
    for args in (["model@*", "model#*", "--made-by", *make_tags], ["model@*", "model#*"]):
        result = push_tags(*args)
        assert (result.returncode, result.stderr) == (1, refused), result
    assert tags(work) == [] and git(origin, "tag") == ""

    remote = git(work, "remote", "get-url", "origin").strip()
    git(work, "remote", "set-url", "origin", str(tmp_path / "gone.git"))
    unreadable = push_tags("model@*", "--made-by", *make_tags, GH_TOKEN=TOKEN)
    assert unreadable.returncode == 1
    assert unreadable.stderr.startswith("push-tags: FAILED: cannot read the remote ("), unreadable
    assert unreadable.stderr.endswith("); nothing was made or pushed\n"), unreadable
    assert tags(work) == []
    git(work, "remote", "set-url", "origin", remote)

    failed = push_tags("model@*", "--made-by", "sh", "-c", "git tag model@v0.9.0 && exit 3",
                       GH_TOKEN=TOKEN)  # fmt: skip
    assert failed.returncode == 3
    assert "exited with 3; nothing was pushed" in failed.stderr, failed.stderr
    assert git(origin, "tag") == ""
    git(work, "tag", "--delete", "model@v0.9.0")

    pushed = push_tags("model@*", "model#*", "--made-by", *make_tags, GH_TOKEN=TOKEN)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout == "push-tags: model#staging#1, model@v1.0.0\n"
    assert TOKEN not in pushed.stdout + pushed.stderr
    assert git(origin, "tag").split() == ["model#staging#1", "model@v1.0.0"]
    assert push_tags("model@*", "model#*", GH_TOKEN=TOKEN).stdout == "push-tags: no new tags\n"
