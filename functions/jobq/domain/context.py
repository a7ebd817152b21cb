"""JobContext: what a job handler may know about the attempt it runs in."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class JobContext:
    """The attempt a handler runs in: ids, attempt numbers and the time left."""

    job_id: str
    job_type: str
    attempt: int
    max_attempts: int
    deadline: float = field(repr=False)
    """``time.monotonic()`` value by which the handler must return."""

    def remaining_seconds(self) -> float:
        """Seconds left before this attempt times out."""
        return max(0.0, self.deadline - time.monotonic())
