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
rows. Each figure is wall seconds and CPU seconds (user + sys of the child processes, which
move far less than wall time when other work shares the cores). Figures are printed, never
asserted.
"""

from __future__ import annotations

import argparse
import json
import os
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


def timed(command: list[str], project: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + sys of the finished child and its own children):
    CPU moves far less than wall when other processes share the cores."""
    cpu, start = _children_cpu(), time.perf_counter()
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"scale: {' '.join(command[:4])} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start, _children_cpu() - cpu


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
    bare = (min(w for w, _ in bare_runs), min(c for _, c in bare_runs))
    pipeline = (sum(w for w, _ in stages.values()), sum(c for _, c in stages.values()))
    print(f"\npipeline on {grown} rows ({args.rows} x the sample), wall and CPU (user+sys) seconds")
    print(f"1-min load average {load_before:.2f} before, {load_after:.2f} after")
    print(f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}")
    print(f"{'':<44}{'wall s':>8}{'x floor':>9}{'CPU s':>8}{'x floor':>9}")

    def row(name: str, figures: tuple[float, float]) -> None:
        wall, cpu = figures
        print(f"{name:<44}{wall:>8.2f}{wall / bare[0]:>9.2f}{cpu:>8.2f}{cpu / bare[1]:>9.2f}")

    row("floor: bare script (min of 2)", bare)
    for stage, figures in stages.items():
        row(f"  stage {stage}", figures)
    row("pipeline, its stages one after another", pipeline)
    print(json.dumps({
        "rows": int(grown), "bare_s": bare[0], "bare_cpu_s": bare[1],
        "stages_s": {s: w for s, (w, _) in stages.items()},
        "stages_cpu_s": {s: c for s, (_, c) in stages.items()},
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
