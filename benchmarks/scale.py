"""Time the default variant's pipeline on a table N times the sample against a bare script.

    uv run python benchmarks/bench.py --rows N [--project DIR]
    uv run python benchmarks/scale.py --rows N [--project DIR]

The table is the bundled sample repeated N times, each feature multiplied by a random factor
within 0.05 % (no row repeats, every value stays within schema.yaml's ranges; the recipe of
benchmarks/README.md). The pipeline's stages after the data (validate, prepare, train,
evaluate) then run one after another, each as dvc.lock resolved its command, in the project's
environment, as `dvc repro` starts them. The floor is a bare script doing the same work with
the same libraries in the same environment, in one process: read the CSV, split it with
params.yaml's settings, fit the random forest with params.yaml's settings, score the held-out
rows. Each process is measured in wall seconds, CPU seconds (user + sys of the child processes,
which move far less than wall time when other work shares the cores) and the seconds it spent
importing (PYTHONPROFILEIMPORTTIME's report, whose own cost is small): what is left, "beyond"
the imports, is the work that grows with the rows. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  (the default variant's generation, shared with the load test)

STAGES = ("validate", "prepare", "train", "evaluate")

GROW = """
import sys
import numpy as np
import pandas as pd
from {package}.data import load_dataset
from {package}.mlops.api import FEATURES
path, times = sys.argv[1], int(sys.argv[2])
df = load_dataset(path)
big = pd.concat([df] * times, ignore_index=True)
noise = np.random.default_rng(0).uniform(0.9995, 1.0005, size=(len(big), len(FEATURES)))
big[FEATURES] = big[FEATURES] * noise
big.to_csv(path, index=False)
print(len(big))
"""

BARE = """
import pandas as pd, yaml
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split
params = yaml.safe_load(open("params.yaml"))
target = yaml.safe_load(open("src/{package}/schema.yaml"))["target"]["name"]
df = pd.read_csv("data/raw/dataset.csv")
X, y = df.drop(columns=[target]), df[target]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=params["split"]["test_size"], random_state=params["seed"], stratify=y
)
forest = RandomForestClassifier(
    n_estimators=params["train"]["n_estimators"], max_depth=params["train"]["max_depth"],
    random_state=params["seed"], n_jobs=1,
).fit(X_train, y_train)
print((forest.predict(X_test) == y_test).mean())
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# A line of `python -X importtime`: "import time: <self us> | <cumulative us> | <indent><name>".
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", re.MULTILINE)


def import_seconds(stderr: str) -> float:
    """The seconds a process spent importing: the cumulative times of its top-level imports
    (PYTHONPROFILEIMPORTTIME's report; nested imports are inside their parent's figure)."""
    return sum(int(cumulative) for cumulative, _ in IMPORT_LINE.findall(stderr)) / 1e6


def timed(command: list[str], project: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + sys of the finished child and its own children: CPU
    moves far less than wall when other processes share the cores) and import seconds."""
    cpu, start = _children_cpu(), time.perf_counter()
    result = subprocess.run(
        command, cwd=project, env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"scale: {' '.join(command[:4])} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start, _children_cpu() - cpu, import_seconds(result.stderr)


def run_scale(args: argparse.Namespace) -> int:
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    with tempfile.TemporaryDirectory(prefix="template-scale-") as tmp:
        project = load.project_to_measure(args.project, Path(tmp), "scale")
        package = load._package_name(project)
        env["PATH"] = f"{project / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
        raw = project / "data" / "raw" / "dataset.csv"
        kept = raw.read_bytes()
        raw.unlink()  # DVC may have linked it to its cache
        raw.write_bytes(kept)
        try:
            grown = subprocess.run(
                ["python", "-c", GROW.format(package=package), str(raw), str(args.rows)],
                cwd=project, env=env, capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            load_before = os.getloadavg()[0]
            commands = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
            stages = {s: timed(["sh", "-c", commands[s]["cmd"]], project, env) for s in STAGES}
            bare_runs = [
                timed(["python", "-c", BARE.format(package=package)], project, env)
                for _ in range(2)
            ]
            load_after = os.getloadavg()[0]
        finally:
            raw.unlink()
            raw.write_bytes(kept)  # the project's own sample back (its outputs stay rewritten)
    bare = min(bare_runs)  # the run with the least wall time, its CPU and import seconds
    pipeline = tuple(sum(figures[i] for figures in stages.values()) for i in range(3))
    print(f"\npipeline on {grown} rows ({args.rows} x the sample), seconds")
    print(f"1-min load average {load_before:.2f} before, {load_after:.2f} after")
    print(f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}")
    print("wall and CPU (user+sys), each x the floor's; imports: the process's import time;")
    print("beyond: wall - imports, x the floor's (the work that grows with the rows)")
    print(f"{'':<40}{'wall':>7}{'x':>6}{'CPU':>7}{'x':>6}{'imports':>8}{'beyond':>7}{'x':>6}")

    def row(name: str, figures: tuple[float, float, float]) -> None:
        wall, cpu, imports = figures
        beyond, floor_beyond = wall - imports, bare[0] - bare[2]
        print(
            f"{name:<40}{wall:>7.2f}{wall / bare[0]:>6.2f}{cpu:>7.2f}{cpu / bare[1]:>6.2f}"
            f"{imports:>8.2f}{beyond:>7.2f}{beyond / floor_beyond:>6.2f}"
        )

    row("floor: bare script (best of 2)", bare)
    for stage, figures in stages.items():
        row(f"  stage {stage}", figures)
    row("pipeline, its stages one after another", pipeline)
    print(json.dumps({
        "rows": int(grown), "bare_s": bare[0], "bare_cpu_s": bare[1], "bare_imports_s": bare[2],
        "stages_s": {s: f[0] for s, f in stages.items()},
        "stages_cpu_s": {s: f[1] for s, f in stages.items()},
        "stages_imports_s": {s: f[2] for s, f in stages.items()},
        "load": [load_before, load_after],
    }))  # fmt: skip
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, required=True, help="N: the sample N times")
    parser.add_argument("--project", help="an already generated default project (its data and "
                        "pipeline outputs are rewritten; the data is put back)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return run_scale(args)


if __name__ == "__main__":
    sys.exit(main())
