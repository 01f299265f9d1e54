"""Time the template's default variant: render, copy-time tasks, copy to green CI, no-op repro.

    uv run python benchmarks/bench.py [--runs N]
    uv run python benchmarks/bench.py --serve-load [--requests N --concurrency C ...]

--serve-load runs the /predict load test of benchmarks/load.py instead (see there).

Each run renders the defaults into a fresh temporary directory (in-process Copier, tasks
skipped), runs hooks/post_copy.py there, then `uv run poe ci`, then a no-op `dvc repro`.
One untimed warm-up run comes first, so every figure is for a warm uv cache. DVC's local
remote goes to a temporary DVC_LOCAL_REMOTE_ROOT, never the home directory. Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import copier

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the tests' harness holds the one template-copy helper
from tests.harness.render import copy_template  # noqa: E402

TARGET_COPY_TO_GREEN = 60.0  # seconds, warm uv cache
ROWS = [  # (key, label)
    ("render", "copier render (in-process, skip_tasks)"),
    ("post_copy", "copy-time tasks (hooks/post_copy.py)"),
    ("ci", "uv run poe ci (first, in the new project)"),
    ("green", "copy to green: render + post_copy + poe ci"),
    ("repro", "no-op `uv run dvc repro`"),
    ("repro_frozen", "no-op `uv run --frozen dvc repro`"),
]


def fail(step: str, detail: str) -> None:
    print(f"\nbench: step '{step}' failed\n{detail}", file=sys.stderr)
    sys.exit(1)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run(step: str, command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Run a command, return (seconds, stdout); on failure print its output's tail and exit."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        fail(
            step,
            f"command: {' '.join(command)} (exit {result.returncode}, cwd {cwd})\n"
            f"--- stdout (tail) ---\n{tail(result.stdout)}\n"
            f"--- stderr (tail) ---\n{tail(result.stderr)}",
        )
    return seconds, result.stdout + result.stderr


def one_run(src: Path, work: Path) -> dict[str, float]:
    """Render, set up, reach green CI and time a no-op repro in a fresh directory."""
    work.mkdir()
    dst = work / "project"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # not the bench's venv
    env["DVC_LOCAL_REMOTE_ROOT"] = str(work / "dvc-remotes")
    times: dict[str, float] = {}
    start = time.perf_counter()
    try:
        copier.run_copy(str(src), str(dst), defaults=True, unsafe=True, skip_tasks=True, quiet=True)
    except Exception:
        fail("copier render", tail(traceback.format_exc()))
    times["render"] = time.perf_counter() - start
    times["post_copy"], _ = run(
        "post_copy", [sys.executable, str(src / "hooks" / "post_copy.py")], dst, env
    )
    times["ci"], _ = run("uv run poe ci", ["uv", "run", "poe", "ci"], dst, env)
    times["green"] = time.perf_counter() - start
    times["repro"], out = run("no-op dvc repro", ["uv", "run", "dvc", "repro"], dst, env)
    times["repro_frozen"], out2 = run(
        "no-op dvc repro (frozen)", ["uv", "run", "--frozen", "dvc", "repro"], dst, env
    )
    for output in (out, out2):
        if "up to date" not in output:
            print(f"bench: warning: dvc repro was not a no-op:\n{tail(output, 10)}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs (default 3)")
    parser.add_argument(
        "--serve-load",
        action="store_true",
        help="instead: load-test the default variant's /predict API (benchmarks/load.py)",
    )
    args, rest = parser.parse_known_args()
    if args.serve_load:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import load

        return load.main(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="template-bench-") as tmp:
        tmp_path = Path(tmp)
        src = copy_template(tmp_path / "src")
        print("bench: warm-up run (untimed, warms the uv cache)...", flush=True)
        one_run(src, tmp_path / "warmup")
        runs = []
        for index in range(args.runs):
            print(f"bench: timed run {index + 1}/{args.runs}...", flush=True)
            runs.append(one_run(src, tmp_path / f"run{index + 1}"))
    load_after = os.getloadavg()[0]
    uv_version = subprocess.run(["uv", "--version"], capture_output=True, text=True).stdout.strip()
    print(
        f"\nDefault variant, {args.runs} timed run(s) after 1 untimed warm-up run (warm uv cache)"
    )
    print(
        f"machine: nproc {os.cpu_count()}, python {platform.python_version()} "
        f"({platform.system()} {platform.machine()}), {uv_version}, "
        f"copier {copier.__version__}"
    )
    print(
        f"1-min load average: {load_before:.2f} before, {load_after:.2f} after "
        "(other work on the machine inflates every figure)"
    )
    width = max(len(label) for _, label in ROWS)
    print(f"{'step':<{width}}  {'median':>8}  {'min':>8}  {'max':>8}")
    for key, label in ROWS:
        values = [r[key] for r in runs]
        print(
            f"{label:<{width}}  {statistics.median(values):>7.2f}s  {min(values):>7.2f}s  "
            f"{max(values):>7.2f}s"
        )
    green = statistics.median(r["green"] for r in runs)
    verdict = "met" if green < TARGET_COPY_TO_GREEN else "not met"
    print(
        f"target: copy to green < {TARGET_COPY_TO_GREEN:.0f} s warm "
        f"(median {green:.1f} s: {verdict} on this machine)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
