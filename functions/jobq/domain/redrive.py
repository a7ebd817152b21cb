"""Redrive: dead-lettered jobs back to ``queued`` with a fresh message; each attempt's error stays in history."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from jobq.domain.errors import ForbiddenError, InvalidTransitionError, JobNotFoundError
from jobq.domain.identity import Caller
from jobq.domain.models import RETRYABLE, Job
from jobq.domain.ports import DeadLetter, DeadLetterQueue

if TYPE_CHECKING:
    from jobq.domain.service import JobService  # the sweeper uses this module's helpers, not the API's service


def receive_all(dead_letters: DeadLetterQueue, *, limit: int, hide_seconds: int) -> list[DeadLetter]:
    """Up to ``limit`` messages, ten per receive, each hidden until put back or deleted."""
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


def superseded(job: Job, generation: int, taken: set[str]) -> str | None:
    """Why a dead-lettered message of ``job``, sent at ``generation``, is not the message of its latest failure
    (None: it is). ``taken``: jobs another message has stood for in this pass already (one failure at a time)."""
    if generation < job.retries:
        return f"the job was retried since (message generation {generation}, job {job.retries})"
    if job.job_id in taken:
        return "another message of the same job is taken"
    return None


def _generation(letter: DeadLetter) -> int:
    message = letter.message
    return -1 if message is None else message.generation


class Verdict(Enum):
    """What a redrive does with one DLQ message."""

    REDRIVEN = "redriven"
    """The job was failed or cancelled: it is queued again and the message deleted."""
    STALE = "stale"
    """The job is no longer failed (retried or recovered since): the message is deleted."""
    KEPT = "kept"
    """Unreadable, or its job no longer exists: the message stays for an operator."""

    @property
    def deletes_message(self) -> bool:
        return self is not Verdict.KEPT


@dataclass(frozen=True)
class Outcome:
    """A verdict and why."""

    verdict: Verdict
    reason: str = ""


@dataclass
class RedriveReport:
    """What a redrive did, per verdict; ``more``: it stopped at its limit and the DLQ may hold more."""

    redriven: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    more: bool = False

    def add(self, key: str, outcome: Outcome) -> None:
        if outcome.verdict is Verdict.REDRIVEN:
            self.redriven.append(key)
        elif outcome.verdict is Verdict.STALE:
            self.dropped.append((key, outcome.reason))
        else:
            self.kept.append((key, outcome.reason))


class Redriver:
    """Moves dead-lettered jobs back to the queue through JobService.retry (a conditional write).

    The dead-letter queue holds every caller's jobs: only admins list or redrive it.
    """

    HIDE_SECONDS = 120

    def __init__(self, *, service: JobService, dead_letters: DeadLetterQueue, max_messages: int = 10_000) -> None:
        self._service = service
        self._dlq = dead_letters
        self._max = max_messages

    @property
    def limit(self) -> int:
        """Messages one listing or redrive reads at most."""
        return self._max

    def _drain(self) -> list[DeadLetter]:
        return receive_all(self._dlq, limit=self._max, hide_seconds=self.HIDE_SECONDS)

    @staticmethod
    def _admin_only(caller: Caller) -> None:
        if not caller.is_admin:
            raise ForbiddenError("the dead-letter queue holds every caller's jobs: only admins list or redrive it")

    def _job(self, letter: DeadLetter, caller: Caller) -> Job | None:
        message = letter.message
        if message is None:
            return None
        try:
            return self._service.get(message.job_id, caller)
        except JobNotFoundError:
            return None

    def list(self, caller: Caller) -> list[DeadLetterView]:
        """The DLQ's messages (up to the limit) with their jobs, each job once; the messages stay where they are.

        A job retried and failed again may briefly have a message of each failure until the sweeper removes
        the stale one: it is listed once, with its latest message.
        """
        self._admin_only(caller)
        letters = self._drain()
        try:
            views: dict[str, DeadLetterView] = {}
            for letter in letters:
                message, job = letter.message, self._job(letter, caller)
                key = letter.message_id if message is None or job is None else job.job_id
                latest = views.get(key)
                if latest is None or (message is not None and message.generation > _generation(latest.letter)):
                    views[key] = DeadLetterView(letter, job)
            return list(views.values())
        finally:
            self._dlq.put_back(letters)

    def redrive(self, caller: Caller, job_id: str | None = None) -> RedriveReport:
        """Retry the DLQ's failed jobs (only ``job_id``'s if given) and delete their DLQ messages.

        Messages of jobs that are no longer failed (retried already, or succeeded since) are deleted as
        stale; unreadable messages and messages of jobs that no longer exist stay in the DLQ.
        """
        self._admin_only(caller)
        report = RedriveReport()
        keep: list[DeadLetter] = []
        letters = self._drain()
        report.more = len(letters) >= self._max
        redriven: set[str] = set()
        for letter in letters:
            message = letter.message
            if message is not None and job_id is not None and message.job_id != job_id:
                keep.append(letter)  # not asked for: left alone, not reported
                continue
            if message is None:
                outcome, key = Outcome(Verdict.KEPT, "body is not a job message"), letter.message_id
            else:
                outcome, key = self._redrive_one(message.job_id, message.generation, caller, redriven), message.job_id
            report.add(key, outcome)
            if outcome.verdict is Verdict.REDRIVEN:
                redriven.add(key)
            if outcome.verdict.deletes_message:
                self._dlq.delete(letter)
            else:
                keep.append(letter)
        self._dlq.put_back(keep)
        return report

    def _redrive_one(self, job_id: str, generation: int, caller: Caller, redriven: set[str]) -> Outcome:
        """Retry the job of one message, unless the message is stale: an earlier failure's (the job was retried
        since; redriving it would run the job again for a failure already dealt with), or its job's other
        message was redriven already in this pass."""
        try:
            job = self._service.get(job_id, caller)
        except JobNotFoundError:
            return Outcome(Verdict.KEPT, "no such job (expired or deleted)")
        why = superseded(job, generation, redriven) if job.status in RETRYABLE else None
        if why is not None:  # (a job that is not failed or cancelled: the retry itself says so)
            return Outcome(Verdict.STALE, f"stale: {why}")
        try:
            self._service.retry(job_id, caller)
        except JobNotFoundError:
            return Outcome(Verdict.KEPT, "no such job (expired or deleted)")
        except InvalidTransitionError as exc:
            return Outcome(Verdict.STALE, f"stale: the job is {exc.current_status or 'unknown'}")
        return Outcome(Verdict.REDRIVEN)
