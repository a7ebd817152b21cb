"""The documents the API takes and returns: requests, a job's public view, pages, the DLQ's and redrive's.

Only the API function (and the client, the CLI and the dashboard) builds them; the worker and the sweeper
never import this module.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ConfigDict, Field

from jobq.domain.models import JOB_ID_PATTERN, AttemptFailure, Job, JobError, JobStatus, Model, Progress, Timestamp

MAX_PAGE_BYTES = 5 * 1024 * 1024
"""A listing page's job documents stay below this: API Gateway and Lambda return at most 6 MB."""


def document_bytes(job: Job) -> int:
    """What the job's API document adds to a response: its JSON, as escaped inside Lambda's response (ASCII)."""
    return len(json.dumps(JobDocument.of(job).model_dump_json()))


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

    @classmethod
    def of(cls, job: Job) -> JobDocument:
        """The public view of ``job``."""
        return cls(
            job_id=job.job_id,
            type=job.type,
            owner=job.owner,
            status=job.status,
            payload=job.payload,
            result=job.result,
            error=job.error,
            history=list(job.history),
            history_dropped=job.history_dropped,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            status_url=job.status_url,
            progress=job.progress,
            cancel_requested=job.cancel_requested,
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
