"""Jobs, their statuses, and what the queue and the repository carry (the API's documents: ``documents``)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
JOB_ID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
JOB_TYPE_PATTERN = r"^[a-z][a-z0-9_.-]{0,63}$"


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a ``Z`` suffix."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str, when_used="json")]


def new_job_id(now: datetime | None = None) -> str:
    """A ULID: 48-bit millisecond timestamp and 80 random bits, Crockford base32, time-ordered."""
    millis = int(now.timestamp() * 1000) if now else time.time_ns() // 1_000_000
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


class JobStatus(StrEnum):
    """Where a job is in its lifecycle."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Nothing but an explicit retry moves a job out of a terminal status."""
        return self in _TERMINAL


_TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
RETRYABLE = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
"""The statuses an explicit retry (the API's, a redrive's) takes a job out of."""


class Model(BaseModel):
    """Base of jobq's models: its validator is built on first use, not at import (a function builds only the
    models its path uses)."""

    model_config = ConfigDict(defer_build=True)


class JobError(Model):
    """Why an attempt failed."""

    model_config = ConfigDict(frozen=True)

    type: str = Field(description="Error class, e.g. `ValueError` or `JobTimeoutError`.")
    message: str
    retryable: bool


class AttemptFailure(JobError):
    """One failed attempt, as kept in a job's history."""

    attempt: int
    at: Timestamp

    @classmethod
    def of(cls, error: JobError, *, attempt: int, at: datetime) -> AttemptFailure:
        """``error`` as the history entry of ``attempt``."""
        return cls(type=error.type, message=error.message, retryable=error.retryable, attempt=attempt, at=at)


DEFAULT_HISTORY_LIMIT = 20
MAX_PROGRESS_MESSAGE = 200
MAX_RECORD_BYTES = 400 * 1024
"""DynamoDB's item limit: a job record must stay below it on every store, whatever the store enforces."""


def record_bytes(job: Job) -> int:
    """A close upper bound of the job's stored size: every field's JSON text, names included, plus index keys."""
    return len(job.model_dump_json().encode()) + 512


def appended_history(
    job: Job, entries: tuple[AttemptFailure, ...], limit: int
) -> tuple[tuple[AttemptFailure, ...], int]:
    """``job``'s history with ``entries`` added, cut to the last ``limit``; and the new count of dropped ones."""
    combined = (*job.history, *entries)
    overflow = max(0, len(combined) - limit)
    return combined[overflow:], job.history_dropped + overflow


def worker_lost(attempt: int, max_attempts: int, *, retryable: bool) -> JobError:
    """The error of an attempt whose worker crashed or timed out before it recorded an outcome."""
    return JobError(
        type="WorkerLostError",
        message=f"attempt {attempt} of {max_attempts} did not finish: its lease expired "
        "(the worker crashed or timed out)",
        retryable=retryable,
    )


class Progress(Model):
    """How far a running job says it is (``context.progress``)."""

    model_config = ConfigDict(frozen=True)

    done: float = Field(ge=0, allow_inf_nan=False, description="Units of work done.")
    total: float | None = Field(default=None, gt=0, allow_inf_nan=False, description="Units in all, if known.")
    message: str | None = Field(default=None, max_length=MAX_PROGRESS_MESSAGE)
    updated_at: Timestamp

    @property
    def fraction(self) -> float | None:
        """``done / total`` within 0..1, or None when the total is unknown."""
        return None if self.total is None else max(0.0, min(1.0, self.done / self.total))


class Job(Model):
    """A job as stored. ``lease_*`` and ``available_at`` are worker bookkeeping, not API fields."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    type: str
    owner: str = Field(min_length=1)
    """The principal that submitted the job (SPEC: IAM ARN, or JWT ``iss#sub``)."""
    status: JobStatus
    payload: dict[str, Any]
    result: Any = None
    error: JobError | None = None
    history: tuple[AttemptFailure, ...] = ()
    history_dropped: int = 0
    """Failed attempts older than the kept history (it holds the last ``history_limit``)."""
    retries: int = 0
    """Times the job was retried through the API or a redrive (bounded by ``max_retries``)."""
    attempts: int = 0
    max_attempts: int
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    available_at: Timestamp
    lease_id: str | None = None
    lease_expires_at: Timestamp | None = None
    claimed_from: JobStatus | None = None
    """The status the latest claim found: ``running`` means it took over from a worker that was lost."""
    progress: Progress | None = None
    cancel_requested: bool = False
    """A caller asked to cancel the job while it ran; its handler stops at its next progress check."""

    @property
    def status_url(self) -> str:
        """Where clients poll this job."""
        return f"/jobs/{self.job_id}"

    def claimable(self, now: datetime) -> bool:
        """What a claim requires: an attempt left, and ``queued`` and due, or ``running`` with an expired lease.

        Every JobRepository's ``claim`` checks exactly this (DynamoDB as a condition expression); the
        repository contract tests hold each implementation to it.
        """
        if self.attempts >= self.max_attempts:
            return False
        if self.status is JobStatus.QUEUED:
            return self.available_at <= now
        if self.status is JobStatus.RUNNING:
            return self.lease_expires_at is not None and self.lease_expires_at < now
        return False


class JobMessage(Model):
    """What the jobs queue carries: a claim check. DynamoDB holds the truth.

    ``generation`` is the job's ``retries`` when the message was sent: a dead-lettered message of an
    earlier generation is stale (its job was retried since), so each failed job has one DLQ message.
    """

    model_config = ConfigDict(frozen=True)

    job_id: str = Field(pattern=JOB_ID_PATTERN)
    type: str
    generation: int = Field(default=0, ge=0)

    @classmethod
    def of(cls, job: Job) -> JobMessage:
        """The claim check of ``job`` as it is now."""
        return cls(job_id=job.job_id, type=job.type, generation=job.retries)


class Delivery(Model):
    """One received queue message, as the worker sees it."""

    model_config = ConfigDict(frozen=True)

    message: JobMessage
    receive_count: int = Field(ge=1)


class ListQuery(Model):
    """Filters and paging of a job listing."""

    model_config = ConfigDict(frozen=True)

    status: JobStatus | None = None
    type: str | None = None
    owner: str | None = None
    """Only this owner's jobs (read from the owner index); None: every owner's."""
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = None


class JobPage(Model):
    """A page of jobs and the cursor of the next one."""

    model_config = ConfigDict(frozen=True)

    items: tuple[Job, ...]
    next_cursor: str | None
