"""Submit, read, list, cancel and retry jobs: the API side of the state machine."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from jobq.domain.documents import MAX_PAGE_BYTES, JobTypeDocument, SubmitJobRequest, document_bytes
from jobq.domain.errors import (
    ConfigurationError,
    DependencyUnavailableError,
    InvalidBatchError,
    InvalidPayloadError,
    InvalidTransitionError,
    JobNotFoundError,
    PayloadTooLargeError,
    RetryLimitError,
    UnknownJobTypeError,
)
from jobq.domain.identity import Caller
from jobq.domain.models import JOB_ID_PATTERN, RETRYABLE, Job, JobMessage, JobPage, JobStatus, ListQuery, new_job_id
from jobq.domain.ports import (
    Clock,
    ConditionFailedError,
    Expect,
    IdempotencyStore,
    JobChange,
    JobEvents,
    JobQueue,
    JobRepository,
    PageBytes,
    RecordTooLargeError,
    SweepIndex,
)
from jobq.domain.registry import JobRegistry

_log = logging.getLogger(__name__)

DEFAULT_MAX_RETRIES = 10
_JOB_ID = re.compile(JOB_ID_PATTERN)


class JobService:
    """Use cases behind the HTTP API. Every state change is a conditional write.

    Every use case acts for a ``Caller``: a caller sees and acts on the jobs it owns, and another
    caller's job is "not found" exactly like an id that does not exist; an admin sees every job.
    """

    def __init__(
        self,
        *,
        repository: JobRepository,
        queue: JobQueue,
        registry: JobRegistry,
        clock: Clock,
        events: JobEvents,
        max_attempts: int,
        max_retries: int = DEFAULT_MAX_RETRIES,
        idempotency: IdempotencyStore | None = None,
        sweep_index: SweepIndex | None = None,
    ) -> None:
        self._repo = repository
        self._queue = queue
        self._registry = registry
        self._clock = clock
        self._events = events
        self._max_attempts = max_attempts
        self._max_retries = max_retries
        self._idempotency = idempotency
        self._sweep_index = sweep_index

    def submit_once(self, request: SubmitJobRequest, idempotency_key: str, caller: Caller) -> tuple[Job, bool]:
        """Submit under an Idempotency-Key: the job and True, or the job the key created before and False.

        Keys are the caller's own: the same key from two callers makes two jobs.
        """
        if self._idempotency is None:
            raise ConfigurationError("no idempotency store is configured")
        created: list[Job] = []

        def create() -> str:
            job = self.submit(request, caller)
            created.append(job)
            return job.job_id

        # Header keys are printable ASCII without spaces, so the space keeps owner and key apart.
        scoped_key = f"{caller.principal} {idempotency_key}"
        job_id, ran = self._idempotency.once(scoped_key, request.model_dump(mode="json"), create)
        if ran:
            return created[0], True
        return self.get(job_id, caller), False

    def submit_batch(self, requests: Sequence[SubmitJobRequest], caller: Caller) -> list[Job]:
        """Validate every job, then store them all and enqueue them all; all or none.

        An invalid job rejects the batch (InvalidBatchError naming each by index). If storing or enqueueing
        fails, the stored jobs are removed again and DependencyUnavailableError (503) is raised.
        """
        now = self._clock.now()
        problems: list[dict[str, Any]] = []
        jobs: list[Job] = []
        for index, request in enumerate(requests):
            try:
                job_type = self._registry.require(request.type)
                job_type.parse(request.payload)
            except (UnknownJobTypeError, InvalidPayloadError) as exc:
                problems.append({"index": index, "code": exc.code, "message": exc.message, "details": exc.details})
                continue
            jobs.append(self._new_job(request, job_type.name, job_type.max_attempts, caller, now))
        if problems:
            raise InvalidBatchError(
                f"{len(problems)} of {len(requests)} jobs are invalid; none was submitted", details=problems
            )
        try:
            self._repo.insert_many(jobs)
        except RecordTooLargeError:
            raise PayloadTooLargeError("a job of the batch is too large to store; send smaller payloads") from None
        try:
            self._queue.send_many(
                [
                    (JobMessage.of(job), job_request.delay_seconds)
                    for job, job_request in zip(jobs, requests, strict=True)
                ]
            )
        except DependencyUnavailableError:
            for job in jobs:
                self._undo_submit(job)
            raise
        for job in jobs:
            self._events.submitted(job)
        return jobs

    def submit_batch_once(
        self, requests: Sequence[SubmitJobRequest], idempotency_key: str, caller: Caller
    ) -> tuple[list[Job], bool]:
        """``submit_batch`` under an Idempotency-Key: the jobs and True, or the jobs the key made before and False."""
        if self._idempotency is None:
            raise ConfigurationError("no idempotency store is configured")
        created: list[Job] = []

        def create() -> str:
            created.extend(self.submit_batch(requests, caller))
            return " ".join(job.job_id for job in created)

        scoped_key = f"{caller.principal} batch {idempotency_key}"
        fingerprint = {"jobs": [request.model_dump(mode="json") for request in requests]}
        job_ids, ran = self._idempotency.once(scoped_key, fingerprint, create)
        if ran:
            return created, True
        return [self.get(job_id, caller) for job_id in job_ids.split()], False

    def _new_job(
        self, request: SubmitJobRequest, type_name: str, type_max_attempts: int | None, caller: Caller, now: datetime
    ) -> Job:
        return Job(
            job_id=new_job_id(now),
            type=type_name,
            owner=caller.principal,
            status=JobStatus.QUEUED,
            payload=request.payload,
            max_attempts=self._attempts_of(type_max_attempts),
            created_at=now,
            updated_at=now,
            available_at=now + timedelta(seconds=request.delay_seconds),
        )

    def submit(self, request: SubmitJobRequest, caller: Caller) -> Job:
        """Validate, store as ``queued``, enqueue. If enqueueing fails, undo the store and raise 503."""
        job_type = self._registry.require(request.type)
        job_type.parse(request.payload)
        job = self._new_job(request, job_type.name, job_type.max_attempts, caller, self._clock.now())
        try:
            self._repo.insert(job)
        except RecordTooLargeError:
            raise PayloadTooLargeError("the job is too large to store; send a smaller payload") from None
        try:
            self._queue.send(JobMessage.of(job), delay_seconds=request.delay_seconds)
        except DependencyUnavailableError:
            self._undo_submit(job)
            raise
        self._events.submitted(job)
        return job

    def job_types(self) -> list[JobTypeDocument]:
        """Every registered job type with its payload schema, timeout and attempts, by name."""
        described = []
        for name in self._registry.names:
            job_type = self._registry.require(name)
            described.append(
                JobTypeDocument(
                    type=name,
                    payload_schema=job_type.model.model_json_schema(),
                    timeout_seconds=job_type.timeout_seconds,
                    max_attempts=self._attempts_of(job_type.max_attempts),
                )
            )
        return described

    def _attempts_of(self, type_max: int | None) -> int:
        """A type's attempts: its own setting, never above the queue's maxReceiveCount (MaxAttempts)."""
        return min(type_max or self._max_attempts, self._max_attempts)

    def get(self, job_id: str, caller: Caller) -> Job:
        """The job, or JobNotFoundError (also for ids that cannot exist, and for other callers' jobs)."""
        job = self._repo.get(self._checked_id(job_id))
        if job is None or not caller.may_see(job.owner):
            raise _not_found(job_id)
        return job

    def list(self, query: ListQuery, caller: Caller) -> JobPage:
        """Jobs newest first, optionally filtered by status and type: the caller's own, or for an admin
        every owner's (or one owner's, with ``query.owner``)."""
        if not caller.is_admin:
            if query.owner not in {None, caller.principal}:
                return JobPage(items=(), next_cursor=None)  # other callers' jobs do not exist for this one
            query = query.model_copy(update={"owner": caller.principal})
        return self._repo.list_jobs(query, PageBytes(MAX_PAGE_BYTES, document_bytes))

    def cancel(self, job_id: str, caller: Caller) -> Job:
        """``queued`` -> ``cancelled``; a ``running`` job is asked to stop (``cancel_requested``, honoured at its
        handler's next progress check); a terminal one is a conflict."""
        self._checked_id(job_id)
        owner = self._owner_condition(caller)
        for _ in range(3):  # the job may move between queued and running while we try
            now = self._clock.now()
            try:
                job = self._repo.update(
                    job_id,
                    JobChange.cancel_queued(now),
                    expect=Expect.status(JobStatus.QUEUED, owner=owner),
                )
            except ConditionFailedError as rejected:
                current = rejected.current
                if current is None or current.status is not JobStatus.RUNNING or not caller.may_see(current.owner):
                    raise self._conflict(job_id, current, caller, "cancel", "queued or running") from None
            else:
                self._events.cancelled(job)
                return job
            if current.cancel_requested:
                return current
            try:
                job = self._repo.update(
                    job_id,
                    JobChange(status=JobStatus.RUNNING, at=now, cancel_requested=True),
                    expect=Expect.status(JobStatus.RUNNING, owner=owner),
                )
            except ConditionFailedError:
                continue
            self._events.cancel_requested(job)
            return job
        raise DependencyUnavailableError(f"job {job_id} kept changing status; try to cancel it again")

    def retry(self, job_id: str, caller: Caller) -> Job:
        """``failed``/``cancelled`` -> ``queued`` with a fresh set of attempts; history is kept.

        At most ``max_retries`` times per job (a conflict after that): nothing re-runs a job without end.
        """
        before = self.get(job_id, caller)
        if before.status.terminal and before.retries >= self._max_retries:
            raise RetryLimitError(
                f"job {before.job_id} was retried {before.retries} times, the most allowed (MaxRetries)",
                current_status=before.status.value,
            )
        now = self._clock.now()
        change = JobChange(
            status=JobStatus.QUEUED,
            at=now,
            attempts=0,
            finished_at=None,
            result=None,
            available_at=now,
            retries=before.retries + 1,
            progress=None,
            cancel_requested=False,
        )
        expect = Expect(RETRYABLE, owner=self._owner_condition(caller))
        try:
            job = self._repo.update(job_id, change, expect=expect)
        except ConditionFailedError as rejected:
            raise self._conflict(job_id, rejected.current, caller, "retry", "failed or cancelled") from None
        self._lower_sweep_mark(job)
        try:
            self._queue.send(JobMessage.of(job))
        except DependencyUnavailableError:
            self._undo_retry(before, job)
            raise
        self._events.requeued(job, "retry requested")
        return job

    def _lower_sweep_mark(self, job: Job) -> None:
        """The sweeper had this job behind its mark (it was terminal); make it read the job again."""
        if self._sweep_index is None:
            return
        try:
            self._sweep_index.lower_mark(job.job_id)
        except DependencyUnavailableError:
            _log.exception("could not lower the sweeper's mark for job %s", job.job_id)

    @staticmethod
    def _owner_condition(caller: Caller) -> str | None:
        """Writes for a caller are conditional on owning the job too (an admin's on nothing more)."""
        return None if caller.is_admin else caller.principal

    @staticmethod
    def _checked_id(job_id: str) -> str:
        if not _JOB_ID.match(job_id):
            raise _not_found(job_id)
        return job_id

    def _undo_submit(self, job: Job) -> None:
        try:
            self._repo.delete(job.job_id, expect=Expect.status(JobStatus.QUEUED, attempts=0))
        except ConditionFailedError:
            _log.warning("job %s left as is: a worker already picked it up", job.job_id)
        except DependencyUnavailableError:
            _log.exception("job %s is queued without a message; the sweeper will re-enqueue it", job.job_id)

    def _undo_retry(self, before: Job, after: Job) -> None:
        change = JobChange(
            status=before.status,
            at=self._clock.now(),
            attempts=before.attempts,
            finished_at=before.finished_at,
            result=before.result,
            retries=before.retries,
            progress=before.progress,
            cancel_requested=before.cancel_requested,
        )
        try:
            self._repo.update(after.job_id, change, expect=Expect.status(JobStatus.QUEUED, attempts=0))
        except (ConditionFailedError, DependencyUnavailableError):
            _log.exception("could not undo retry of job %s after the enqueue failed", after.job_id)

    @staticmethod
    def _conflict(job_id: str, current: Job | None, caller: Caller, action: str, allowed: str) -> Exception:
        if current is None or not caller.may_see(current.owner):
            return _not_found(job_id)
        return InvalidTransitionError(
            f"cannot {action} job {job_id}: it is {current.status.value}, not {allowed}",
            current_status=current.status.value,
        )


def _not_found(job_id: str) -> JobNotFoundError:
    """ "No such job", echoing no more than a short prefix of what the caller sent."""
    shown = job_id if len(job_id) <= 40 else job_id[:40] + "..."
    return JobNotFoundError(f"no job with id {shown!r}")
