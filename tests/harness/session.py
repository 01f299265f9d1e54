"""Session-wide plumbing the pytest hooks in conftest.py call: sharding and render statistics."""

from __future__ import annotations

import time
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
