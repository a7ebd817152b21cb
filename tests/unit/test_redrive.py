"""Redrive: each failed job's failure is redriven once, whatever messages of earlier failures the DLQ still holds."""

from __future__ import annotations

from collections.abc import Callable

from jobq.domain.identity import Caller
from jobq.domain.models import Job, JobError, JobMessage, JobStatus
from jobq.domain.redrive import Redriver
from jobq.domain.service import JobService
from tests.support.callers import ADMIN
from tests.support.fakes import FakeDeadLetterQueue, FakeQueue, InMemoryJobRepository

OPERATOR = Caller(ADMIN, is_admin=True)


def _failed(put_job: Callable[..., Job], *, retries: int) -> Job:
    error = JobError(type="RequestedFailureError", message="boom", retryable=False)
    return put_job(type="fail", status=JobStatus.FAILED, attempts=1, error=error, retries=retries)


def _letter(job: Job, generation: int) -> str:
    return JobMessage(job_id=job.job_id, type=job.type, generation=generation).model_dump_json()


def test_a_message_of_an_earlier_failure_is_dropped_and_the_latest_one_redriven(
    service: JobService, put_job: Callable[..., Job], queue: FakeQueue
) -> None:
    job = _failed(put_job, retries=1)  # failed, retried through the API, failed again
    dead_letters = FakeDeadLetterQueue()
    dead_letters.add(_letter(job, 0))  # the first failure's message, not yet removed by the sweeper
    dead_letters.add(_letter(job, 1))

    report = Redriver(service=service, dead_letters=dead_letters).redrive(OPERATOR)

    assert report.redriven == [job.job_id]
    assert [reason for key, reason in report.dropped] == [
        "stale: the job was retried since (message generation 0, job 1)"
    ]
    assert dead_letters.visible == []  # both deleted
    assert [message.job_id for message, _ in queue.sent] == [job.job_id]  # sent once


def test_a_job_failing_again_during_the_redrive_is_not_redriven_twice(
    service: JobService, put_job: Callable[..., Job], repo: InMemoryJobRepository
) -> None:
    job = _failed(put_job, retries=1)
    dead_letters = FakeDeadLetterQueue()
    dead_letters.add(_letter(job, 1))
    dead_letters.add(_letter(job, 1))  # the same failure twice (SQS delivers at least once)
    retry = service.retry

    def retry_then_fail_at_once(job_id: str, caller: Caller) -> Job:  # the worker is faster than the redrive
        retried = retry(job_id, caller)
        repo.jobs[job_id] = retried.model_copy(update={"status": JobStatus.FAILED})
        return retried

    service.retry = retry_then_fail_at_once  # type: ignore[method-assign]
    report = Redriver(service=service, dead_letters=dead_letters).redrive(OPERATOR)

    assert report.redriven == [job.job_id]
    assert [reason for _, reason in report.dropped] == [
        "stale: the job was retried since (message generation 1, job 2)"
    ]
    assert repo.jobs[job.job_id].retries == 2  # retried once, not twice
