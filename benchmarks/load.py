"""Load-test the default variant's HTTP API: requests/s, p50/p99 latency and failures of /predict.

    uv run python benchmarks/load.py [--project DIR] [--requests N] [--concurrency C] [--rows R]
    uv run python benchmarks/bench.py --serve-load [same options]

Without --project, the default variant is rendered into a temporary directory and set up by its
copy-time tasks (which train the model). The project's API then runs with uvicorn (one worker)
on 127.0.0.1:<free port>, and a small asyncio/httpx client sends a bounded number of /predict
requests, each with R rows taken from data/prepared/test.csv, at a fixed concurrency, after a
few untimed warm-up requests. The client runs inside the project's own environment (`uv run`),
where httpx is a dev dependency. Figures are printed, never asserted: the script fails only
when the server does not start or the project cannot be generated.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
WARMUP_REQUESTS = 20


# --- client: runs in the generated project's environment (httpx) ---------------------------


async def _client(url: str, body: bytes, requests: int, concurrency: int) -> dict:
    import httpx

    latencies: list[float] = []
    failures: dict[str, int] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(requests):
        queue.put_nowait(index)
    headers = {"Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        for _ in range(WARMUP_REQUESTS):
            await client.post(url, content=body, headers=headers)

        async def worker() -> None:
            while True:
                try:
                    queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                start = time.perf_counter()
                try:
                    response = await client.post(url, content=body, headers=headers)
                    ok = response.status_code == 200
                    reason = f"HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    ok, reason = False, type(error).__name__
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    failures[reason] = failures.get(reason, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    latencies.sort()

    def pct(q: float) -> float:
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "requests": requests,
        "ok": len(latencies),
        "failures": failures,
        "seconds": wall,
        "rps": requests / wall if wall else 0.0,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": latencies[-1] * 1000 if latencies else 0,
    }


def client_main(args: argparse.Namespace) -> int:
    body = Path(args.body).read_bytes()
    result = asyncio.run(_client(args.url, body, args.requests, args.concurrency))
    print(json.dumps(result))
    return 0


# --- orchestration: generate the project, start the server, run the client ------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _generate_default(work: Path) -> Path:
    import copier

    sys.path.insert(0, str(REPO_ROOT))  # the tests' harness holds the one template-copy helper
    from tests.harness.render import copy_template

    src = copy_template(work / "src")
    dst = work / "project"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["DVC_LOCAL_REMOTE_ROOT"] = str(work / "dvc-remotes")
    copier.run_copy(str(src), str(dst), defaults=True, unsafe=True, skip_tasks=True, quiet=True)
    result = subprocess.run(
        [sys.executable, str(src / "hooks" / "post_copy.py")],
        cwd=dst, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"load: generating the default project failed:\n{result.stderr[-3000:]}")
    return dst


def _package_name(project: Path) -> str:
    import yaml

    answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
    if answers.get("serving") != "fastapi":
        sys.exit(f"load: {project} has no HTTP API (serving={answers.get('serving')!r})")
    return answers["package_name"]


def _wait_healthy(base: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"load: the server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"load: {base}/health did not answer within {timeout:.0f} s")


def run_load(args: argparse.Namespace) -> int:
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    with tempfile.TemporaryDirectory(prefix="template-load-") as tmp:
        work = Path(tmp)
        if args.project:
            project = Path(args.project).resolve()
        else:
            print("load: generating the default variant (render + copy-time tasks)...", flush=True)
            project = _generate_default(work)
        package = _package_name(project)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        server_log = (work / "server.log").open("wb")
        server = subprocess.Popen(
            ["uv", "run", "--frozen", "uvicorn", f"{package}.mlops.serve:app",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            cwd=project, env=env, stdout=server_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            _wait_healthy(base, server)
            with urllib.request.urlopen(f"{base}/metadata", timeout=10) as response:
                features = json.loads(response.read())["features"]
            with (project / "data" / "prepared" / "test.csv").open(newline="") as handle:
                reader = csv.DictReader(handle)
                rows = [
                    {name: float(row[name]) for name in features}
                    for row in itertools.islice(reader, args.rows)
                ]
            body = work / "body.json"
            body.write_text(json.dumps({"rows": rows}))
            load_before = os.getloadavg()[0]
            result = subprocess.run(
                ["uv", "run", "--frozen", "python", str(Path(__file__).resolve()), "--client",
                 "--url", f"{base}/predict", "--body", str(body),
                 "--requests", str(args.requests), "--concurrency", str(args.concurrency)],
                cwd=project, env=env, capture_output=True, text=True,
            )  # fmt: skip
            load_after = os.getloadavg()[0]
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
            server_log.close()
        if result.returncode != 0:
            sys.exit(f"load: the client failed:\n{result.stderr[-3000:]}")
        figures = json.loads(result.stdout.strip().splitlines()[-1])
    failures = sum(figures["failures"].values())
    print(
        f"\n/predict load test: {figures['requests']} requests of {len(rows)} row(s), "
        f"concurrency {args.concurrency}, uvicorn with 1 worker on 127.0.0.1 "
        f"({WARMUP_REQUESTS} untimed warm-up requests first)"
    )
    print(
        f"machine: nproc {os.cpu_count()}, 1-min load average {load_before:.2f} before, "
        f"{load_after:.2f} after (the client shares the machine with the server)"
    )
    print(f"throughput: {figures['rps']:.1f} requests/s ({figures['seconds']:.2f} s wall)")
    print(
        f"latency: p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
        f"max {figures['max_ms']:.1f} ms"
    )
    print(f"failures: {failures}" + (f" {figures['failures']}" if failures else ""))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", help="an already generated project with serving=fastapi")
    parser.add_argument("--requests", type=int, default=2000, help="timed requests (default 2000)")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="requests in flight (default 16)"
    )
    parser.add_argument("--rows", type=int, default=1, help="rows per request (default 1)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--body", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.rows < 1:
        parser.error("--requests, --concurrency and --rows must be at least 1")
    return client_main(args) if args.client else run_load(args)


if __name__ == "__main__":
    sys.exit(main())
