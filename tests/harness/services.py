"""Real local services for the tests (loopback only); conftest's session fixtures use them.

Docker Hub is unreachable from the machines these tests run on, so nothing here pulls an image:

- `docker_daemon`: a real `dockerd` (Debian's docker.io) with vfs storage, no bridge and no
  iptables, its own exec root and unix socket in a temporary directory and its own data root
  (cached in ~/.cache/mlops-template-tests/dockerd-<slot>, see `_data_root`); started and
  stopped around the `with` block. Clients use Debian's `/usr/bin/docker` (it has BuildKit built in;
  the preinstalled /usr/local/bin/docker lacks buildx) through a PATH entry put first.
- `base_image`: a Debian bookworm root file system with python3 and its venv module, made with
  `debootstrap --variant=minbase`, imported into the daemon. The tarball is cached across
  sessions in ~/.cache/mlops-template-tests/ (or $MLOPS_TEMPLATE_TEST_CACHE), keyed by
  BASE_IMAGE_VERSION; bump that string to rebuild it. Its python3 is 3.11 (BASE_IMAGE_PYTHON),
  so images must be built from projects generated with python_version 3.11.
- `local_registry`: Debian's docker-registry (distribution 2.8) on 127.0.0.1:<free port>.
- `docker_env`: the environment a generated project's `uv run poe docker-build` / `docker-push`
  (or any `docker` command) needs to use all of the above; merge it into a subprocess env.
- `buildah_env`: Debian's Buildah (daemonless, as GitLab's docker-image job builds) with its
  storage in a given directory, the same base image imported, and the local registry allowed.
- `ssh_host`: Debian's OpenSSH server, a deployment host in front of the test's daemon.

Every service is waited for with `wait_until`. Nothing is installed here: when a tool is
missing the services skip and say which, and
scripts/install-ci-tools installs them (apt packages docker.io, docker-registry, debootstrap,
buildah).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Bump when the base image's recipe changes: the cached tarball is keyed by it.
BASE_IMAGE_VERSION = "bookworm-minbase-python3-venv-1"
BASE_IMAGE_SUITE = "bookworm"
BASE_IMAGE_PACKAGES = ("python3", "python3-venv")
BASE_IMAGE_PYTHON = "3.11"  # bookworm's python3
BASE_IMAGE_TAG = f"mlops-template-base:{BASE_IMAGE_VERSION}"
DEBIAN_MIRROR = os.environ.get("DEBOOTSTRAP_MIRROR", "http://deb.debian.org/debian")
CACHE_DIR = Path(
    os.environ.get("MLOPS_TEMPLATE_TEST_CACHE") or Path.home() / ".cache" / "mlops-template-tests"
)

DOCKER_CLIENT = Path("/usr/bin/docker")  # Debian's docker.io client, BuildKit built in
CA_BUNDLE_CANDIDATES = (
    os.environ.get("SSL_CERT_FILE", ""),
    "/etc/ssl/certs/ca-certificates.crt",
)
INSTALL_HINT = "run scripts/install-ci-tools (apt: docker.io docker-registry debootstrap buildah)"


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _require(*tools: str) -> dict[str, str]:
    """Absolute paths of the tools, or skip naming every missing one."""
    found, missing = {}, []
    for tool in tools:
        path = str(DOCKER_CLIENT) if tool == "docker" else shutil.which(tool)
        if path and Path(path).is_file():
            found[tool] = path
        else:
            missing.append("Debian's /usr/bin/docker" if tool == "docker" else tool)
    if missing:
        pytest.skip(f"container tests need {', '.join(missing)}: {INSTALL_HINT}")
    return found


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root (dockerd and debootstrap run rootful here)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), 1):
            return True
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """Whether url answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def http_json(method: str, url: str, body: object | None = None) -> tuple[int, object]:
    """The status and JSON body of a request with a JSON body, error statuses included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def ca_bundle() -> Path | None:
    """The host's CA bundle (it carries the HTTPS proxy's CA), given to builds as a secret."""
    for candidate in CA_BUNDLE_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _stop(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_until(
    ready: Callable[[], bool],
    what: str,
    process: subprocess.Popen | None,
    log: Path | None,
    timeout: float,
    interval: float = 0.3,
) -> None:
    """Poll ready() until it is true; fail naming `what` (with the log's tail) when the
    process exits first or the timeout passes."""
    deadline = time.monotonic() + timeout
    while not ready():
        exited = process is not None and process.poll() is not None
        if exited or time.monotonic() > deadline:
            pytest.fail(f"{what} did not become ready:\n{_tail(log) if log else ''}")
        time.sleep(interval)


def api_command(package: str, port: int) -> list[str]:
    """A generated project's API, served by its own serve command (the image's) from the
    project's own environment."""
    return ["uv", "run", "--frozen", "python", "-m", package, "serve", "--port", str(port)]


@contextlib.contextmanager
def service(command: list[str], ready, cwd: Path, env: dict[str, str], timeout: float, log: Path):
    """Start a loopback service in its own process group (env: variables added to this
    process's); wait (bounded) until ready(); stop it and whatever it started."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(ready, command[0], process, log, timeout, interval=0.5)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        # Children the service started (server workers, job consumers) stay in its group and
        # may outlive it: end whatever is left of the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def docker_available() -> bool:
    """Whether the default `docker` answers (the CI runner tests have no daemon of their own)."""
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextlib.contextmanager
def docker_daemon() -> Iterator[dict[str, str]]:
    """A private dockerd for this session (one per xdist worker); yields the client env."""
    tools = _require("dockerd", "docker", "containerd", "runc")
    _require_root("dockerd")
    # Short path: unix sockets (dockerd's, containerd's) must stay under 108 characters.
    root = Path(tempfile.mkdtemp(prefix="mlops-dockerd-", dir="/tmp"))
    data_root, slot_lock = _data_root(root)
    bindir = root / "bin"
    bindir.mkdir()
    (bindir / "docker").symlink_to(tools["docker"])
    (root / "config").mkdir()
    (root / "daemon.json").write_text("{}")
    sock = root / "docker.sock"
    log = root / "dockerd.log"
    command = [
        tools["dockerd"],
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
        f"--config-file={root / 'daemon.json'}",
        f"--data-root={data_root}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'dockerd.pid'}",
        f"--host=unix://{sock}",
    ]
    env = {
        "DOCKER_HOST": f"unix://{sock}",
        "DOCKER_BUILDKIT": "1",
        "DOCKER_CONFIG": str(root / "config"),
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        version = [tools["docker"], "version", "--format", "{{.Server.Version}}"]
        wait_until(
            lambda: (
                subprocess.run(version, env={**os.environ, **env}, capture_output=True).returncode
                == 0
            ),
            f"dockerd ({' '.join(command)})",
            process,
            log,
            timeout=60,
            interval=0.5,
        )
        yield env
    finally:
        with contextlib.suppress(Exception):
            running = subprocess.run(
                [tools["docker"], "ps", "-aq"],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.split()
            if running:
                subprocess.run(
                    [tools["docker"], "rm", "-f", *running],
                    env={**os.environ, **env},
                    capture_output=True,
                    timeout=60,
                )
            # Keep what speeds up the next session (the base image, a bounded build cache) and
            # nothing else: vfs copies every layer in full, so a cached data root would grow by
            # gigabytes with each session's images.
            images = subprocess.run(
                [tools["docker"], "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout.split()
            stale = [image for image in images if image != BASE_IMAGE_TAG]
            for command in (
                ["image", "rm", "--force", *stale] if stale else None,
                ["image", "prune", "--force"],
                ["builder", "prune", "--force", "--keep-storage", "3GB"],
            ):
                if command:
                    subprocess.run(
                        [tools["docker"], *command],
                        env={**os.environ, **env},
                        capture_output=True,
                        timeout=600,
                    )
        _stop(process)
        _remove_tree(root)  # sockets, exec root, and the data root unless it is cached
        if slot_lock:
            slot_lock.close()


def _data_root(root: Path):
    """dockerd's data root. vfs keeps a full copy of every layer (gigabytes, and deleting them
    takes minutes on a busy disk), so by default it persists in CACHE_DIR/dockerd-<slot>, one
    slot per concurrent session (file-locked), keeping the base image and the build cache for
    the next session. MLOPS_TEMPLATE_TEST_FRESH_DOCKER=1 uses a temporary one, deleted after."""
    if os.environ.get("MLOPS_TEMPLATE_TEST_FRESH_DOCKER") == "1":
        return root / "data", None
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    for slot in range(64):
        lock = (CACHE_DIR / f"dockerd-{slot}.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        return CACHE_DIR / f"dockerd-{slot}", lock
    return root / "data", None


def _remove_tree(root: Path) -> None:
    """Unmount what dockerd left under root (its netns), then delete root without crossing
    into any other file system. vfs keeps a full copy of every layer: gigabytes, never left."""
    prefix = str(root) + "/"
    with contextlib.suppress(OSError):
        mounts = [
            line.split()[4].replace("\\040", " ")
            for line in Path("/proc/self/mountinfo").read_text().splitlines()
        ]
        for mount in sorted((m for m in mounts if m.startswith(prefix)), reverse=True):
            subprocess.run(["umount", "--lazy", mount], capture_output=True)
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], capture_output=True)


def _build_base_tarball(target: Path) -> None:
    """debootstrap a minimal bookworm with python3 + venv and tar it to target (atomically)."""
    tools = _require("debootstrap", "tar")
    _require_root("debootstrap")
    work = Path(tempfile.mkdtemp(prefix="base-", dir=target.parent))
    try:
        rootfs = work / "rootfs"
        log = work / "debootstrap.log"
        with log.open("wb") as out:
            result = subprocess.run(
                [
                    tools["debootstrap"],
                    "--variant=minbase",
                    f"--include={','.join(BASE_IMAGE_PACKAGES)}",
                    BASE_IMAGE_SUITE,
                    str(rootfs),
                    DEBIAN_MIRROR,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if result.returncode != 0:
            pytest.fail(f"debootstrap of the base image failed:\n{_tail(log)}")
        # Smaller image: no package lists or downloaded .debs.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        partial = work / "rootfs.tar"
        subprocess.run(
            [tools["tar"], "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            check=True,
        )
        partial.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def base_image_tarball() -> Path:
    """The cached root file system tarball, built once per machine (file-locked for xdist)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    target = CACHE_DIR / f"{BASE_IMAGE_VERSION}.tar"
    with (CACHE_DIR / f"{BASE_IMAGE_VERSION}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_file():
            _build_base_tarball(target)
    return target


def import_base_image(docker_daemon: dict[str, str]) -> str:
    """Tag of the local python3 base image, imported into this session's daemon."""
    tarball = base_image_tarball()
    subprocess.run(
        [
            str(DOCKER_CLIENT),
            "import",
            "--change",
            'CMD ["python3"]',
            "--change",
            "ENV LANG=C.UTF-8",
            str(tarball),
            BASE_IMAGE_TAG,
        ],
        env={**os.environ, **docker_daemon},
        check=True,
        capture_output=True,
    )
    return BASE_IMAGE_TAG


@contextlib.contextmanager
def local_registry() -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1:<free port> (Docker allows plain HTTP on loopback)."""
    tools = _require("docker-registry")
    root = Path(tempfile.mkdtemp(prefix="mlops-registry-", dir="/tmp"))
    address = f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "version": 0.1,
                "log": {"level": "warn"},
                "storage": {
                    "filesystem": {"rootdirectory": str(root / "data")},
                    "delete": {"enabled": True},
                },
                "http": {"addr": address},
            }
        )
    )
    log = root / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [tools["docker-registry"], "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(
            lambda: http_ok(f"http://{address}/v2/"),
            f"docker-registry on {address}",
            process,
            log,
            timeout=30,
        )
        yield address
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)


def docker_env(
    docker_daemon: dict[str, str], base_image: str, local_registry: str
) -> dict[str, str]:
    """Environment for `docker` and a generated project's docker-build / docker-push tasks:

    DOCKER_HOST, DOCKER_BUILDKIT, DOCKER_CONFIG, PATH (Debian's docker first), BASE_IMAGE (the
    local python3 image; projects must use python_version BASE_IMAGE_PYTHON), REGISTRY
    (host:port of the local registry; tag images REGISTRY/name:tag to push) and
    DOCKER_BUILD_FLAGS (host network for builds, the host CA bundle as build secret "ca").
    """
    return {
        **docker_daemon,
        "BASE_IMAGE": base_image,
        "REGISTRY": local_registry,
        "DOCKER_BUILD_FLAGS": build_flags(),
    }


def build_flags() -> str:
    """Image builds here: the host network (the proxy), the host CA bundle as build secret."""
    flags = ["--network", "host"]
    if bundle := ca_bundle():
        flags += ["--secret", f"id=ca,src={bundle}"]
    return " ".join(flags)


def buildah_env(root: Path, registry: str) -> dict[str, str]:
    """Environment for a generated project's image tasks with CONTAINER_ENGINE=buildah (GitLab's
    docker-image job), on this machine: Buildah's storage under root (vfs; deleted with it),
    the local base image imported into it from the cached root file system (BASE_IMAGE), the
    local registry allowed over plain HTTP (Buildah, unlike Docker, wants TLS on loopback too)
    and the build flags docker_env gives Docker builds."""
    _require_root("Buildah (rootful vfs storage)")
    tools = _require("buildah")
    root.mkdir(parents=True, exist_ok=True)
    storage = root / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{root / "graph"}"\nrunroot = "{root / "run"}"\n'
    )
    # An auth file of its own: with the Docker tests' DOCKER_CONFIG set, Buildah would expect
    # $DOCKER_CONFIG/config.json, which only a `docker login` writes.
    auth = root / "auth.json"
    auth.write_text('{"auths": {}}\n')
    registries = root / "registries.conf"
    registries.write_text(f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n')
    env = {
        **os.environ,
        "CONTAINERS_STORAGE_CONF": str(storage),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "REGISTRY_AUTH_FILE": str(auth),
        "STORAGE_DRIVER": "vfs",
        "BUILDAH_ISOLATION": "chroot",
    }
    buildah = tools["buildah"]

    def call(*args: str) -> str:
        return subprocess.run(
            [buildah, *args], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    container = call("from", "scratch")
    call("add", container, str(base_image_tarball()), "/")  # a tarball is unpacked
    call("config", "--cmd", "python3", "--env", "LANG=C.UTF-8", container)
    base = f"localhost/{BASE_IMAGE_TAG}"
    call("commit", "--quiet", "--rm", container, base)
    return {
        **{
            k: env[k]
            for k in ("CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF", "REGISTRY_AUTH_FILE")
        },
        "BASE_IMAGE": base,
        "DOCKER_BUILD_FLAGS": build_flags(),
    }


@contextlib.contextmanager
def ssh_host(docker_daemon: dict[str, str]) -> Iterator[dict[str, str]]:
    """A deployment host: Debian's OpenSSH server on 127.0.0.1:<free port>, accepting a key made
    here, whose sessions use the test's Docker daemon (as a real host's sessions use its own).

    Returns the settings a generated project's `poe deploy` reads: DEPLOY_HOST, DEPLOY_SSH_PORT,
    DEPLOY_SSH_KEY, DEPLOY_SSH_KNOWN_HOSTS and DEPLOY_DIR (a temporary base directory for the
    environments' directories instead of the login user's home).
    """
    _require_root("the SSH deployment host (sshd)")
    tools = _require("ssh-keygen", "docker-compose")
    sshd = Path("/usr/sbin/sshd")
    if not sshd.is_file():
        pytest.skip(f"deployment tests need openssh-server: {INSTALL_HINT}")
    root = Path(tempfile.mkdtemp(prefix="mlops-sshd-", dir="/tmp"))
    for name in ("host_key", "client_key"):
        subprocess.run(
            [tools["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)],
            check=True,
        )
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    port = free_port()
    docker_path = f"{DOCKER_CLIENT.parent}:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        # COMPOSE_HTTP_TIMEOUT: on this host (vfs storage, a loaded 2-core machine) recreating
        # a container can outlast Compose's default 60 s wait for the daemon's answer.
        f"SetEnv DOCKER_HOST={docker_daemon['DOCKER_HOST']} PATH={docker_path} "
        "COMPOSE_HTTP_TIMEOUT=600\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    log = root / "sshd.log"
    process = subprocess.Popen(
        [str(sshd), "-D", "-e", "-f", str(root / "sshd_config"), "-E", str(log)]
    )
    try:
        wait_until(
            lambda: port_open(port), f"sshd on port {port}", process, log, timeout=20, interval=0.2
        )
        host_key = (root / "host_key.pub").read_text().split()
        (root / "environments").mkdir()
        yield {
            "DEPLOY_HOST": "root@127.0.0.1",
            "DEPLOY_SSH_PORT": str(port),
            "DEPLOY_SSH_KEY": (root / "client_key").read_text(),
            "DEPLOY_SSH_KNOWN_HOSTS": f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}",
            "DEPLOY_DIR": str(root / "environments"),
        }
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)
