"""Time a generated project against its import floor: copy to green, warm `poe ci`, no-op
`poe pipeline`, and each task of `poe ci`.

    uv run python benchmarks/bench.py [--runs N] [--framework pytorch] [--no-warmup]
    uv run python benchmarks/bench.py --serve-load [--requests N --concurrency C ...]

--serve-load runs the /predict load test of benchmarks/load.py instead (see there).

Each run renders the defaults (or the pytorch variant) into a fresh temporary directory
(in-process Copier, tasks skipped), runs hooks/post_copy.py there, then the first
`uv run poe ci`. In the finished project it measures the floor F: one interpreter of the
project's environment importing the framework (min of two), then a warm `poe ci` with nothing
changed, a no-op `poe pipeline`, and every task of `poe ci` one by one. Every figure is printed
in seconds and as a multiple of F, with the 1-minute load average: other work on the machine
slows everything, the ratio much less. DVC's local remote goes to a temporary
DVC_LOCAL_REMOTE_ROOT, never the home directory. Figures are printed, never asserted.
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
import tomllib
import traceback
from pathlib import Path

import copier

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the tests' harness holds the template-copy helpers
from tests.harness.ci_variants import PYTORCH_PYTHON  # noqa: E402
from tests.harness.render import copy_template, offline_uv_env  # noqa: E402

# framework -> (answers, the floor's import)
VARIANTS = {
    "sklearn": ({}, "import pandas, sklearn.ensemble"),
    "pytorch": ({"ml_framework": "pytorch", "python_version": PYTORCH_PYTHON}, "import torch"),
}
GOALS = {"ci_warm": 2.5, "green": 7.0, "pipeline": 1.0}  # multiples of F (issue 15)
ROWS = [  # (key, label)
    ("floor", "floor F: the framework import in the project's interpreter (min of 2)"),
    ("render", "copier render (in-process, skip_tasks)"),
    ("post_copy", "copy-time tasks (hooks/post_copy.py)"),
    ("ci_first", "uv run poe ci (first, in the new project)"),
    ("green", "copy to green: render + post_copy + poe ci"),
    ("ci_warm", "uv run poe ci (warm, nothing changed)"),
    ("pipeline", "uv run poe pipeline (no-op)"),
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


def ci_tasks(project: Path) -> list[str]:
    """The tasks `poe ci` runs, nested sequences (pipeline) expanded, from the project's own
    pyproject.toml."""
    tasks = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["poe"]["tasks"]

    def expand(name: str) -> list[str]:
        sequence = tasks[name].get("sequence") if isinstance(tasks[name], dict) else None
        return [step for item in sequence for step in expand(item)] if sequence else [name]

    return expand("ci")


def one_run(src: Path, work: Path, framework: str, env: dict[str, str]) -> dict[str, float]:
    """Render, set up, reach green CI, then time the floor and the warm figures."""
    answers, floor_import = VARIANTS[framework]
    work.mkdir()
    dst = work / "project"
    env = {**env, "DVC_LOCAL_REMOTE_ROOT": str(work / "dvc-remotes")}
    times: dict[str, float] = {}
    start = time.perf_counter()
    try:
        copier.run_copy(
            str(src),
            str(dst),
            data=answers,
            defaults=True,
            unsafe=True,
            skip_tasks=True,
            quiet=True,
        )
    except Exception:
        fail("copier render", tail(traceback.format_exc()))
    times["render"] = time.perf_counter() - start
    times["post_copy"], _ = run(
        "post_copy", [sys.executable, str(src / "hooks" / "post_copy.py")], dst, env
    )
    times["ci_first"], _ = run("uv run poe ci", ["uv", "run", "poe", "ci"], dst, env)
    times["green"] = time.perf_counter() - start
    python = str(dst / ".venv" / "bin" / "python")
    times["floor"] = min(run("floor", [python, "-c", floor_import], dst, env)[0] for _ in range(2))
    times["ci_warm"], _ = run("warm poe ci", ["uv", "run", "poe", "ci"], dst, env)
    times["pipeline"], out = run("no-op poe pipeline", ["uv", "run", "poe", "pipeline"], dst, env)
    if "up to date" not in out:
        print(f"bench: warning: poe pipeline was not a no-op:\n{tail(out, 10)}")
    for task in ci_tasks(dst):
        times[f"task:{task}"], _ = run(f"poe {task}", ["uv", "run", "poe", task], dst, env)
    return times


def print_table(title: str, rows: list[tuple[str, str]], runs: list[dict], floor: float) -> None:
    width = max(len(label) for _, label in rows)
    print(f"\n{title}")
    print(f"{'':<{width}}  {'median':>8}  {'min':>8}  {'max':>8}  {'x F':>6}")
    for key, label in rows:
        values = [r[key] for r in runs]
        median = statistics.median(values)
        print(
            f"{label:<{width}}  {median:>7.2f}s  {min(values):>7.2f}s  {max(values):>7.2f}s  "
            f"{median / floor:>6.2f}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="timed runs (default 1)")
    parser.add_argument("--framework", choices=sorted(VARIANTS), default="sklearn")
    parser.add_argument(
        "--warmup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one untimed run first, to warm the uv cache (default: yes)",
    )
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
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="template-bench-") as tmp:
        tmp_path = Path(tmp)
        # not the bench's own venv; the pytorch-cpu index from this machine's local wheel
        env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
        env |= offline_uv_env(tmp_path / "pytorch-cpu-index")
        src = copy_template(tmp_path / "src")
        if args.warmup:
            print("bench: warm-up run (untimed, warms the uv cache)...", flush=True)
            one_run(src, tmp_path / "warmup", args.framework, env)
        runs = []
        for index in range(args.runs):
            print(f"bench: timed run {index + 1}/{args.runs}...", flush=True)
            runs.append(one_run(src, tmp_path / f"run{index + 1}", args.framework, env))
    load_after = os.getloadavg()[0]
    uv_version = subprocess.run(["uv", "--version"], capture_output=True, text=True).stdout.strip()
    warmup = "after 1 untimed warm-up run" if args.warmup else "no warm-up run"
    print(f"\n{args.framework} variant, {args.runs} timed run(s), {warmup}")
    print(
        f"machine: nproc {os.cpu_count()}, python {platform.python_version()} "
        f"({platform.system()} {platform.machine()}), {uv_version}, "
        f"copier {copier.__version__}"
    )
    print(
        f"1-min load average: {load_before:.2f} before, {load_after:.2f} after "
        "(other work on the machine inflates every figure; the ratio to F much less)"
    )
    floor = statistics.median(r["floor"] for r in runs)
    print_table("Figures", ROWS, runs, floor)
    tasks = [key.removeprefix("task:") for key in runs[0] if key.startswith("task:")]
    print_table(
        "poe ci, task by task (each `uv run poe TASK` on its own, nothing changed)",
        [(f"task:{task}", f"poe {task}") for task in tasks],
        runs,
        floor,
    )
    print("\nGoals (issue 15), median as a multiple of F:")
    for key, goal in GOALS.items():
        ratio = statistics.median(r[key] for r in runs) / floor
        label = dict(ROWS)[key]
        print(
            f"  {label}: {ratio:.2f} F (goal <= {goal} F: {'met' if ratio <= goal else 'not met'})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
