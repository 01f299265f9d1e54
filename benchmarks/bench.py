"""Time a generated project as multiples of its import floor F (copy to green, warm poe ci).

Figures: copy to green, a warm `poe ci`, a no-op `poe pipeline`, each task of `poe ci` and
each stage of the pipeline, and from those the lower bounds of the goals' figures.

    uv run python benchmarks/bench.py [--runs N] [--framework pytorch] [--no-warmup]
    uv run python benchmarks/bench.py --serve-load [--requests N --concurrency C ...]
    uv run python benchmarks/bench.py --rows N [--project DIR]
    uv run python benchmarks/bench.py --predict-batch [--multiples 1,10,100 ...]

--serve-load runs the /predict load test of benchmarks/load.py instead (see there); --rows N
the pipeline on a table N times the sample against a bare script, benchmarks/scale.py;
--predict-batch the batch scoring time and peak memory of benchmarks/batch.py.

Each run renders the defaults (or the pytorch variant) into a fresh temporary directory
(in-process Copier, tasks skipped), runs hooks/post_copy.py there, then the first
`uv run poe ci`. In the finished project it measures the floor F: one interpreter of the
project's environment importing the framework (min of two), then a warm `poe ci` with nothing
changed, a no-op `poe pipeline`, every task of `poe ci` one by one, then every stage's command
as dvc.lock resolved it (last: the stages rewrite their outputs). Every figure is printed
in seconds and as a multiple of F, with the 1-minute load average: other work on the machine
slows everything, the ratio much less. DVC's local remote goes to a temporary
DVC_LOCAL_REMOTE_ROOT, never the home directory. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
from pathlib import Path

import copier
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the tests' harness holds the template-copy helpers
from tests.harness.ci_variants import PYTORCH_PYTHON  # noqa: E402
from tests.harness.render import copy_template, offline_uv_env, render  # noqa: E402

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


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run(step: str, command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command, return (wall seconds, CPU seconds, output); CPU seconds (user + system,
    the command and every process it waited for) move less than wall time when other work
    shares the machine. On failure print the output's tail and exit."""
    start, cpu_start = time.perf_counter(), cpu_seconds(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    cpu = cpu_seconds(resource.RUSAGE_CHILDREN) - cpu_start
    if result.returncode != 0:
        fail(
            step,
            f"command: {' '.join(command)} (exit {result.returncode}, cwd {cwd})\n"
            f"--- stdout (tail) ---\n{tail(result.stdout)}\n"
            f"--- stderr (tail) ---\n{tail(result.stderr)}",
        )
    return seconds, cpu, result.stdout + result.stderr


def ci_tasks(project: Path) -> list[str]:
    """The tasks `poe ci` runs, its sequences and parallel groups (named or inline) expanded,
    from the project's own pyproject.toml."""
    tasks = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["poe"]["tasks"]

    def expand(item: str | dict) -> list[str]:
        spec = tasks[item] if isinstance(item, str) else item
        steps = spec.get("sequence", spec.get("parallel")) if isinstance(spec, dict) else None
        # An empty sequence (team-checks before a team fills it) runs nothing.
        return [name for step in steps for name in expand(step)] if steps is not None else [item]

    return expand("ci")


def one_run(src: Path, work: Path, framework: str, env: dict[str, str]) -> dict[str, tuple]:
    """Render, set up, reach green CI, then time the floor and the warm figures: for each
    figure, (wall seconds, CPU seconds)."""
    answers, floor_import = VARIANTS[framework]
    work.mkdir()
    dst = work / "project"
    env = {**env, "DVC_LOCAL_REMOTE_ROOT": str(work / "dvc-remotes")}
    times: dict[str, tuple] = {}

    def timed(key: str, command: list[str]) -> str:
        wall, cpu, output = run(key, command, dst, env)
        times[key] = (wall, cpu)
        return output

    start, cpu_start = time.perf_counter(), cpu_seconds(resource.RUSAGE_SELF)
    try:
        render(src, dst, answers)
    except Exception:
        fail("copier render", tail(traceback.format_exc()))
    times["render"] = (time.perf_counter() - start, cpu_seconds(resource.RUSAGE_SELF) - cpu_start)
    timed("post_copy", [sys.executable, str(src / "hooks" / "post_copy.py")])
    timed("ci_first", ["uv", "run", "poe", "ci"])
    times["green"] = (
        time.perf_counter() - start,
        sum(times[key][1] for key in ("render", "post_copy", "ci_first")),
    )
    python = str(dst / ".venv" / "bin" / "python")
    floors = [run("floor", [python, "-c", floor_import], dst, env)[:2] for _ in range(2)]
    times["floor"] = (min(wall for wall, _ in floors), min(cpu for _, cpu in floors))
    timed("ci_warm", ["uv", "run", "poe", "ci"])
    if "up to date" not in timed("pipeline", ["uv", "run", "poe", "pipeline"]):
        print("bench: warning: poe pipeline was not a no-op")
    for task in ci_tasks(dst):
        timed(f"task:{task}", ["uv", "run", "poe", task])
    # last, as they rewrite the pipeline's outputs: each stage's command as dvc.lock resolved
    # it, in the project's environment, as `dvc repro` starts it
    env["PATH"] = f"{dst / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    for stage, entry in yaml.safe_load((dst / "dvc.lock").read_text())["stages"].items():
        timed(f"stage:{stage}", ["sh", "-c", entry["cmd"]])
    return times


def median(runs: list[dict], key: str) -> tuple[float, float]:
    """A figure's median (wall seconds, CPU seconds) over the timed runs."""
    return tuple(statistics.median(r[key][i] for r in runs) for i in (0, 1))


def print_table(title: str, rows: list[tuple[str, str]], runs: list[dict]) -> None:
    """Median wall and CPU seconds of each row, and each as a multiple of the floor's."""
    floor_wall, floor_cpu = median(runs, "floor")
    width = max(len(label) for _, label in rows)
    print(f"\n{title}")
    print(f"{'':<{width}}  {'wall':>8}  {'x F':>6}  {'CPU':>8}  {'x F':>6}")
    for key, label in rows:
        wall, cpu = median(runs, key)
        print(
            f"{label:<{width}}  {wall:>7.2f}s  {wall / floor_wall:>6.2f}  "
            f"{cpu:>7.2f}s  {cpu / floor_cpu:>6.2f}"
        )


def named(runs: list[dict], prefix: str) -> list[str]:
    """The names of the figures recorded as prefix + name ("task:test", "stage:train")."""
    return [key.removeprefix(prefix) for key in runs[0] if key.startswith(prefix)]


def print_bounds(runs: list[dict]) -> None:
    """How fast the goals' figures could be with the checks and stages as they are, in CPU
    seconds as multiples of the floor's: warm `poe ci` is no faster than its longest task on
    its own (each task is one process) nor than all its tasks' CPU spread over the cores; copy
    to green is no faster than the pipeline's stages (`dvc repro` starts each as a process of
    its own, one after another) followed by the test session."""
    floor = median(runs, "floor")[1]

    def multiples(prefix: str) -> dict[str, float]:
        return {name: median(runs, prefix + name)[1] / floor for name in named(runs, prefix)}

    tasks, stages = multiples("task:"), multiples("stage:")
    longest = max(tasks, key=tasks.get)
    cores = os.cpu_count() or 1
    print("\nLower bounds with the checks and stages as they are (CPU, x F):")
    print(f"  warm poe ci: its longest task on its own, poe {longest}: {tasks[longest]:.2f} F")
    print(
        f"  warm poe ci: all its tasks' CPU spread over {cores} cores: "
        f"{sum(tasks.values()) / cores:.2f} F"
    )
    print(
        f"  copy to green: the stages one after another ({sum(stages.values()):.2f} F: "
        + ", ".join(f"{stage} {value:.2f}" for stage, value in stages.items())
        + f") then poe test on its own: {sum(stages.values()) + tasks['test']:.2f} F"
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
    parser.add_argument(
        "--rows",
        type=int,
        metavar="N",
        help="instead: the pipeline on a table N times the sample against a bare script "
        "(benchmarks/scale.py); with --serve-load, the rows of each request",
    )
    parser.add_argument(
        "--predict-batch",
        action="store_true",
        help="instead: predict-batch's time and peak memory by input size (benchmarks/batch.py)",
    )
    args, rest = parser.parse_known_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.predict_batch:
        import batch

        return batch.main(rest)
    if args.serve_load:
        import load

        return load.main(rest + (["--rows", str(args.rows)] if args.rows else []))
    if args.rows is not None:
        import scale

        return scale.main(["--rows", str(args.rows), *rest])
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
    print_table("Figures (median of the timed runs)", ROWS, runs)
    print_table(
        "poe ci, task by task (each `uv run poe TASK` on its own, nothing changed)",
        [(f"task:{task}", f"poe {task}") for task in named(runs, "task:")],
        runs,
    )
    print_table(
        "the pipeline, stage by stage (each command from dvc.lock on its own)",
        [(f"stage:{stage}", stage) for stage in named(runs, "stage:")],
        runs,
    )
    print("\nGoals (issue 15), median as a multiple of F (wall; CPU):")
    floor_wall, floor_cpu = median(runs, "floor")
    for key, goal in GOALS.items():
        wall, cpu = median(runs, key)
        wall, cpu = wall / floor_wall, cpu / floor_cpu
        verdict = "met" if wall <= goal else "not met"
        print(f"  {dict(ROWS)[key]}: {wall:.2f} F; {cpu:.2f} F (goal <= {goal} F: {verdict})")
    print_bounds(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
