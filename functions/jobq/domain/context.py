"""JobContext: what a job handler may know about the attempt it runs in, and how it reports progress."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol


class ProgressSink(Protocol):
    """Where an attempt's progress goes (the worker writes it to the job, throttled)."""

    def report(self, done: float, total: float | None, message: str | None) -> None:
        """Record progress; raises JobCancelled when the attempt must stop."""

    def check_cancelled(self) -> None:
        """Raise JobCancelled when the attempt must stop."""


@dataclass(frozen=True)
class JobContext:
    """The attempt a handler runs in: ids, attempt numbers, the time left, and progress reporting."""

    job_id: str
    job_type: str
    attempt: int
    max_attempts: int
    deadline: float = field(repr=False)
    """``time.monotonic()`` value by which the handler must return."""
    sink: ProgressSink | None = field(default=None, repr=False, compare=False)

    def remaining_seconds(self) -> float:
        """Seconds left before this attempt times out."""
        return max(0.0, self.deadline - time.monotonic())

    def progress(self, done: float, total: float | None = None, message: str | None = None) -> None:
        """Report how far the job is (``done`` of ``total`` units, both optional to interpret).

        Cheap to call often: the job record is written at most once a second. Raises JobCancelled
        when a caller cancelled the job: let it propagate (clean up in ``finally``).
        """
        if not (isinstance(done, int | float) and math.isfinite(done) and done >= 0):
            raise ValueError(f"progress: done must be a finite number >= 0, not {done!r}")
        if total is not None and not (isinstance(total, int | float) and math.isfinite(total) and total > 0):
            raise ValueError(f"progress: total must be a finite number > 0 or None, not {total!r}")
        if self.sink is not None:
            self.sink.report(done, total, message)

    def check_cancelled(self) -> None:
        """Raise JobCancelled if a caller cancelled the job (reads the job at most once a second)."""
        if self.sink is not None:
            self.sink.check_cancelled()
