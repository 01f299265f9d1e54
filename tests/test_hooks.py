"""hooks/post_copy.py: clear errors for missing tools, and a plan that only runs on copy;
hooks/post_update.py: the data contract for a repository from an earlier release."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.harness.render import REPO_ROOT, render

sys.path.insert(0, str(REPO_ROOT / "hooks"))
import post_copy  # noqa: E402
import post_update  # noqa: E402

ANSWERS = {
    "project_slug": "demo",
    "dvc_remote": "local",
    "author_name": "A",
    "author_email": "a@b.c",
}


def test_missing_tools_are_named_with_how_to_install():
    problems = post_copy.missing_tools(which=lambda tool: None if tool == "uv" else "/usr/bin/git")
    assert problems == [
        "'uv' was not found on PATH: install it with `python -m pip install uv` "
        "(https://docs.astral.sh/uv/)"
    ]


def test_missing_tool_fails_cleanly_without_traceback(template_src, tmp_path):
    dst = render(template_src, tmp_path / "project", {})
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "hooks" / "post_copy.py")],
        cwd=dst,
        capture_output=True,
        text=True,
        env={"PATH": str(empty_path)},
    )
    assert result.returncode == 1
    assert "'git' was not found on PATH" in result.stderr
    assert "'uv' was not found on PATH" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (dst / ".git").exists(), "nothing is half set up"


def test_local_remote_lives_outside_the_repository(tmp_path):
    assert post_copy.local_remote_dir("demo", {"DVC_LOCAL_REMOTE_ROOT": str(tmp_path)}) == (
        tmp_path.resolve() / "demo"
    )
    xdg = post_copy.local_remote_dir("demo", {"XDG_DATA_HOME": str(tmp_path)})
    assert xdg == tmp_path.resolve() / "dvc-remotes" / "demo"


def test_plan_commits_code_before_the_first_pipeline_run():
    steps = [name for name, _ in post_copy.plan(ANSWERS, "/r", has_git=False, has_dvc=False)]
    assert steps.index("git init") < steps.index("first commit") < steps.index("first pipeline run")
    assert steps.index("first pipeline run") < steps.index("push data and models")
    assert steps[-1] == "baseline commit"


def test_plan_skips_push_for_remotes_that_need_credentials():
    steps = post_copy.plan({**ANSWERS, "dvc_remote": "s3"}, "s3://b/p", has_git=True, has_dvc=True)
    names = [name for name, _ in steps]
    assert "push data and models" not in names
    assert "git init" not in names and "dvc init" not in names


def test_update_writes_the_bundled_contract_only_into_a_repository_without_one(tmp_path):
    # A repository from a release before schema.yaml: the team-owned file is not rendered by an
    # update, so the post-update task writes the template's copy.
    (tmp_path / "src" / "demo").mkdir(parents=True)
    written = post_update.write_missing_contract("demo", tmp_path)
    bundled = REPO_ROOT / "template" / "src" / "{{ package_name }}" / "schema.yaml"
    assert written == tmp_path / "src" / "demo" / "schema.yaml"
    assert written.read_bytes() == bundled.read_bytes()
    written.write_text("features: {}  # the team's own\n")
    assert post_update.write_missing_contract("demo", tmp_path) is None
    assert written.read_text() == "features: {}  # the team's own\n"


def test_copy_task_runs_only_on_copy():
    tasks = yaml.safe_load((REPO_ROOT / "copier.yml").read_text())["_tasks"]
    assert tasks and all("_copier_operation == 'copy'" in task["when"] for task in tasks)


def test_hooks_use_only_what_copier_ships():
    # Tasks run with Copier's own interpreter ({{ _copier_python }}): stdlib, PyYAML, Jinja.
    source = Path(post_copy.__file__).read_text()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and "__future__" not in line
    }
    assert imports <= {
        "os",
        "re",
        "shlex",
        "shutil",
        "subprocess",
        "sys",
        "pathlib",
        "jinja2",
        "yaml",
    }
