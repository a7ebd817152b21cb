"""The small interfaces the domain talks through; adapters implement them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any, Final, Protocol

from pydantic import ValidationError

from jobq.domain.models import AttemptFailure, Job, JobError, JobMessage, JobPage, JobStatus, ListQuery, Progress


class _Unset(Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET
"""Marks a ``JobChange`` field the change leaves alone (``None`` means: clear it)."""


@dataclass(frozen=True)
class PageBytes:
    """A listing page's size limit: it stops before the sizes of its jobs pass ``limit`` (its first job
    always fits), and its cursor resumes at the job that did not fit."""

    limit: int
    size_of: Callable[[Job], int]
    """What a job adds to the response (the API's document of it)."""

    def fits(self, used: int, job: Job, first: bool) -> int | None:
        """The bytes used with ``job`` added, or None if it does not fit."""
        grown = used + self.size_of(job)
        return grown if first or grown <= self.limit else None


@dataclass(frozen=True)
class Expect:
    """The condition a conditional write checks: current status, and the lease, attempts and owner if given."""

    statuses: frozenset[JobStatus]
    lease_id: str | None = None
    attempts: int | None = None
    owner: str | None = None

    @classmethod
    def status(
        cls,
        *statuses: JobStatus,
        lease_id: str | None = None,
        attempts: int | None = None,
        owner: str | None = None,
    ) -> Expect:
        return cls(frozenset(statuses), lease_id, attempts, owner)

    @classmethod
    def holding(cls, job: Job) -> Expect:
        """``job`` still running under the lease it was read with (every write of the attempt that holds it)."""
        return cls.status(JobStatus.RUNNING, lease_id=job.lease_id)

    def holds_for(self, job: Job) -> bool:
        """Whether ``job`` meets this condition (what every repository's conditional write checks)."""
        return (
            job.status in self.statuses
            and (self.lease_id is None or job.lease_id == self.lease_id)
            and (self.attempts is None or job.attempts == self.attempts)
            and (self.owner is None or job.owner == self.owner)
        )


@dataclass(frozen=True)
class JobChange:
    """A transition's writes. Fields left ``UNSET`` are not touched."""

    status: JobStatus
    at: datetime
    result: Any | _Unset = UNSET
    error: JobError | _Unset | None = UNSET
    history: tuple[AttemptFailure, ...] | _Unset = UNSET
    """The whole history as it is to be stored (``appended_history`` keeps it within its limit)."""
    history_dropped: int | _Unset = UNSET
    retries: int | _Unset = UNSET
    finished_at: datetime | _Unset | None = UNSET
    available_at: datetime | _Unset = UNSET
    attempts: int | _Unset = UNSET
    progress: Progress | _Unset | None = UNSET
    cancel_requested: bool | _Unset = UNSET
    started_at: datetime | _Unset = UNSET
    lease_expires_at: datetime | _Unset = UNSET
    """A new expiry of the lease the change is conditional on (``release_lease`` removes the lease)."""
    release_lease: bool = False

    @classmethod
    def cancel_queued(cls, now: datetime) -> JobChange:
        """The write that ends a queued job ``cancelled`` (a cancel, or one asked for while it waited its turn)."""
        return cls(status=JobStatus.CANCELLED, at=now, finished_at=now)


class ConditionFailedError(Exception):
    """A conditional write did not apply; ``current`` is the job as it was (None if absent)."""

    def __init__(self, current: Job | None) -> None:
        super().__init__(f"condition failed (current status: {current.status if current else 'absent'})")
        self.current = current


class RecordTooLargeError(Exception):
    """The job record would exceed the store's item size limit."""


@dataclass(frozen=True)
class Claim:
    """One job of a ``claim_fresh`` request and the lease its attempt is to take."""

    job_id: str
    lease_id: str
    lease_expires_at: datetime


class JobRepository(Protocol):
    """Job records with conditional writes. Raises DependencyUnavailableError when storage is down."""

    def insert(self, job: Job) -> None:
        """Create a new job; fails if the id exists."""

    def insert_many(self, jobs: Sequence[Job]) -> None:
        """Create new jobs (fresh ids), all or none: RecordTooLargeError or DependencyUnavailableError leave
        none of them stored."""

    def get(self, job_id: str) -> Job | None:
        """The job, strongly consistent, or None."""

    def claim(self, job_id: str, *, now: datetime, lease_id: str, lease_expires_at: datetime) -> Job:
        """Start an attempt: queued and due, or running with an expired lease, with attempts left.

        Counts the attempt, takes the lease and clears the last attempt's progress.
        Raises ConditionFailedError otherwise.
        """

    def claim_fresh(self, claims: Sequence[Claim], *, now: datetime) -> list[Job | None]:
        """Start the first attempt of several jobs in one request, as ``claim`` would, for each job that is
        queued, due, not yet attempted (``attempts == 0``) and allowed more than one attempt. In order, None
        for each job not claimed so, for whatever reason (the caller claims those one at a time).
        DependencyUnavailableError when the request failed as a whole."""

    def update(self, job_id: str, change: JobChange, *, expect: Expect) -> Job:
        """Apply ``change`` if ``expect`` holds; return the new job or raise ConditionFailedError."""

    def delete(self, job_id: str, *, expect: Expect) -> None:
        """Remove a job if ``expect`` holds (used to undo a submit whose enqueue failed)."""

    def list_jobs(self, query: ListQuery, page_bytes: PageBytes | None = None) -> JobPage:
        """Jobs newest first, filtered by status and type, from the cursor on; within ``page_bytes`` if given."""


@dataclass(frozen=True)
class SweepMarks:
    """The sweeper's per-shard marks as read, with the version a save is conditional on.

    ``watching``: per shard, older non-terminal jobs the mark has passed; every sweep reads them again.
    """

    positions: Mapping[int, str]
    version: int = 0
    watching: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


class SweepIndex(Protocol):
    """What the sweeper reads: the listing index shard by shard, oldest first, and its per-shard marks.

    A shard's mark is the job id up to which every job is known to be terminal; the sweeper reads on
    from there. An API retry lowers the mark of the retried job's shard.
    """

    @property
    def shard_count(self) -> int: ...

    def scan_shard(self, shard: int, *, after: str | None, limit: int) -> list[str]:
        """Job ids of one shard, oldest first, after ``after`` (from the start if None)."""

    def get_many(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """The jobs that still exist, by id."""

    def marks(self) -> SweepMarks:
        """Each shard's mark (shards without one are read from the start), and their version."""

    def save_marks(self, before: SweepMarks, after: Mapping[int, str], watching: Mapping[int, tuple[str, ...]]) -> bool:
        """Store ``after`` and ``watching`` if nothing changed since ``before`` was read; False otherwise."""

    def lower_mark(self, job_id: str) -> None:
        """Make sure the next sweep reads ``job_id`` again (it went back to ``queued``).

        Also changes the marks' version, so that a sweep that read the job before this call, and is
        about to move the mark past it, fails to save.
        """


class JobQueue(Protocol):
    """The jobs queue and its dead-letter queue. Raises DependencyUnavailableError when SQS is down."""

    def send(self, message: JobMessage, *, delay_seconds: int = 0) -> None:
        """Enqueue a job's claim check."""

    def send_many(self, messages: Sequence[tuple[JobMessage, int]]) -> None:
        """Enqueue claim checks, each with its delay; DependencyUnavailableError if any could not be sent."""

    def send_to_dead_letter(self, message: JobMessage) -> None:
        """Put a job's claim check straight into the dead-letter queue."""


@dataclass(frozen=True)
class VisibilityChange:
    """Make a received message visible again after ``seconds``."""

    receipt_handle: str
    seconds: int


class MessageVisibility(Protocol):
    """Hands received messages of the jobs queue back, each after its own delay."""

    def change_visibility(self, changes: Sequence[VisibilityChange]) -> int:
        """Apply the changes; returns how many the queue refused."""


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

    def delete(self, letter: DeadLetter) -> None:
        """Remove a received message for good."""

    def put_back(self, letters: Sequence[DeadLetter]) -> None:
        """Make received messages visible again at once."""


class DeadLetterRoute(StrEnum):
    """How a failed job's message reaches the dead-letter queue."""

    REDRIVE = "redrive"
    """Its last receive was handed back: the queue's redrive policy moves it."""
    SENT = "sent"
    """The worker sent a copy to the DLQ and deleted the original."""
    SWEEPER = "sweeper"
    """The sweeper failed a job whose worker was lost and sent its message."""


class IdempotencyStore(Protocol):
    """Runs an action once per key and remembers its result.

    Raises IdempotencyKeyReusedError when ``fingerprint`` differs from the first request's, and
    IdempotencyKeyInProgressError while the first request is still running. An action that raises
    leaves no record, so the client may try again with the same key.
    """

    def once(self, key: str, fingerprint: Mapping[str, Any], action: Callable[[], str]) -> tuple[str, bool]:
        """``action()``'s result, and whether it ran now (False: the stored result of an earlier run)."""


class Clock(Protocol):
    """Wall-clock time (UTC)."""

    def now(self) -> datetime: ...


class JobEvents:
    """Lifecycle events: logs and metrics. This base ignores every event (tools that report outcomes
    themselves use it as is); each runtime subclasses it, and tests record them."""

    def job_scope(self, job_id: str, job_type: str) -> AbstractContextManager[None]:
        """Every log line inside carries ``job_id`` and ``job_type``."""
        return nullcontext()

    def submitted(self, job: Job) -> None:
        """A job was stored and enqueued."""

    def started(self, job: Job) -> None:
        """An attempt claimed the job."""

    def succeeded(self, job: Job, duration_ms: float) -> None:
        """The job's handler returned and the result was stored."""

    def retry_scheduled(self, job: Job, delay_seconds: float, duration_ms: float) -> None:
        """An attempt failed; the job is queued again after ``delay_seconds``."""

    def failed(self, job: Job, duration_ms: float | None) -> None:
        """The job failed for good."""

    def dead_lettered(self, job: Job, route: DeadLetterRoute) -> None:
        """A failed job's message is (or will be) in the dead-letter queue."""

    def skipped(self, job_id: str, reason: str) -> None:
        """A delivery was acknowledged without running the job."""

    def deferred(self, job_id: str, delay_seconds: float, reason: str) -> None:
        """A delivery was handed back to the queue to come again after ``delay_seconds``."""

    def cancelled(self, job: Job) -> None:
        """A job was cancelled: a queued one by a caller, or a running one that honoured a cancel request."""

    def cancel_requested(self, job: Job) -> None:
        """A caller asked a running job to stop; it does at its next progress check."""

    def requeued(self, job: Job, reason: str) -> None:
        """A job went back to ``queued`` with a fresh message (API retry, lost worker)."""

    def resent(self, job: Job, reason: str) -> None:
        """A job that stayed ``queued`` got a fresh message (its message was lost)."""
