"""What becomes of a delivered message: acknowledged (deleted), or deferred (it comes back after a delay)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Ack:
    """The message is done with: delete it."""

    reason: str


@dataclass(frozen=True)
class Defer:
    """Hand the message back to the queue; it comes again after ``delay_seconds``."""

    delay_seconds: int
    reason: str


Decision = Ack | Defer
"""What becomes of a delivered message: every path of the runner ends in one of these."""
