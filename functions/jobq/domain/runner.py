"""Claim, run, complete or fail one delivered job: the worker side of the state machine."""

from __future__ import annotations

import logging
import math
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from jobq.domain import claim_ahead
from jobq.domain.budget import MIN_SLOT_SECONDS, TimeBudget
from jobq.domain.decisions import Ack, Decision
from jobq.domain.errors import DependencyUnavailableError
from jobq.domain.execution import CallWithTimeLimit, execute
from jobq.domain.models import (
    DEFAULT_HISTORY_LIMIT,
    MAX_RECORD_BYTES,
    AttemptFailure,
    Delivery,
    Job,
    JobError,
    JobStatus,
    Progress,
    appended_history,
    record_bytes,
    worker_lost,
)
from jobq.domain.ports import (
    UNSET,
    Clock,
    ConditionFailedError,
    Expect,
    JobChange,
    JobEvents,
    JobQueue,
    JobRepository,
    RecordTooLargeError,
)
from jobq.domain.progress import MIN_WRITE_INTERVAL_SECONDS, AttemptProgress
from jobq.domain.redelivery import Redelivery
from jobq.domain.registry import JobRegistry, JobType
from jobq.domain.retry import RetryPolicy

_log = logging.getLogger(__name__)

OUTAGE_RETRY_SECONDS = 10


class JobRunner:
    """Runs delivered jobs. Each decision about a message is made here, in one place."""

    def __init__(
        self,
        *,
        repository: JobRepository,
        queue: JobQueue,
        registry: JobRegistry,
        clock: Clock,
        events: JobEvents,
        retry_policy: RetryPolicy,
        max_receive_count: int,
        call_with_time_limit: CallWithTimeLimit,
        lease_grace_seconds: float = 30.0,
        rng: random.Random | None = None,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
        progress_interval: float = MIN_WRITE_INTERVAL_SECONDS,
    ) -> None:
        self._repo = repository
        self._registry = registry
        self._clock = clock
        self._events = events
        self._retry_policy = retry_policy
        self._max_receive_count = max_receive_count
        self._redelivery = Redelivery(queue=queue, events=events, max_receive_count=max_receive_count)
        self._call_with_time_limit = call_with_time_limit
        self._lease_grace = lease_grace_seconds
        self._rng = rng or random.Random()
        self._history_limit = history_limit
        self._progress_interval = progress_interval

    def claim_ahead(self, deliveries: Sequence[Delivery], budget: TimeBudget) -> dict[str, Job]:
        """Claim a batch's jobs that were never attempted in one request, before the first of them runs; by
        job id (``claim_ahead.plan`` says which). A job not claimed here (a retry, not due, a duplicate,
        running elsewhere) is claimed alone when its turn comes, as is every job of a batch of one."""
        return claim_ahead.claim(
            self._repo,
            deliveries,
            self._registry,
            now=self._clock.now(),
            available_seconds=budget.remaining_seconds() - budget.reserve_seconds,
            lease_grace_seconds=self._lease_grace,
        )

    def handle(self, delivery: Delivery, budget: TimeBudget, claimed: Job | None = None) -> Decision:
        """Claim the delivered job and run it, or decide what becomes of a message it cannot run.

        ``claimed``: the job as ``claim_ahead`` claimed it for this delivery.
        """
        message = delivery.message
        with self._events.job_scope(message.job_id, message.type):
            job_type = self._registry.get(message.type)
            timeout = budget.slot(job_type.timeout_seconds if job_type else MIN_SLOT_SECONDS)
            if timeout is None:
                if claimed is not None and self._release(claimed):
                    return Ack("cancelled before it started")
                return self._redelivery.defer(delivery, 0, "not started: no time left in this invocation")
            try:
                if claimed is not None:
                    return self._start_claimed(claimed, delivery, timeout)
                return self._claim_and_run(delivery, timeout)
            except DependencyUnavailableError as exc:
                # DynamoDB or SQS is down (after boto3's retries): try this message again shortly. The
                # job's record decides what happens then; a lease taken before the outage expires.
                _log.warning("dependency unavailable: %s", exc.message)
                return self._redelivery.defer(delivery, OUTAGE_RETRY_SECONDS, "dependency unavailable")

    def _claim_and_run(self, delivery: Delivery, timeout: float) -> Decision:
        now = self._clock.now()
        try:
            job = self._repo.claim(
                delivery.message.job_id,
                now=now,
                lease_id=uuid.uuid4().hex,
                lease_expires_at=now + timedelta(seconds=timeout + self._lease_grace),
            )
        except ConditionFailedError as rejected:
            return self._not_claimed(delivery, rejected.current, now)
        return self._start(job, delivery, timeout)

    def _start_claimed(self, job: Job, delivery: Delivery, timeout: float) -> Decision:
        """Run a job ``claim_ahead`` claimed, renewed first if it waited its turn (``claim_ahead.renewal``)."""
        renewal = claim_ahead.renewal(job, self._clock.now(), timeout=timeout, lease_grace_seconds=self._lease_grace)
        if renewal is not None:
            try:
                job = self._repo.update(job.job_id, renewal, expect=Expect.holding(job))
            except ConditionFailedError as rejected:
                return self._lost_lease(job, rejected.current)
        return self._start(job, delivery, timeout)

    def _start(self, job: Job, delivery: Delivery, timeout: float) -> Decision:
        if job.cancel_requested:  # asked to stop while an earlier attempt ran, and not started since
            return self._finish_cancelled(job, self._clock.now(), None, "a caller cancelled the job while it ran")
        return self._run(job, self._registry.get(job.type), delivery, timeout)

    def _release(self, job: Job) -> bool:
        """Hand back a job claimed ahead that this invocation has no time left for: queued again, the attempt
        it never started uncounted, or cancelled if asked meanwhile (True then). Should that fail, its lease
        expires and the job is taken over."""
        try:
            return claim_ahead.release(self._repo, self._events, job, self._clock.now())
        except ConditionFailedError as rejected:
            self._lost_lease(job, rejected.current)
            return False

    def _not_claimed(self, delivery: Delivery, current: Job | None, now: datetime) -> Decision:
        if current is None:
            self._events.skipped(delivery.message.job_id, "no such job")
            return Ack("no such job")
        if current.status.terminal:
            self._events.skipped(current.job_id, f"duplicate delivery: job already {current.status.value}")
            return Ack(f"already {current.status.value}")
        if current.status is JobStatus.QUEUED and current.available_at > now:
            wait = _seconds_until(current.available_at, now)
            return self._redelivery.defer(delivery, wait, "not due yet")
        lease_held = current.lease_expires_at is not None and current.lease_expires_at >= now
        if current.status is JobStatus.RUNNING and lease_held:
            assert current.lease_expires_at is not None
            wait = _seconds_until(current.lease_expires_at, now) + 1
            if delivery.receive_count >= self._max_receive_count:
                self._events.skipped(current.job_id, "duplicate delivery: running elsewhere")
                return Ack("running elsewhere")
            return self._redelivery.defer(delivery, wait, "running elsewhere")
        # Not claimable although due: no attempt is left. For a running job, the last attempt was
        # lost mid-run (the worker crashed or timed out before its lease expired).
        if current.status is JobStatus.RUNNING:
            error = worker_lost(current.attempts, current.max_attempts, retryable=False)
            expect = Expect.holding(current)
        else:
            error = JobError(
                type="AttemptsExhaustedError",
                message=f"no attempts left ({current.attempts} of {current.max_attempts} used)",
                retryable=False,
            )
            expect = Expect.status(JobStatus.QUEUED, attempts=current.attempts)
        entry = _history_entry(current, error, now)
        failed = self._finish_failed(current, error, now, duration_ms=None, expect=expect, history=(entry,))
        if failed is None:
            return Ack("lost a race to fail the job")
        return self._redelivery.dead_letter(failed, delivery)

    def _run(self, job: Job, job_type: JobType[Any] | None, delivery: Delivery, timeout: float) -> Decision:
        self._events.started(job)
        started = time.monotonic()
        outcome: Any = None
        error: JobError | None = None
        progress = AttemptProgress(job, repository=self._repo, clock=self._clock, interval=self._progress_interval)
        if job_type is None:
            error = JobError(
                type="UnknownJobTypeError",
                message=f"unknown job type {job.type!r}; known types: {', '.join(self._registry.names)}",
                retryable=False,
            )
        else:
            outcome, error = execute(
                job,
                job_type,
                timeout=timeout,
                deadline=started + timeout,
                sink=progress,
                call_with_time_limit=self._call_with_time_limit,
            )
        duration_ms = (time.monotonic() - started) * 1000
        now = self._clock.now()
        if progress.lease_lost:
            return self._lost_lease(job, None)
        if progress.stop_reason is not None:
            return self._finish_cancelled(job, now, progress.pending, progress.stop_reason)
        if error is None:
            size = record_bytes(job.model_copy(update={"result": outcome, "progress": progress.pending}))
            if size <= MAX_RECORD_BYTES:
                try:
                    return self._succeed(job, outcome, now, duration_ms, progress.pending)
                except RecordTooLargeError:
                    pass  # the store's own count disagreed: the same failure
            error = JobError(
                type="ResultTooLargeError",
                message=f"the result is too large to store: the job would take {size} bytes, "
                f"over the {MAX_RECORD_BYTES}-byte record limit",
                retryable=False,
            )
        return self._fail_attempt(job, job_type, delivery, error, now, duration_ms)

    def _succeed(self, job: Job, result: Any, now: datetime, duration_ms: float, progress: Progress | None) -> Decision:
        change = JobChange(
            status=JobStatus.SUCCEEDED,
            at=now,
            result=result,
            error=None,
            finished_at=now,
            release_lease=True,
            progress=UNSET if progress is None else progress,
            **self._history(job, _lost_attempt(job)),
        )
        try:
            done = self._repo.update(job.job_id, change, expect=Expect.holding(job))
        except ConditionFailedError as rejected:
            return self._lost_lease(job, rejected.current)
        self._events.succeeded(done, duration_ms)
        return Ack("succeeded")

    def _finish_cancelled(self, job: Job, now: datetime, progress: Progress | None, reason: str) -> Decision:
        """End a running job ``cancelled``: it honoured a cancel request. No retry, no dead letter."""
        change = JobChange(
            status=JobStatus.CANCELLED,
            at=now,
            error=JobError(type="JobCancelled", message=f"{reason} (attempt {job.attempts})", retryable=False),
            finished_at=now,
            release_lease=True,
            progress=UNSET if progress is None else progress,
            **self._history(job, _lost_attempt(job)),
        )
        try:
            cancelled = self._repo.update(job.job_id, change, expect=Expect.holding(job))
        except ConditionFailedError as rejected:
            return self._lost_lease(job, rejected.current)
        self._events.cancelled(cancelled)
        return Ack("cancelled while running")

    def _fail_attempt(
        self,
        job: Job,
        job_type: JobType[Any] | None,
        delivery: Delivery,
        error: JobError,
        now: datetime,
        duration_ms: float,
    ) -> Decision:
        if not (error.retryable and job.attempts < job.max_attempts):
            history = (*_lost_attempt(job), _history_entry(job, error, now))
            failed = self._finish_failed(job, error, now, duration_ms, expect=Expect.holding(job), history=history)
            if failed is None:
                return Ack("lost the lease before failing the job")
            return self._redelivery.dead_letter(failed, delivery)
        policy = job_type.retry if job_type and job_type.retry else self._retry_policy
        delay = policy.delay_seconds(job.attempts, self._rng)
        change = JobChange(
            status=JobStatus.QUEUED,
            at=now,
            error=error,
            **self._history(job, (*_lost_attempt(job), _history_entry(job, error, now))),
            available_at=now + timedelta(seconds=delay),
            release_lease=True,
        )
        try:
            queued = self._write_failure(job, change, expect=Expect.holding(job))
        except ConditionFailedError as rejected:
            return self._lost_lease(job, rejected.current)
        self._events.retry_scheduled(queued, delay, duration_ms)
        return self._redelivery.defer(delivery, delay, "retry scheduled")

    def _finish_failed(
        self,
        job: Job,
        error: JobError,
        now: datetime,
        duration_ms: float | None,
        *,
        expect: Expect,
        history: tuple[AttemptFailure, ...],
    ) -> Job | None:
        """Write ``failed`` if ``expect`` holds, appending ``history``; None when it no longer held."""
        change = JobChange(
            status=JobStatus.FAILED,
            at=now,
            error=error,
            **self._history(job, history),
            finished_at=now,
            release_lease=True,
        )
        try:
            failed = self._write_failure(job, change, expect=expect)
        except ConditionFailedError as rejected:
            self._lost_lease(job, rejected.current)
            return None
        self._events.failed(failed, duration_ms)
        return failed

    def _write_failure(self, job: Job, change: JobChange, *, expect: Expect) -> Job:
        """Record a failed attempt; should the record still be too large, without its history (counted as
        dropped), so that a failure is never lost for want of room."""
        try:
            return self._repo.update(job.job_id, change, expect=expect)
        except RecordTooLargeError:
            if change.history is UNSET:
                raise
            before = job.history_dropped if change.history_dropped is UNSET else change.history_dropped
            _log.warning("job %s: record too large with its history; the history is dropped", job.job_id)
            trimmed = replace(change, history=(), history_dropped=before + len(change.history))
            return self._repo.update(job.job_id, trimmed, expect=expect)

    def _lost_lease(self, job: Job, current: Job | None) -> Decision:
        status = current.status.value if current else "absent"
        self._events.skipped(job.job_id, f"lease lost (job is {status}); this attempt's outcome is dropped")
        return Ack("lease lost")

    def _history(self, job: Job, entries: tuple[AttemptFailure, ...]) -> dict[str, Any]:
        """The JobChange fields that add ``entries`` to the job's history, kept to the last ``history_limit``."""
        if not entries:
            return {}
        history, dropped = appended_history(job, entries, self._history_limit)
        return {"history": history, "history_dropped": dropped}


def _history_entry(job: Job, error: JobError, now: datetime) -> AttemptFailure:
    return AttemptFailure.of(error, attempt=job.attempts, at=now)


def _lost_attempt(job: Job) -> tuple[AttemptFailure, ...]:
    """The attempt before this one, when this claim took the job over from a worker that was lost."""
    if job.claimed_from is not JobStatus.RUNNING or job.attempts < 2:
        return ()
    lost = job.attempts - 1
    error = worker_lost(lost, job.max_attempts, retryable=True)
    return (AttemptFailure.of(error, attempt=lost, at=job.started_at or job.updated_at),)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))
