"""Session-wide plumbing the pytest hooks in conftest.py call: sharding, render statistics and
the load of each xdist worker (to budget the suite: which groups keep a worker busy, and when
each worker finished)."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import TypeVar

Item = TypeVar("Item")


def shard_slice(items: list[Item], shard: str) -> list[Item]:
    """The I-th of N slices ("I/N", 1-based) of items, dealt out in turn."""
    try:
        index, total = (int(part) for part in shard.split("/"))
        assert 1 <= index <= total
    except (ValueError, AssertionError):
        raise ValueError(f"--shard expects I/N with 1 <= I <= N, got {shard!r}") from None
    return [item for position, item in enumerate(items) if position % total == index - 1]


class RenderStats:
    """Render counts and times, gathered on the controller from every xdist worker's reports."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.started = time.monotonic()

    def add(self, duration: float) -> None:
        self.count += 1
        self.seconds += duration

    def line(self) -> str:
        return (
            f"variant matrix: {self.count} variants rendered and checked in "
            f"{self.seconds:.0f} s of test time "
            f"({time.monotonic() - self.started:.0f} s since the session started)"
        )


class WorkerLoad:
    """Test time per xdist worker and per xdist group, from the reports the controller gets."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.busy: dict[str, float] = defaultdict(float)
        self.last: dict[str, float] = {}
        self.groups: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def add(self, worker: str, nodeid: str, duration: float) -> None:
        # xdist appends "@group"; an "@" inside a parameter id ("[a@b]") is not one.
        _, at, suffix = nodeid.rpartition("@")
        group = suffix if at and "]" not in suffix else "(ungrouped)"
        self.busy[worker] += duration
        self.groups[worker][group] += duration
        self.last[worker] = time.monotonic() - self.started

    def lines(self, largest: int = 4) -> list[str]:
        lines = []
        for worker in sorted(self.busy):
            groups = sorted(self.groups[worker].items(), key=lambda item: -item[1])[:largest]
            listed = ", ".join(f"{group} {seconds:.0f} s" for group, seconds in groups)
            lines.append(
                f"{worker}: {self.busy[worker]:.0f} s of tests, last result at "
                f"{self.last[worker]:.0f} s; largest groups: {listed}"
            )
        return lines
