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

import contextlib
import http.server
import json
import os
import re
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.ci_run import CiRun
from tests.harness.render import REPO_ROOT

GITLAB_CI_LOCAL = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "gitlab-ci-local"
RUN_TIMEOUT = 1200  # seconds for one pipeline run (a loaded machine runs several at once)
PROVIDER = "gitlab"
SHELL_EXECUTOR = "shell executor instead of the uv image"
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
    # Any other predefined variable a test sets (CI_SERVER_HOST, ...) is overridden the same way.
    overridden = dict.fromkeys([*OVERRIDDEN, *(n for n in variables if n.startswith("CI_"))])
    return [*args, "--ignore-predefined-vars", ",".join(overridden)]


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


def docker_image_not_run(*, variant: str, trigger: str) -> CiRun:
    """The docker-image job, listed as not run: a Buildah build per variant would cost minutes;
    tests/test_deploy.py runs it for real (buildah_variables) before deploying its image."""
    return CiRun(
        PROVIDER,
        variant,
        trigger,
        passed=True,
        jobs={"docker-image": "not run"},
        substituted=["docker-image: not run here (built with Buildah in tests/test_deploy.py)"],
    )


# What the deploy test substitutes in the docker-image job (services.buildah_env).
BUILDAH_SUBSTITUTED = (
    "docker-image: this machine's Buildah (installed, not apt-get in the job), the local base "
    "image and the local registry over HTTP"
)


@contextlib.contextmanager
def merge_request_api(token: str) -> Iterator[tuple[str, list[dict]]]:
    """A stand-in for GitLab's API that only opens merge requests (GitLab's own needs a GitLab
    server): POST /api/v4/projects/<id>/merge_requests with the token in PRIVATE-TOKEN is
    recorded (project, form fields) and answered with a web_url, as GitLab answers; anything
    else gets 404, a wrong token 401. Yields the API's URL (CI_API_V4_URL) and the records."""
    opened: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            match = re.fullmatch(r"/api/v4/projects/([^/]+)/merge_requests", self.path)
            fields = urllib.parse.parse_qs(
                self.rfile.read(int(self.headers["Content-Length"] or 0)).decode()
            )
            status, body = 404, {"message": "404 Not Found"}
            if match and self.headers["PRIVATE-TOKEN"] != token:
                status, body = 401, {"message": "401 Unauthorized"}
            elif match:
                project = urllib.parse.unquote(match.group(1))
                opened.append({"project": project, **{k: v[0] for k, v in fields.items()}})
                web_url = f"http://gitlab.example.com/{project}/-/merge_requests/{len(opened)}"
                status, body = 201, {"iid": len(opened), "web_url": web_url}
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body).encode())

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/api/v4", opened
    finally:
        server.shutdown()
