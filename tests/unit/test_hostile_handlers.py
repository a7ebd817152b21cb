"""Hostile handlers and inputs: nothing a handler does escapes its attempt, records stay bounded, retries end."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from jobq import JobContext, JobType, RetryPolicy
from jobq.domain.budget import TimeBudget
from jobq.domain.decisions import Ack, Defer
from jobq.domain.errors import RetryLimitError
from jobq.domain.models import MAX_RECORD_BYTES, Job, JobMessage, JobStatus, record_bytes
from jobq.domain.runner import JobRunner
from jobq.domain.service import JobService
from tests.support.callers import CALLER
from tests.support.fakes import FakeClock, FakeQueue, InMemoryJobRepository

MakeRunner = Callable[..., JobRunner]
PutJob = Callable[..., Job]


class Anything(BaseModel):
    """Any payload."""


def kind(name: str, handler: Callable[[Anything, JobContext], Any]) -> JobType[Any]:
    return JobType(name, Anything, handler, timeout_seconds=5)


def budget() -> TimeBudget:
    return TimeBudget(lambda: 900.0)


def _exit(payload: Anything, ctx: JobContext) -> None:
    sys.exit(3)


def _interrupt(payload: Anything, ctx: JobContext) -> None:
    raise KeyboardInterrupt


def _long_error(payload: Anything, ctx: JobContext) -> None:
    raise ValueError("x" * 50_000)


def _huge_result(payload: Anything, ctx: JobContext) -> dict[str, str]:
    return {"blob": "y" * (MAX_RECORD_BYTES + 10)}


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [(_exit, "SystemExit", "the handler called exit(3)"), (_interrupt, "KeyboardInterrupt", "KeyboardInterrupt()")],
)
def test_a_handler_that_exits_fails_its_attempt_and_is_retried(
    make_runner: MakeRunner,
    put_job: PutJob,
    deliver: Callable[..., Any],
    repo: InMemoryJobRepository,
    handler: Callable[[Anything, JobContext], Any],
    error_type: str,
    message: str,
) -> None:
    runner = make_runner(job_types=[kind("hostile", handler)], retry_policy=RetryPolicy(base_seconds=0, max_seconds=1))
    job = put_job(type="hostile")
    decision = runner.handle(deliver(job), budget())
    assert isinstance(decision, Defer)
    after = repo.jobs[job.job_id]
    assert after.status is JobStatus.QUEUED
    assert after.error is not None
    assert (after.error.type, after.error.message, after.error.retryable) == (error_type, message, True)


def test_error_messages_are_cut_so_a_record_stays_small(
    make_runner: MakeRunner, put_job: PutJob, deliver: Callable[..., Any], repo: InMemoryJobRepository
) -> None:
    runner = make_runner(job_types=[kind("noisy", _long_error)])
    job = put_job(type="noisy", max_attempts=1)
    runner.handle(deliver(job), budget())
    after = repo.jobs[job.job_id]
    assert after.status is JobStatus.FAILED
    assert after.error is not None
    assert len(after.error.message) == 1000
    assert after.error.message.endswith("...")
    assert len(after.history[-1].message) == 1000


def test_history_keeps_the_last_attempts_and_counts_the_rest(
    make_runner: MakeRunner, put_job: PutJob, deliver: Callable[..., Any], repo: InMemoryJobRepository
) -> None:
    runner = make_runner(
        job_types=[kind("noisy", _long_error)], retry_policy=RetryPolicy(base_seconds=0, max_seconds=1, jitter=0)
    )
    runner._history_limit = 20
    job = put_job(type="noisy", max_attempts=200)
    for _ in range(182):  # the attempts after which an unbounded history reached DynamoDB's item limit
        runner.handle(deliver(job, receive_count=1), budget())
    after = repo.jobs[job.job_id]
    assert after.attempts == 182
    assert [entry.attempt for entry in after.history] == list(range(163, 183))
    assert after.history_dropped == 162
    assert record_bytes(after) < 40_000


def test_a_result_too_large_to_store_fails_the_job_and_stores_no_part_of_it(
    make_runner: MakeRunner,
    put_job: PutJob,
    deliver: Callable[..., Any],
    repo: InMemoryJobRepository,
    queue: FakeQueue,
) -> None:
    runner = make_runner(job_types=[kind("huge", _huge_result)])
    job = put_job(type="huge")
    decision = runner.handle(deliver(job), budget())
    after = repo.jobs[job.job_id]
    assert after.status is JobStatus.FAILED
    assert after.result is None
    assert after.error is not None
    assert after.error.type == "ResultTooLargeError"
    assert after.error.retryable is False
    assert str(MAX_RECORD_BYTES) in after.error.message
    assert decision == Ack("failed and sent to the dead-letter queue")
    assert queue.dead_letters == [JobMessage.of(after)]


def test_retries_through_the_api_are_bounded(
    service: JobService, put_job: PutJob, repo: InMemoryJobRepository, queue: FakeQueue, clock: FakeClock
) -> None:
    limited = JobService(
        repository=repo,
        queue=queue,
        registry=service._registry,
        clock=clock,
        events=service._events,
        max_attempts=3,
        max_retries=2,
    )
    job = put_job(status=JobStatus.FAILED, attempts=3)
    for generation in (1, 2):
        retried = limited.retry(job.job_id, CALLER)
        assert (retried.status, retried.retries) == (JobStatus.QUEUED, generation)
        assert queue.sent[-1] == (JobMessage(job_id=job.job_id, type="echo", generation=generation), 0)
        repo.jobs[job.job_id] = repo.jobs[job.job_id].model_copy(update={"status": JobStatus.FAILED})
    with pytest.raises(RetryLimitError) as refused:
        limited.retry(job.job_id, CALLER)
    assert refused.value.code == "retry_limit_reached"
    assert repo.jobs[job.job_id].status is JobStatus.FAILED
    assert len(queue.sent) == 2


def test_the_fake_refuses_an_oversized_write_whole_like_dynamodb(repo: InMemoryJobRepository, put_job: PutJob) -> None:
    from jobq.domain.ports import Expect, JobChange, RecordTooLargeError

    job = put_job()
    change = JobChange(status=JobStatus.SUCCEEDED, at=job.updated_at, result={"blob": "z" * MAX_RECORD_BYTES})
    with pytest.raises(RecordTooLargeError):
        repo.update(job.job_id, change, expect=Expect.status(JobStatus.QUEUED))
    assert repo.jobs[job.job_id] == job
