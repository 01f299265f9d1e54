"""The generated scripts/forge.py: tokens stay out of URLs and logs, and a remote that cannot
be read is an error, never taken for "the branch is absent"."""

from __future__ import annotations

import base64
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.git import commit, git
from tests.harness.render import REPO_ROOT, generated_from_release, render

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


def test_branch_exists_tells_absent_from_unreachable(forge, tmp_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "--quiet", "--bare", str(origin))
    work = tmp_path / "work"
    git(tmp_path, "clone", "--quiet", str(origin), str(work))
    commit(work, "first", allow_empty=True)
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
