"""One result shape for every local CI run, and the session's summary table of them.

Each runner module (github, gitlab, jenkins) returns a CiRun. A test hands it to
record_and_assert, which records one row of the "generated pipelines run locally" table
(through pytest's record_property, so rows reach the controller from xdist workers) and
asserts the outcome the test expects, failing with run.describe().
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

# Job or stage statuses that count as "did not fail".
GREEN = ("success", "skipped")
COLUMNS = ("variant", "provider", "jobs run", "substituted or recorded", "result")


@dataclass
class CiRun:
    provider: str  # as the summary table names it, e.g. "github (act)"
    variant: str  # the variant id, with the scenario when a broken change is run
    trigger: str  # what started it: "push feature", "tag v1.0.0", "schedule", ...
    passed: bool  # the runner's own verdict (exit code, pipeline result)
    jobs: dict[str, str]  # job or stage -> success, failure, skipped, not run
    steps_run: list[str] = field(default_factory=list)  # commands the jobs ran
    substituted: list[str] = field(default_factory=list)  # substituted or only recorded
    log: str = ""
    command: list[str] = field(default_factory=list)
    artifacts: Path | None = None
    details: dict = field(default_factory=dict)  # the runner's own report (Jenkins' summary)

    def then(self, other: CiRun) -> CiRun:
        """This run followed by another one of the same pipeline (e.g. a second job)."""
        return replace(
            self,
            passed=self.passed and other.passed,
            jobs={**self.jobs, **other.jobs},
            steps_run=[*self.steps_run, *other.steps_run],
            substituted=list(dict.fromkeys([*self.substituted, *other.substituted])),
            log=f"{self.log}\n{other.log}",
        )

    def describe(self, lines: int = 80) -> str:
        tail = "\n".join(self.log.splitlines()[-lines:])
        return (
            f"{self.provider} run of {self.variant} ({self.trigger}): "
            f"{'passed' if self.passed else 'failed'}; jobs {self.jobs}\n"
            f"command: {' '.join(self.command)}\n--- log tail ---\n{tail}"
        )


def record_and_assert(
    run: CiRun,
    record_property: Callable[[str, object], None],
    *,
    fails_with: str | None = None,
    jobs: Iterable[str] = (),
    note: str = "",
) -> None:
    """Record the run's row, then assert it: green, with each of `jobs` succeeded; or, with
    fails_with, red with that text in the log (a broken change the pipeline must detect)."""
    if fails_with is None:
        failed_jobs = [job for job in jobs if run.jobs.get(job) != "success"]
        ok = run.passed and not failed_jobs
        result = ("passed" + (f"; {note}" if note else "")) if ok else "FAILED"
    else:
        ok = not run.passed and fails_with in run.log
        result = "failed as expected" if ok else "NOT DETECTED"
    ran = [job for job, status in run.jobs.items() if status not in ("skipped", "not run")]
    record_property(
        "ci_run",
        {
            "variant": run.variant,
            "provider": run.provider,
            "jobs run": f"{run.trigger}: {', '.join(ran) or '-'}",
            "substituted or recorded": ", ".join(run.substituted) or "-",
            "result": result,
        },
    )
    if fails_with is None:
        assert run.passed, run.describe()
        assert not failed_jobs, f"{failed_jobs} did not succeed\n{run.describe()}"
    else:
        assert not run.passed, f"the run passed despite the change\n{run.describe()}"
        assert fails_with in run.log, f"{fails_with!r} not in the log\n{run.describe()}"


def rows_of(user_properties: Iterable[tuple[str, object]]) -> list[dict]:
    """The CI rows a test report carries (pytest_runtest_logreport feeds them here)."""
    return [value for name, value in user_properties if name == "ci_run"]


def write_summary(write_line: Callable[[str], None], rows: list[dict]) -> None:
    """The summary table, one row per run, sorted."""
    table = [[row[c] for c in COLUMNS] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(COLUMNS)]
    for row in [list(COLUMNS), ["-" * w for w in widths], *sorted(table)]:
        write_line("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
