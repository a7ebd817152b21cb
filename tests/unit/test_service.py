"""JobService (the API's use cases) over the in-memory fakes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel

from jobq import JobContext, JobRegistry, JobType
from jobq.domain.documents import SubmitJobRequest
from jobq.domain.errors import (
    DependencyUnavailableError,
    InvalidPayloadError,
    InvalidTransitionError,
    JobNotFoundError,
    UnknownJobTypeError,
)
from jobq.domain.models import AttemptFailure, Job, JobError, JobMessage, JobStatus, ListQuery, new_job_id
from jobq.domain.service import JobService
from jobq.jobs import build_registry
from tests.support.callers import CALLER
from tests.support.fakes import FakeClock, FakeQueue, InMemoryJobRepository, RecordingEvents

from .conftest import MAX_ATTEMPTS


class Anything(BaseModel):
    pass


def noop(payload: Anything, ctx: JobContext) -> None:
    return None


def service_with(
    job_types: list[JobType[Any]],
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    clock: FakeClock,
    events: RecordingEvents,
    max_attempts: int = MAX_ATTEMPTS,
) -> JobService:
    return JobService(
        repository=repo,
        queue=queue,
        registry=JobRegistry(job_types),
        clock=clock,
        events=events,
        max_attempts=max_attempts,
    )


# -- submit -----------------------------------------------------------------------------------------


def test_submit_stores_a_queued_job_and_sends_its_message(
    service: JobService, repo: InMemoryJobRepository, queue: FakeQueue, clock: FakeClock, events: RecordingEvents
) -> None:
    job = service.submit(SubmitJobRequest(type="echo", payload={"hello": "world"}), CALLER)
    assert repo.jobs[job.job_id] == job
    assert job.status is JobStatus.QUEUED
    assert job.type == "echo"
    assert job.payload == {"hello": "world"}
    assert job.attempts == 0
    assert job.max_attempts == MAX_ATTEMPTS
    assert job.result is None
    assert job.error is None
    assert job.history == ()
    assert job.created_at == job.updated_at == job.available_at == clock.now()
    assert job.started_at is None
    assert job.finished_at is None
    assert job.status_url == f"/jobs/{job.job_id}"
    assert queue.sent == [(JobMessage(job_id=job.job_id, type="echo"), 0)]
    assert events.names() == ["submitted"]


def test_submit_with_delay_sets_available_at_and_message_delay(
    service: JobService, queue: FakeQueue, clock: FakeClock
) -> None:
    job = service.submit(SubmitJobRequest(type="echo", delay_seconds=120), CALLER)
    assert job.available_at == clock.now() + timedelta(seconds=120)
    assert queue.sent == [(JobMessage(job_id=job.job_id, type="echo"), 120)]


def test_submitted_job_ids_are_unique_and_time_ordered(service: JobService, clock: FakeClock) -> None:
    first = service.submit(SubmitJobRequest(type="echo"), CALLER)
    clock.advance(0.002)
    second = service.submit(SubmitJobRequest(type="echo"), CALLER)
    assert first.job_id != second.job_id
    assert first.job_id < second.job_id


@pytest.mark.parametrize(
    ("type_max", "configured", "expected"),
    [(None, 3, 3), (2, 3, 2), (10, 3, 3), (1, 5, 1), (5, 5, 5)],
)
def test_max_attempts_is_the_smaller_of_type_and_configuration(
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    clock: FakeClock,
    events: RecordingEvents,
    type_max: int | None,
    configured: int,
    expected: int,
) -> None:
    service = service_with(
        [JobType("custom", Anything, noop, max_attempts=type_max)], repo, queue, clock, events, configured
    )
    job = service.submit(SubmitJobRequest(type="custom"), CALLER)
    assert job.max_attempts == expected
    assert repo.jobs[job.job_id].max_attempts == expected


def test_submit_unknown_type_stores_and_sends_nothing(
    service: JobService, repo: InMemoryJobRepository, queue: FakeQueue, events: RecordingEvents
) -> None:
    with pytest.raises(UnknownJobTypeError) as caught:
        service.submit(SubmitJobRequest(type="nope"), CALLER)
    assert caught.value.details == {"known_types": build_registry().names}  # sorted; yours included
    assert {"echo", "fail", "sleep"} <= set(caught.value.details["known_types"])
    assert repo.jobs == {}
    assert queue.sent == []
    assert events.events == []


def test_submit_invalid_payload_stores_and_sends_nothing(
    service: JobService, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        service.submit(SubmitJobRequest(type="sleep", payload={"seconds": 61}), CALLER)
    assert caught.value.details[0]["loc"] == ["seconds"]
    assert repo.jobs == {}
    assert queue.sent == []


def test_submit_with_queue_down_raises_and_leaves_no_job(
    service: JobService, repo: InMemoryJobRepository, queue: FakeQueue, events: RecordingEvents
) -> None:
    queue.unavailable = True
    with pytest.raises(DependencyUnavailableError):
        service.submit(SubmitJobRequest(type="echo"), CALLER)
    assert repo.jobs == {}
    assert not [job for job in repo.jobs.values() if job.status is JobStatus.QUEUED]
    assert "submitted" not in events.names()


def test_submit_with_table_down_raises_and_sends_nothing(
    service: JobService, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    repo.unavailable = True
    with pytest.raises(DependencyUnavailableError):
        service.submit(SubmitJobRequest(type="echo"), CALLER)
    assert queue.sent == []
    assert repo.jobs == {}


# -- get / list -------------------------------------------------------------------------------------


def test_get_returns_the_stored_job(service: JobService) -> None:
    job = service.submit(SubmitJobRequest(type="echo", payload={"a": 1}), CALLER)
    assert service.get(job.job_id, CALLER) == job


def test_get_unknown_id_raises_not_found(service: JobService, clock: FakeClock) -> None:
    with pytest.raises(JobNotFoundError):
        service.get(new_job_id(clock.now()), CALLER)


@pytest.mark.parametrize(
    "job_id",
    ["", "bad", "01kdwpvng0ye3jfy1t7ht7ykrz", "01KDWPVNG0YE3JFY1T7HT7YKR", "01KDWPVNG0YE3JFY1T7HT7YKRZZ", "I" * 26],
)
def test_get_malformed_id_raises_not_found(service: JobService, repo: InMemoryJobRepository, job_id: str) -> None:
    with pytest.raises(JobNotFoundError):
        service.get(job_id, CALLER)


def test_list_is_newest_first(service: JobService, clock: FakeClock) -> None:
    ids = []
    for _ in range(4):
        ids.append(service.submit(SubmitJobRequest(type="echo"), CALLER).job_id)
        clock.advance(1)
    page = service.list(ListQuery(), CALLER)
    assert [job.job_id for job in page.items] == list(reversed(ids))
    assert page.next_cursor is None


# -- cancel -----------------------------------------------------------------------------------------


def test_cancel_queued_job(service: JobService, repo: InMemoryJobRepository, clock: FakeClock) -> None:
    job = service.submit(SubmitJobRequest(type="echo"), CALLER)
    clock.advance(5)
    cancelled = service.cancel(job.job_id, CALLER)
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.finished_at == clock.now()
    assert cancelled.updated_at == clock.now()
    assert repo.jobs[job.job_id] == cancelled


def test_cancel_of_a_running_job_is_a_request_it_honours_later(
    service: JobService, repo: InMemoryJobRepository, put_job: Callable[..., Job], clock: FakeClock
) -> None:
    job = put_job(status=JobStatus.RUNNING, lease_id="lease-1", attempts=1)
    clock.advance(3)
    requested = service.cancel(job.job_id, CALLER)
    assert (requested.status, requested.cancel_requested, requested.lease_id) == (JobStatus.RUNNING, True, "lease-1")
    assert requested.finished_at is None
    assert repo.jobs[job.job_id] == requested
    writes = repo.writes
    assert service.cancel(job.job_id, CALLER) == requested  # asked already: nothing written again
    assert repo.writes == writes


def test_cancel_of_another_callers_running_job_is_not_found(
    service: JobService, repo: InMemoryJobRepository, put_job: Callable[..., Job]
) -> None:
    job = put_job(status=JobStatus.RUNNING, lease_id="lease-1", owner="arn:aws:iam::123456789012:user/mallory")
    with pytest.raises(JobNotFoundError):
        service.cancel(job.job_id, CALLER)
    assert repo.jobs[job.job_id] == job


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_cancel_from_other_statuses_is_a_conflict(
    service: JobService, repo: InMemoryJobRepository, put_job: Callable[..., Job], status: JobStatus
) -> None:
    job = put_job(status=status)
    with pytest.raises(InvalidTransitionError) as caught:
        service.cancel(job.job_id, CALLER)
    assert caught.value.code == "invalid_state"
    assert caught.value.current_status == status.value
    assert caught.value.details == {"status": status.value}
    assert repo.jobs[job.job_id] == job


def test_cancel_unknown_and_malformed_ids_are_not_found(service: JobService, clock: FakeClock) -> None:
    with pytest.raises(JobNotFoundError):
        service.cancel(new_job_id(clock.now()), CALLER)
    with pytest.raises(JobNotFoundError):
        service.cancel("not-an-id", CALLER)


# -- retry ------------------------------------------------------------------------------------------


def _failed_job(put_job: Callable[..., Job], clock: FakeClock, status: JobStatus = JobStatus.FAILED) -> Job:
    error = JobError(type="RequestedFailureError", message="boom", retryable=True)
    history = tuple(
        AttemptFailure(type=error.type, message=error.message, retryable=True, attempt=n, at=clock.now())
        for n in (1, 2, 3)
    )
    return put_job(
        type="fail",
        status=status,
        attempts=3,
        error=error,
        history=history,
        started_at=clock.now(),
        finished_at=clock.now(),
    )


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_retry_requeues_with_fresh_attempts_and_keeps_history(
    service: JobService,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    clock: FakeClock,
    events: RecordingEvents,
    put_job: Callable[..., Job],
    status: JobStatus,
) -> None:
    before = _failed_job(put_job, clock, status)
    clock.advance(60)
    job = service.retry(before.job_id, CALLER)
    assert job.status is JobStatus.QUEUED
    assert job.attempts == 0
    assert job.history == before.history
    assert job.finished_at is None
    assert job.result is None
    assert job.available_at == clock.now()
    assert job.updated_at == clock.now()
    assert repo.jobs[job.job_id] == job
    assert queue.sent == [(JobMessage(job_id=job.job_id, type="fail", generation=1), 0)]  # its first retry
    assert events.names() == ["requeued"]


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED])
def test_retry_from_other_statuses_is_a_conflict(
    service: JobService, repo: InMemoryJobRepository, queue: FakeQueue, put_job: Callable[..., Job], status: JobStatus
) -> None:
    job = put_job(status=status)
    with pytest.raises(InvalidTransitionError) as caught:
        service.retry(job.job_id, CALLER)
    assert caught.value.current_status == status.value
    assert repo.jobs[job.job_id] == job
    assert queue.sent == []


def test_retry_unknown_and_malformed_ids_are_not_found(service: JobService, clock: FakeClock) -> None:
    with pytest.raises(JobNotFoundError):
        service.retry(new_job_id(clock.now()), CALLER)
    with pytest.raises(JobNotFoundError):
        service.retry("01", CALLER)


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_retry_with_queue_down_restores_the_previous_state(
    service: JobService,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    clock: FakeClock,
    put_job: Callable[..., Job],
    status: JobStatus,
) -> None:
    before = _failed_job(put_job, clock, status)
    queue.unavailable = True
    clock.advance(10)
    with pytest.raises(DependencyUnavailableError):
        service.retry(before.job_id, CALLER)
    after = repo.jobs[before.job_id]
    assert after.status is status
    assert after.attempts == before.attempts
    assert after.finished_at == before.finished_at
    assert after.result == before.result
    assert after.error == before.error
    assert after.history == before.history
    assert queue.sent == []


def test_retried_job_can_be_retried_again_after_failing(
    service: JobService, repo: InMemoryJobRepository, queue: FakeQueue, clock: FakeClock, put_job: Callable[..., Job]
) -> None:
    job = _failed_job(put_job, clock)
    service.retry(job.job_id, CALLER)
    with pytest.raises(InvalidTransitionError):
        service.retry(job.job_id, CALLER)
    assert len(queue.sent) == 1
