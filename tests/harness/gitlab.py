"""Run a generated project's .gitlab-ci.yml with gitlab-ci-local (shell executor, on this
machine).

- Jobs run on the host (`--force-shell-executor`) instead of in the `ghcr.io/astral-sh/uv`
  image: the host has uv, git and every Python the projects target.
- No `--shell-isolation`: with it, gitlab-ci-local 4.72 re-syncs the build directory from the
  git-tracked files before `after_script`, deleting the job's untracked outputs (the JUnit
  report, the model) before they are exported as artifacts. Jobs run in the fresh clone instead,
  and the artifacts are still collected from the declared `artifacts:paths`.
- `CI_PROJECT_DIR` is set to the clone: gitlab-ci-local gives jobs with `image:` the container
  path /builds/<group>/<project> even in the shell executor, so `$CI_PROJECT_DIR/...` paths
  (the uv cache) would land in /builds on this machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness.ci_run import CiRun
from tests.harness.render import REPO_ROOT
from tests.harness.services import docker_available

GITLAB_CI_LOCAL = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "gitlab-ci-local"
RUN_TIMEOUT = 1200  # seconds for one pipeline run (a loaded machine runs several at once)
PROVIDER = "gitlab"
SHELL_EXECUTOR = "shell executor instead of the uv image"
NO_DAEMON = "no Docker daemon"
# Predefined variables the tests set, as GitLab would for the pipeline they emulate.
OVERRIDDEN = (
    "CI_PROJECT_DIR",
    "CI_DEFAULT_BRANCH",
    "CI_COMMIT_BRANCH",
    "CI_COMMIT_REF_NAME",
    "CI_COMMIT_TAG",
    "CI_PIPELINE_SOURCE",
)
POE_STEP = re.compile(r"^.*?Poe => (.*)$", re.MULTILINE)


def gitlab_ci_local() -> Path:
    if not os.access(GITLAB_CI_LOCAL, os.X_OK):
        pytest.fail(f"{GITLAB_CI_LOCAL} is missing: run scripts/install-ci-tools")
    return GITLAB_CI_LOCAL


def pipeline_variables(project: Path, **pipeline: str) -> dict[str, str]:
    """The predefined variables of a pipeline of the clone at project, plus `pipeline`."""
    return {"CI_PROJECT_DIR": str(project), "CI_DEFAULT_BRANCH": "main", **pipeline}


def _arguments(variables: dict[str, str], unset: tuple[str, ...]) -> list[str]:
    args = ["--force-shell-executor", "--no-color", "--max-job-name-padding", "0"]
    for name, value in variables.items():
        args += ["--variable", f"{name}={value}"]
    for name in unset:
        args += ["--unset-variable", name]
    return [*args, "--ignore-predefined-vars", ",".join(OVERRIDDEN)]


def selected_jobs(
    project: Path, env: dict, variables: dict, unset: tuple[str, ...] = ()
) -> set[str]:
    """Jobs the pipeline's rules select for these variables (no job runs)."""
    result = subprocess.run(
        [
            str(gitlab_ci_local()),
            "--list-json",
            "--json-schema-validation=false",
            *_arguments(variables, unset),
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listing = json.loads(result.stdout[result.stdout.index("[") :])
    return {job["name"] for job in listing if job["when"] != "never"}


def job_status(log: str, job: str) -> str:
    """success or failure as gitlab-ci-local's closing report says, else "not run"."""
    for word, status in (("PASS", "success"), ("FAIL", "failure")):
        if re.search(rf"^\s*{word}\s+{re.escape(job)}\s*$", log, re.MULTILINE):
            return status
    return "not run"


def run_pipeline(
    project: Path,
    jobs: list[str],
    env: dict,
    variables: dict,
    *,
    variant: str,
    trigger: str,
    unset: tuple[str, ...] = (),
) -> CiRun:
    """Run jobs (all the pipeline selects when jobs is empty) with cwd = the clone, so
    gitlab-ci-local reads the project's own .gitlab-ci.yml. Jobs are listed by the status the
    closing report gives them (every selected job when jobs is empty)."""
    command = [str(gitlab_ci_local()), *jobs, *_arguments(variables, unset)]
    result = subprocess.run(
        command,
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    log = result.stdout
    (project.parent / f"gitlab-ci-local-{'-'.join(jobs) or 'pipeline'}.log").write_text(log)
    names = jobs or sorted(selected_jobs(project, env, variables, unset))
    statuses = {job: job_status(log, job) for job in names}
    return CiRun(
        provider=PROVIDER,
        variant=variant,
        trigger=trigger,
        passed=result.returncode == 0
        and all(status != "failure" for status in statuses.values())
        and any(status == "success" for status in statuses.values()),
        jobs=statuses,
        steps_run=POE_STEP.findall(log),
        substituted=[SHELL_EXECUTOR],
        log=log,
        command=command,
        artifacts=project / ".gitlab-ci-local" / "artifacts",
    )


def docker_image_job(
    project: Path, env: dict, variables: dict, *, variant: str, trigger: str
) -> CiRun:
    """The docker-image job, only against a reachable daemon with a docker client on PATH:
    its before_script installs docker.io with apt when the client is missing, which in the
    shell executor would modify this machine. Without a daemon: listed as not run."""
    if not docker_available():
        return CiRun(
            PROVIDER,
            variant,
            trigger,
            passed=True,
            jobs={"docker-image": "not run"},
            substituted=[f"docker-image: not run ({NO_DAEMON})"],
        )
    assert shutil.which("docker"), "the docker-image job would apt-get install docker.io here"
    # The dind service is a container; the shell executor talks to the daemon of this machine.
    overrides = {
        name: env[name]
        for name in ("DOCKER_HOST", "BASE_IMAGE", "DOCKER_BUILD_FLAGS")
        if env.get(name)
    }
    overrides.setdefault("DOCKER_HOST", "unix:///var/run/docker.sock")
    run = run_pipeline(
        project,
        ["docker-image"],
        env,
        {**variables, **overrides},
        variant=variant,
        trigger=trigger,
    )
    run.substituted.append(
        f"docker-image: local daemon ({overrides['DOCKER_HOST']}) instead of docker:dind"
    )
    return run
