"""`fleet report LIST`, `fleet update LIST --behind N | --label X` and `fleet adopt PATH_OR_URL`
(docs/platform-teams.md)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from fleet import adopt, output
from fleet.bulk import selected, update_all
from fleet.inspect_repo import Report, TemplateCache, inspect
from fleet.repos import RepoEntry, read_repos

FORMATS = {"markdown": output.to_markdown, "json": output.to_json, "html": output.to_html}


def inspect_all(entries: list[RepoEntry], jobs: int, console: Console) -> list[Report]:
    """Every repository's report, in list order, with a progress bar on a terminal."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="fleet-templates-") as tmp:
        templates = TemplateCache(Path(tmp))
        with (
            ThreadPoolExecutor(max_workers=jobs) as pool,
            Progress(console=console, transient=True, disable=not console.is_terminal) as bar,
        ):
            task = bar.add_task("inspecting repositories", total=len(entries))
            futures = [pool.submit(inspect, entry, templates, env) for entry in entries]
            for future in futures:
                future.add_done_callback(lambda _: bar.advance(task))
            return [future.result() for future in futures]


def report_command(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    reports = inspect_all(read_repos(args.list), args.jobs, console)
    if args.format == "table":
        # A file or a pipe gets the width of a wide terminal, not rich's default of 80 columns.
        with args.output.open("w") if args.output else nullcontext(sys.stdout) as out:
            output.print_table(reports, Console(file=out, width=None if out.isatty() else 200))
    elif args.output:
        args.output.write_text(FORMATS[args.format](reports))
    else:
        sys.stdout.write(FORMATS[args.format](reports))
    return 1 if args.strict and any(r.problems or r.drift for r in reports) else 0


def update_command(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    entries = read_repos(args.list)
    reports = inspect_all(entries, args.jobs, console)
    pairs = [
        (e, r)
        for e, r in zip(entries, reports, strict=True)
        if selected(r, args.behind, args.label)
    ]
    outcomes = update_all(pairs, args.jobs)
    if args.format == "json":
        sys.stdout.write(json.dumps([o.as_dict() for o in outcomes], indent=2) + "\n")
    else:
        for outcome in outcomes:
            print(f"{outcome.repo}: {outcome.result} ({outcome.detail})")
    return 1 if any(o.result == "failed" for o in outcomes) else 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="fleet", description=__doc__)
    commands = main.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="each repository's release, drift, update state")
    report.add_argument("--format", choices=["table", *FORMATS], default="table")
    report.add_argument("--output", type=Path, help="write here instead of the terminal")
    report.add_argument("--strict", action="store_true", help="exit 1 on any drift or problem")
    report.set_defaults(run=report_command)
    update = commands.add_parser("update", help="start the template update of selected repos")
    choose = update.add_mutually_exclusive_group(required=True)
    choose.add_argument("--behind", type=int, metavar="N", help="repos N or more releases behind")
    choose.add_argument("--label", help="repos with this label in the list")
    update.add_argument("--format", choices=["table", "json"], default="table")
    update.set_defaults(run=update_command)
    for command in (report, update):
        command.add_argument("list", type=Path, help="repositories, one a line (see the docs)")
        command.add_argument("--jobs", type=int, default=4, help="repositories at a time")
    adopt.add_parser(commands)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
