"""Jobs, their statuses, and the documents the API and the queue carry."""

from __future__ import annotations

import json
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
    """Base of every model here: its validator is built on first use, not at import (a function builds
    only the models its path uses; the worker never builds the API's documents)."""

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


MAX_PAGE_BYTES = 5 * 1024 * 1024
"""A listing page's job documents stay below this: API Gateway and Lambda return at most 6 MB."""


def document_bytes(job: Job) -> int:
    """What the job's API document adds to a response: its JSON, as escaped inside Lambda's response (ASCII)."""
    return len(json.dumps(job.to_document().model_dump_json()))


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

    def to_document(self) -> JobDocument:
        """The public view of this job."""
        return JobDocument(
            job_id=self.job_id,
            type=self.type,
            owner=self.owner,
            status=self.status,
            payload=self.payload,
            result=self.result,
            error=self.error,
            history=list(self.history),
            history_dropped=self.history_dropped,
            attempts=self.attempts,
            max_attempts=self.max_attempts,
            created_at=self.created_at,
            updated_at=self.updated_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            status_url=self.status_url,
            progress=self.progress,
            cancel_requested=self.cancel_requested,
        )


class JobDocument(Model):
    """A job as the API returns it."""

    job_id: str = Field(pattern=JOB_ID_PATTERN, description="Time-ordered id (ULID).")
    type: str
    owner: str = Field(description="Who submitted the job: an IAM principal ARN, or a JWT's `iss#sub`.")
    status: JobStatus
    payload: dict[str, Any]
    result: Any = Field(default=None, description="The handler's return value; null until succeeded.")
    error: JobError | None = Field(default=None, description="The last attempt's error, if any.")
    history: list[AttemptFailure] = Field(
        default_factory=list, description="The latest failed attempts, oldest first (up to the history limit)."
    )
    history_dropped: int = Field(default=0, ge=0, description="Older failed attempts no longer kept in `history`.")
    attempts: int = Field(ge=0)
    max_attempts: int = Field(ge=1)
    created_at: Timestamp
    updated_at: Timestamp
    started_at: Timestamp | None = None
    finished_at: Timestamp | None = None
    status_url: str
    progress: Progress | None = Field(default=None, description="What the handler last reported; null if nothing.")
    cancel_requested: bool = Field(
        default=False, description="Cancel was asked for while the job ran; it stops at its next progress check."
    )


class JobPageDocument(Model):
    """One page of a job listing, newest first."""

    items: list[JobDocument]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class JobTypeDocument(Model):
    """A registered job type, as ``GET /types`` describes it."""

    type: str
    payload_schema: dict[str, Any] = Field(description="JSON Schema of the payload (from the type's pydantic model).")
    timeout_seconds: float
    max_attempts: int = Field(ge=1, description="Attempts a job of this type gets (the type's, capped by MaxAttempts).")


class JobTypeListDocument(Model):
    """Every registered job type, by name."""

    items: list[JobTypeDocument]


class DeadLetterDocument(Model):
    """A message in the dead-letter queue and its job (null: unreadable body, or no such job)."""

    message_id: str
    body: str
    job: JobDocument | None


class DeadLetterPageDocument(Model):
    """Messages of the dead-letter queue; ``more``: the listing stopped at its limit."""

    items: list[DeadLetterDocument]
    more: bool


class RedriveRequest(Model):
    """Body of ``POST /dlq/redrive``."""

    model_config = ConfigDict(extra="forbid")

    job_id: str | None = Field(default=None, pattern=JOB_ID_PATTERN, description="Only this job's message.")


class RedriveItem(Model):
    """A message a redrive deleted as stale or kept, and why."""

    key: str = Field(description="The job id, or the message id of an unreadable message.")
    reason: str


class RedriveDocument(Model):
    """What one redrive call did; ``more``: it stopped at its limit, call again for the rest."""

    redriven: list[str]
    dropped: list[RedriveItem]
    kept: list[RedriveItem]
    more: bool


class SubmitJobRequest(Model):
    """Body of ``POST /jobs``."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(min_length=1, max_length=64, description="A registered job type, e.g. `echo`.")
    payload: dict[str, Any] = Field(default_factory=dict, description="Validated against the type's model.")
    delay_seconds: int = Field(default=0, ge=0, le=900, description="Seconds before the job may start.")


MAX_BATCH_JOBS = 25


class SubmitBatchRequest(Model):
    """Body of ``POST /jobs/batch``: up to 25 jobs, submitted all or none."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[SubmitJobRequest] = Field(min_length=1, max_length=MAX_BATCH_JOBS)


class JobListDocument(Model):
    """Jobs, in the order they were asked for."""

    items: list[JobDocument]


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
    max_bytes: int | None = Field(default=None, ge=1)
    """Stop the page before its job documents pass this many bytes of JSON (None: no limit)."""


class JobPage(Model):
    """A page of jobs and the cursor of the next one."""

    model_config = ConfigDict(frozen=True)

    items: tuple[Job, ...]
    next_cursor: str | None
