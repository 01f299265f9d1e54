"""Batch scoring's time and peak memory as the input grows: `predict-batch` on 1x, 10x, 100x
the bundled data.

    uv run python benchmarks/batch.py [--project DIR] [--multiples 1,10,100] [--chunk-rows N]
    uv run python benchmarks/bench.py --predict-batch [same options]

Without --project, the default variant is generated into a temporary directory (as
benchmarks/load.py does). Each input repeats the project's data/raw/dataset.csv (features
only, every copy scaled by up to 1 %, one row in a thousand made non-numeric so the rejected
path runs too). Each run is the project's own interpreter running `python -m PACKAGE
predict-batch`, and its peak resident memory is the kernel's ru_maxrss for that process
(os.wait4). With chunked reading the peak should stay near flat while rows grow a
hundredfold. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import project_to_measure  # noqa: E402


def write_input(project: Path, target: str, multiple: int, out: Path) -> int:
    """multiple copies of the bundled rows (without the target) in out; the row count."""
    with (project / "data" / "raw" / "dataset.csv").open(newline="") as f:
        base = [{k: v for k, v in row.items() if k != target} for row in csv.DictReader(f)]
    noise = random.Random(multiple)
    rows = 0
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", *base[0]])
        writer.writeheader()
        for copy in range(multiple):
            for row in base:
                scale = 1 + noise.uniform(-0.01, 0.01) if copy else 1
                values = {k: f"{float(v) * scale:.6g}" for k, v in row.items()}
                if rows % 1000 == 999:
                    values[next(iter(values))] = "n/a"
                writer.writerow({"id": rows, **values})
                rows += 1
    return rows


def measure(command: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MiB, exit code) of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, process.returncode


def run_batch(args: argparse.Namespace) -> int:
    import yaml

    multiples = [int(m) for m in args.multiples.split(",")]
    with tempfile.TemporaryDirectory(prefix="template-batch-") as tmp:
        work = Path(tmp)
        project = project_to_measure(args.project, work, "batch")
        answers = yaml.safe_load((project / ".copier-answers.yml").read_text())
        package = answers["package_name"]
        schema = project / "src" / package / "schema.yaml"
        target = yaml.safe_load(schema.read_text())["target"]["name"]
        python = str(project / ".venv" / "bin" / "python")
        floor = measure([python, "-c", "import pandas, pandera.pandas, sklearn.ensemble"], project)
        results = []
        for multiple in multiples:
            source = work / f"input-{multiple}x.csv"
            rows = write_input(project, target, multiple, source)
            command = [python, "-m", package, "predict-batch", str(source), str(work / "out.csv")]
            command += ["--chunk-rows", str(args.chunk_rows), "--max-rejected-share", "1"]
            wall, peak, code = measure(command, project)
            if code != 0:
                sys.exit(f"batch: predict-batch exited {code} on {source}")
            results.append((multiple, rows, source.stat().st_size / 2**20, wall, peak))
    print(
        f"\npredict-batch, chunks of {args.chunk_rows} rows; machine: nproc {os.cpu_count()}, "
        f"1-min load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"floor (the interpreter importing pandas, pandera, scikit-learn): {floor[0]:.2f} s, "
        f"peak {floor[1]:.0f} MiB"
    )
    print(f"{'input':>7} {'rows':>9} {'MiB in':>7} {'wall s':>7} {'rows/s':>9} {'peak MiB':>9}")
    for multiple, rows, size, wall, peak in results:
        rate = rows / wall
        print(f"{multiple:>6}x {rows:>9} {size:>7.1f} {wall:>7.2f} {rate:>9.0f} {peak:>9.0f}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", help="an already generated project (its model trained)")
    parser.add_argument(
        "--multiples", default="1,10,100", help="input sizes in copies of the bundled data"
    )
    parser.add_argument("--chunk-rows", type=int, default=20_000, help="predict-batch's chunks")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_batch(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
