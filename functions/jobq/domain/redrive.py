"""Redrive: dead-lettered jobs back to ``queued`` with a fresh message; each attempt's error stays in history."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError

from jobq.domain.errors import InvalidTransitionError, JobNotFoundError
from jobq.domain.models import Job, JobMessage
from jobq.domain.service import JobService

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    """One message received from the dead-letter queue."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1

    @property
    def message(self) -> JobMessage | None:
        """The job message it carries, or None if the body is not one."""
        try:
            return JobMessage.model_validate_json(self.body)
        except ValidationError:
            return None


class DeadLetterQueue(Protocol):
    """The dead-letter queue, message by message."""

    def receive(self, max_messages: int, *, hide_seconds: int) -> Sequence[DeadLetter]:
        """Up to ``max_messages`` visible messages, hidden from others for ``hide_seconds``."""

    def delete(self, letter: DeadLetter) -> None: ...

    def release(self, letters: Sequence[DeadLetter]) -> None:
        """Make messages visible again at once."""


def receive_all(dead_letters: DeadLetterQueue, *, limit: int, hide_seconds: int) -> list[DeadLetter]:
    """Up to ``limit`` messages, ten per receive, each hidden until released or deleted."""
    letters: list[DeadLetter] = []
    while len(letters) < limit:
        batch = dead_letters.receive(min(10, limit - len(letters)), hide_seconds=hide_seconds)
        if not batch:
            break
        letters.extend(batch)
    return letters


@dataclass(frozen=True)
class DeadLetterView:
    """A dead-lettered message and the job it belongs to (None: unreadable body or no such job)."""

    letter: DeadLetter
    job: Job | None


@dataclass
class RedriveReport:
    """What a redrive did, per outcome."""

    redriven: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)


class Redriver:
    """Moves dead-lettered jobs back to the queue through JobService.retry (a conditional write)."""

    HIDE_SECONDS = 120

    def __init__(self, *, service: JobService, dead_letters: DeadLetterQueue, max_messages: int = 10_000) -> None:
        self._service = service
        self._dlq = dead_letters
        self._max = max_messages

    def _drain(self) -> list[DeadLetter]:
        return receive_all(self._dlq, limit=self._max, hide_seconds=self.HIDE_SECONDS)

    def _job(self, letter: DeadLetter) -> Job | None:
        message = letter.message
        if message is None:
            return None
        try:
            return self._service.get(message.job_id)
        except JobNotFoundError:
            return None

    def list(self) -> list[DeadLetterView]:
        """Every message in the DLQ with its job; the messages stay where they are."""
        letters = self._drain()
        try:
            return [DeadLetterView(letter, self._job(letter)) for letter in letters]
        finally:
            self._dlq.release(letters)

    def redrive(self, job_id: str | None = None) -> RedriveReport:
        """Retry the DLQ's failed jobs (only ``job_id``'s if given) and delete their DLQ messages.

        Messages of jobs that are no longer failed (retried already, or succeeded since) are deleted as
        stale; unreadable messages and messages of jobs that no longer exist stay in the DLQ.
        """
        report = RedriveReport()
        keep: list[DeadLetter] = []
        for letter in self._drain():
            message = letter.message
            if message is None:
                report.kept.append((letter.message_id, "body is not a job message"))
                keep.append(letter)
                continue
            if job_id is not None and message.job_id != job_id:
                keep.append(letter)
                continue
            outcome = self._redrive_one(message.job_id)
            if outcome is None:
                report.redriven.append(message.job_id)
                self._dlq.delete(letter)
            elif outcome.startswith("stale"):
                report.dropped.append((message.job_id, outcome))
                self._dlq.delete(letter)
            else:
                report.kept.append((message.job_id, outcome))
                keep.append(letter)
        self._dlq.release(keep)
        return report

    def _redrive_one(self, job_id: str) -> str | None:
        """None when the job was re-queued; otherwise why not."""
        try:
            self._service.retry(job_id)
        except JobNotFoundError:
            return "no such job (expired or deleted)"
        except InvalidTransitionError as exc:
            status = exc.current_status or "unknown"
            return f"stale: the job is {status}"
        return None
