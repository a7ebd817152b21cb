"""TimeBudget: the invocation's remaining time, shared by the records of one batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

MIN_SLOT_SECONDS = 0.5


@dataclass
class TimeBudget:
    """The invocation's remaining time, shared by the records of one batch."""

    remaining_seconds: Callable[[], float]
    reserve_seconds: float = 2.0
    started: int = field(default=0, init=False)

    def slot(self, timeout_seconds: float) -> float | None:
        """Seconds a job with this timeout may run now, or None to leave it for another invocation.

        A job starts only if its whole timeout fits, except the invocation's first job, which runs
        with whatever time there is, so that a type slower than the function's timeout still runs.
        """
        available = self.remaining_seconds() - self.reserve_seconds
        if available < MIN_SLOT_SECONDS:
            return None
        if timeout_seconds <= available:
            granted = timeout_seconds
        elif self.started == 0:
            granted = available
        else:
            return None
        self.started += 1
        return granted
