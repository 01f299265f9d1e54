"""The generated API's server sheds slow and excess clients (issue 31), in a cached project.

The project's own serve command (`python -m my_model serve`, the Dockerfile's CMD) runs on
127.0.0.1 with an open-file limit of 128 (prlimit) and 2 s read deadlines. Clients are plain
sockets of this process, bounded in count (at most 150) and time (a few seconds each phase):
ones that trickle their headers a byte at a time, and a flood above the connection limit.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import time

import pytest

from tests.harness.ci_variants import ALL_PROVIDERS
from tests.harness.services import api_command, free_port, http_json, http_ok, service

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group(ALL_PROVIDERS.id)]

PACKAGE = "my_model"
OPEN_FILES = 128  # the server's soft and hard limit
READ_TIMEOUT = 2.0  # seconds, for the headers and for the body
FILES_KEPT_FREE = 64  # mlops/server.py: the connection limit is OPEN_FILES less this


HEADERS = b"POST /predict HTTP/1.1\r\nHost: api\r\n"  # and never the blank line that ends them
BODY = HEADERS + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"


def open_slowly(port: int, count: int, start: bytes = HEADERS) -> list[socket.socket]:
    """count connections that each send the start of a request (its headers' or its body's),
    never the end."""
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(start)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server closed it; a byte of header is sent when it has not (a slow client
    keeps sending, so only a deadline that data does not reset closes it)."""
    try:
        if sock.recv(1024) == b"":
            return True
    except BlockingIOError:
        pass
    except OSError:  # reset
        return True
    try:
        sock.send(b"X")
    except BlockingIOError:
        pass
    except OSError:
        return True
    return False


def wait_closed(sockets: list[socket.socket], seconds: float) -> list[socket.socket]:
    """Trickle a byte to each open one every 0.2 s for up to seconds; those still open."""
    deadline = time.monotonic() + seconds
    still_open = list(sockets)
    while still_open and time.monotonic() < deadline:
        still_open = [sock for sock in still_open if not closed_by_server(sock)]
        time.sleep(0.2)
    return still_open


@pytest.fixture
def server(generated_projects, tmp_path):
    if not shutil.which("prlimit"):
        pytest.skip("prlimit (util-linux) is not installed")
    project = generated_projects(ALL_PROVIDERS)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = ["prlimit", f"--nofile={OPEN_FILES}:{OPEN_FILES}", "--", *api_command(PACKAGE, port)]
    deadline = str(READ_TIMEOUT)
    env = {"REQUEST_HEADER_TIMEOUT": deadline, "REQUEST_BODY_TIMEOUT": deadline}
    log = tmp_path / "server.log"
    with service(command, lambda: http_ok(f"{base}/health"), project, env, 120, log):
        smoke = json.loads((project / "deploy" / "smoke-request.json").read_text())
        request = {"rows": smoke["rows"]}  # its expected labels are for the smoke test
        yield port, base, request, log


def test_slow_clients_are_shed_while_requests_are_answered(server):
    port, base, request, log = server

    # Slow clients well under the limit: answered requests meanwhile, the slow ones closed by
    # the header or the body deadline although they keep sending.
    slow = open_slowly(port, 25) + open_slowly(port, 5, BODY)
    try:
        for _ in range(5):
            status, body = http_json("POST", f"{base}/predict", request)
            assert status == 200 and body["predictions"], body
        assert wait_closed(slow, READ_TIMEOUT + 5) == []
    finally:
        for sock in slow:
            sock.close()

    # A flood above the limit (the open-file limit less the descriptors kept free): the excess
    # is closed at once, the rest by the deadline; no descriptor runs out, and the server
    # answers again as soon as they are gone.
    flood = []
    try:
        with contextlib.suppress(OSError):  # the listen backlog may refuse some: fine
            flood = open_slowly(port, 150)
        assert len(flood) > OPEN_FILES
        time.sleep(0.5)
        assert len(wait_closed(flood, 0.5)) <= OPEN_FILES - FILES_KEPT_FREE  # closed on accept
        assert wait_closed(flood, READ_TIMEOUT + 5) == []
    finally:
        for sock in flood:
            sock.close()
    status, body = http_json("POST", f"{base}/predict", request)
    assert status == 200 and body["predictions"], body

    text = log.read_text()
    assert "Too many open files" not in text and "Traceback" not in text, text[-3000:]
    # Each repeated warning printed once (then at most once a minute), not once per client.
    assert text.count("headers too slowly: closed") == 1, text[-3000:]
    assert text.count("body too slowly: closed") == 1, text[-3000:]
    assert text.count("new connections are closed") <= 1, text[-3000:]
