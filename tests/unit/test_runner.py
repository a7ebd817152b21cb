"""JobRunner (the worker side of the state machine) over the in-memory fakes."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from jobq import JobContext, JobType, RetryPolicy
from jobq.domain.budget import MIN_SLOT_SECONDS, TimeBudget
from jobq.domain.decisions import Ack, Decision, Defer
from jobq.domain.documents import SubmitJobRequest
from jobq.domain.models import AttemptFailure, Delivery, Job, JobMessage, JobStatus, new_job_id
from jobq.domain.ports import Expect, JobChange, RecordTooLargeError
from jobq.domain.runner import JobRunner
from jobq.domain.service import JobService
from jobq.jobs import build_registry
from jobq.timeouts import call_with_time_limit
from tests.support.callers import CALLER
from tests.support.fakes import FakeClock, FakeQueue, InMemoryJobRepository, RecordingEvents, run_inline

from .conftest import MAX_ATTEMPTS, MAX_RECEIVE_COUNT

MakeRunner = Callable[..., JobRunner]
PutJob = Callable[..., Job]
Deliver = Callable[..., Delivery]


class Anything(BaseModel):
    model_config = ConfigDict(extra="allow")


def custom(name: str, handler: Callable[[Anything, JobContext], Any], **options: Any) -> JobType[Anything]:
    return JobType(name, Anything, handler, **options)


def with_builtins(*job_types: JobType[Any]) -> list[JobType[Any]]:
    return [build_registry().require(name) for name in ("echo", "sleep", "fail")] + list(job_types)


def budget(seconds: float = 900.0) -> TimeBudget:
    return TimeBudget(lambda: seconds)


def first_delay(seed: int = 7, attempt: int = 1, policy: RetryPolicy | None = None) -> int:
    """The delay a runner seeded with ``seed`` picks for its first retry decision."""
    return (policy or RetryPolicy()).delay_seconds(attempt, random.Random(seed))


@pytest.fixture
def runner(make_runner: MakeRunner) -> JobRunner:
    return make_runner()


# -- success and duplicates -----------------------------------------------------------------------


def test_echo_succeeds_and_releases_the_lease(
    runner: JobRunner,
    service: JobService,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    clock: FakeClock,
    events: RecordingEvents,
) -> None:
    submitted = service.submit(SubmitJobRequest(type="echo", payload={"a": 1, "b": [True, None]}), CALLER)
    message, _ = queue.sent[0]
    clock.advance(3)
    decision = runner.handle(Delivery(message=message, receive_count=1), budget())
    assert decision == Ack("succeeded")
    job = repo.jobs[submitted.job_id]
    assert job.status is JobStatus.SUCCEEDED
    assert job.result == {"a": 1, "b": [True, None]}
    assert job.error is None
    assert job.history == ()
    assert job.attempts == 1
    assert job.lease_id is None
    assert job.lease_expires_at is None
    assert job.started_at == clock.now()
    assert job.finished_at == clock.now()
    assert job.updated_at == clock.now()
    assert queue.dead_letters == []
    assert events.names(job.job_id) == ["submitted", "started", "succeeded"]


def test_duplicate_delivery_of_a_succeeded_job_is_acked_and_not_rerun(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver, events: RecordingEvents
) -> None:
    calls: list[int] = []

    def count(payload: Anything, ctx: JobContext) -> dict[str, int]:
        calls.append(ctx.attempt)
        return {"n": len(calls)}

    runner = make_runner(job_types=[custom("count", count)])
    job = put_job(type="count")
    assert runner.handle(deliver(job), budget()) == Ack("succeeded")
    done = repo.jobs[job.job_id]
    decision = runner.handle(deliver(job, receive_count=2), budget())
    assert isinstance(decision, Ack)
    assert calls == [1]
    assert repo.jobs[job.job_id] == done
    assert done.attempts == 1
    assert done.result == {"n": 1}
    assert events.names(job.job_id)[-1] == "skipped"


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_message_for_a_terminal_job_is_acked_and_skipped(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
    status: JobStatus,
) -> None:
    job = put_job(status=status, attempts=1, finished_at=clock.now())
    decision = runner.handle(deliver(job), budget())
    assert decision == Ack(f"already {status.value}")
    assert repo.jobs[job.job_id] == job
    assert queue.sent == []
    assert queue.dead_letters == []


def test_concurrent_duplicate_delivery_while_running_is_released(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    nested: list[Any] = []
    runs: list[int] = []
    holder: dict[str, JobRunner] = {}

    def reenter(payload: Anything, ctx: JobContext) -> str:
        runs.append(ctx.attempt)
        # A second worker receives the same message while this attempt is running.
        nested.append(holder["runner"].handle(deliver(job, receive_count=2), budget()))
        return "done"

    holder["runner"] = make_runner(job_types=[custom("reenter", reenter)])
    job = put_job(type="reenter")
    assert holder["runner"].handle(deliver(job), budget()) == Ack("succeeded")
    assert runs == [1]
    assert len(nested) == 1
    assert isinstance(nested[0], Defer)
    assert nested[0].delay_seconds >= 1
    assert repo.jobs[job.job_id].status is JobStatus.SUCCEEDED
    assert repo.jobs[job.job_id].attempts == 1


def test_handler_gets_its_attempt_context(make_runner: MakeRunner, put_job: PutJob, deliver: Deliver) -> None:
    seen: list[JobContext] = []

    def look(payload: Anything, ctx: JobContext) -> None:
        seen.append(ctx)

    runner = make_runner(job_types=[custom("look", look, timeout_seconds=20)])
    job = put_job(type="look", attempts=1, max_attempts=4)
    runner.handle(deliver(job), budget())
    (ctx,) = seen
    assert (ctx.job_id, ctx.job_type, ctx.attempt, ctx.max_attempts) == (job.job_id, "look", 2, 4)
    assert 0 < ctx.remaining_seconds() <= 20


def test_pydantic_model_result_is_stored_as_json(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    class Out(BaseModel):
        name: str
        when: Any

    from datetime import UTC, datetime

    def model_result(payload: Anything, ctx: JobContext) -> Out:
        return Out(name="x", when=datetime(2026, 1, 1, tzinfo=UTC))

    runner = make_runner(job_types=[custom("model", model_result)])
    job = put_job(type="model")
    assert runner.handle(deliver(job), budget()) == Ack("succeeded")
    assert repo.jobs[job.job_id].result == {"name": "x", "when": "2026-01-01T00:00:00Z"}


# -- retryable failures ---------------------------------------------------------------------------


def test_retryable_failure_requeues_with_backoff(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
    events: RecordingEvents,
) -> None:
    job = put_job(type="fail", payload={"message": "try again"})
    decision = runner.handle(deliver(job), budget())
    assert isinstance(decision, Defer)
    assert 4 <= decision.delay_seconds <= 6  # 5 s +/- 20 %
    assert decision.delay_seconds == first_delay()
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.QUEUED
    assert stored.attempts == 1
    assert stored.error is not None
    assert (stored.error.type, stored.error.message, stored.error.retryable) == (
        "RequestedFailureError",
        "try again",
        True,
    )
    assert stored.history == (
        AttemptFailure(type="RequestedFailureError", message="try again", retryable=True, attempt=1, at=clock.now()),
    )
    assert stored.available_at == clock.now() + timedelta(seconds=decision.delay_seconds)
    assert stored.lease_id is None
    assert stored.lease_expires_at is None
    assert stored.finished_at is None
    assert stored.result is None
    assert queue.sent == []
    assert queue.dead_letters == []
    assert "retry_scheduled" in events.names(job.job_id)


def test_type_retry_policy_overrides_the_default(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver, clock: FakeClock
) -> None:
    def boom(payload: Anything, ctx: JobContext) -> None:
        raise RuntimeError("boom")

    policy = RetryPolicy(base_seconds=100, max_seconds=1000, jitter=0)
    runner = make_runner(job_types=[custom("boom", boom, retry=policy)])
    job = put_job(type="boom")
    assert runner.handle(deliver(job), budget()) == Defer(100, "retry scheduled")
    assert repo.jobs[job.job_id].available_at == clock.now() + timedelta(seconds=100)
    assert repo.jobs[job.job_id].error.type == "RuntimeError"  # type: ignore[union-attr]


def test_backoff_grows_with_each_attempt(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver, clock: FakeClock
) -> None:
    runner = make_runner(retry_policy=RetryPolicy(jitter=0), max_receive_count=10)
    job = put_job(type="fail", max_attempts=4)
    delays = []
    for receive in (1, 2, 3):
        decision = runner.handle(deliver(job, receive_count=receive), budget())
        assert isinstance(decision, Defer)
        delays.append(decision.delay_seconds)
        clock.advance(decision.delay_seconds)
    assert delays == [5, 10, 20]
    assert [entry.attempt for entry in repo.jobs[job.job_id].history] == [1, 2, 3]


def test_fail_once_then_succeeds_on_the_second_attempt(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
    events: RecordingEvents,
) -> None:
    job = put_job(type="fail", payload={"times": 1})
    first = runner.handle(deliver(job), budget())
    assert isinstance(first, Defer)
    clock.advance(first.delay_seconds)
    assert runner.handle(deliver(job, receive_count=2), budget()) == Ack("succeeded")
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.result == {"attempts": 2}
    assert stored.attempts == 2
    assert stored.error is None
    assert len(stored.history) == 1
    assert stored.history[0].attempt == 1
    assert events.names(job.job_id) == ["started", "retry_scheduled", "deferred", "started", "succeeded"]


def test_redelivery_before_the_backoff_is_over_is_released_for_the_rest(
    runner: JobRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver, clock: FakeClock
) -> None:
    job = put_job(type="fail", payload={"times": 1})
    first = runner.handle(deliver(job), budget())
    assert isinstance(first, Defer)
    assert first.delay_seconds >= 3
    clock.advance(2)
    second = runner.handle(deliver(job, receive_count=2), budget())
    assert second == Defer(first.delay_seconds - 2, "not due yet")
    assert repo.jobs[job.job_id].attempts == 1


def test_retry_on_the_last_receive_with_attempts_left_sends_a_fresh_message(
    runner: JobRunner, repo: InMemoryJobRepository, queue: FakeQueue, put_job: PutJob, deliver: Deliver
) -> None:
    # The job allows more attempts than the queue allows receives: a fresh message avoids the redrive.
    job = put_job(type="fail", max_attempts=MAX_RECEIVE_COUNT + 2)
    decision = runner.handle(deliver(job, receive_count=MAX_RECEIVE_COUNT), budget())
    assert isinstance(decision, Ack)
    assert repo.jobs[job.job_id].status is JobStatus.QUEUED
    ((message, delay),) = queue.sent
    assert message == JobMessage(job_id=job.job_id, type="fail")
    assert delay == first_delay()
    assert queue.dead_letters == []


# -- final failures -------------------------------------------------------------------------------


def test_last_attempt_on_the_last_receive_fails_and_leaves_the_message_to_the_redrive(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
    events: RecordingEvents,
) -> None:
    job = put_job(type="fail", attempts=MAX_ATTEMPTS - 1, max_attempts=MAX_ATTEMPTS, payload={"message": "last"})
    decision = runner.handle(deliver(job, receive_count=MAX_RECEIVE_COUNT), budget())
    assert isinstance(decision, Defer)
    assert decision.delay_seconds == 0
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.FAILED
    assert stored.attempts == MAX_ATTEMPTS
    assert stored.error is not None
    assert stored.error.message == "last"
    assert stored.history[-1].attempt == MAX_ATTEMPTS
    assert stored.finished_at == clock.now()
    assert stored.lease_id is None
    assert queue.dead_letters == []
    assert queue.sent == []
    assert ("dead_lettered", job.job_id) in [(name, jid) for name, jid, _ in events.events]
    routes = [details["route"] for name, _, details in events.events if name == "dead_lettered"]
    assert routes == ["redrive"]


def test_last_attempt_before_the_last_receive_fails_and_sends_to_the_dead_letter_queue(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    put_job: PutJob,
    deliver: Deliver,
    events: RecordingEvents,
) -> None:
    job = put_job(type="fail", attempts=MAX_ATTEMPTS - 1, max_attempts=MAX_ATTEMPTS)
    decision = runner.handle(deliver(job, receive_count=1), budget())
    assert isinstance(decision, Ack)
    assert repo.jobs[job.job_id].status is JobStatus.FAILED
    assert queue.dead_letters == [JobMessage(job_id=job.job_id, type="fail")]
    routes = [details["route"] for name, _, details in events.events if name == "dead_lettered"]
    assert routes == ["sent"]


def test_always_failing_job_fails_after_max_attempts(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
) -> None:
    job = put_job(type="fail")
    decisions = []
    for receive in range(1, MAX_RECEIVE_COUNT + 1):
        decision = runner.handle(deliver(job, receive_count=receive), budget())
        decisions.append(decision)
        clock.advance(3600)
    assert all(isinstance(decision, Defer) for decision in decisions)
    assert decisions[-1].delay_seconds == 0
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.FAILED
    assert stored.attempts == MAX_ATTEMPTS
    assert [entry.attempt for entry in stored.history] == [1, 2, 3]
    # A late duplicate does not run it again.
    assert isinstance(runner.handle(deliver(job, receive_count=1), budget()), Ack)
    assert repo.jobs[job.job_id].attempts == MAX_ATTEMPTS


def test_non_retryable_failure_fails_on_the_first_attempt(
    runner: JobRunner, repo: InMemoryJobRepository, queue: FakeQueue, put_job: PutJob, deliver: Deliver
) -> None:
    job = put_job(type="fail", payload={"retryable": False, "message": "no point"})
    decision = runner.handle(deliver(job), budget())
    assert isinstance(decision, Ack)
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.FAILED
    assert stored.attempts == 1
    assert stored.error is not None
    assert (stored.error.type, stored.error.message, stored.error.retryable) == (
        "NonRetryableError",
        "no point",
        False,
    )
    assert len(stored.history) == 1
    assert queue.dead_letters == [JobMessage(job_id=job.job_id, type="fail")]


@pytest.mark.parametrize("message_type", ["vanished", "echo"])
def test_unknown_job_type_fails_without_retry(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    put_job: PutJob,
    deliver: Deliver,
    message_type: str,
) -> None:
    job = put_job(type="vanished")
    decision = runner.handle(deliver(job, message_type=message_type), budget())
    assert isinstance(decision, Ack)
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert stored.error.type == "UnknownJobTypeError"
    assert stored.error.retryable is False
    assert ", ".join(build_registry().names) in stored.error.message  # the known types, yours included
    assert stored.attempts == 1
    assert len(queue.dead_letters) == 1


def test_unknown_type_in_the_message_only_runs_the_stored_type(
    runner: JobRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    job = put_job(type="echo", payload={"k": "v"})
    assert runner.handle(deliver(job, message_type="vanished"), budget()) == Ack("succeeded")
    assert repo.jobs[job.job_id].result == {"k": "v"}


def test_invalid_stored_payload_fails_without_retry(
    runner: JobRunner, repo: InMemoryJobRepository, queue: FakeQueue, put_job: PutJob, deliver: Deliver
) -> None:
    job = put_job(type="sleep", payload={"seconds": 999})
    decision = runner.handle(deliver(job), budget())
    assert isinstance(decision, Ack)
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert stored.error.type == "InvalidPayloadError"
    assert stored.error.retryable is False
    assert stored.attempts == 1
    assert queue.dead_letters == [JobMessage(job_id=job.job_id, type="sleep")]


@pytest.mark.parametrize(
    "result",
    [{"s": {1, 2}}, {"o": object()}, float("nan"), {"inf": float("inf")}, b"bytes"],
    ids=["set", "object", "nan", "inf", "bytes"],
)
def test_result_that_is_not_json_fails_without_retry(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver, result: Any
) -> None:
    runner = make_runner(job_types=[custom("weird", lambda payload, ctx: result)])
    job = put_job(type="weird")
    decision = runner.handle(deliver(job), budget())
    assert isinstance(decision, Ack)
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert stored.error.type == "ResultNotSerializableError"
    assert stored.error.retryable is False
    assert stored.result is None


def test_result_too_large_to_store_fails_without_retry(
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    clock: FakeClock,
    events: RecordingEvents,
    put_job: PutJob,
    deliver: Deliver,
) -> None:
    class SmallItems(InMemoryJobRepository):
        def update(self, job_id: str, change: JobChange, *, expect: Expect) -> Job:
            if change.status is JobStatus.SUCCEEDED:
                raise RecordTooLargeError("item size has exceeded the maximum allowed size")
            return super().update(job_id, change, expect=expect)

    small = SmallItems()
    runner = JobRunner(
        repository=small,
        queue=queue,
        registry=build_registry(),
        clock=clock,
        events=events,
        retry_policy=RetryPolicy(),
        max_receive_count=MAX_RECEIVE_COUNT,
        call_with_time_limit=run_inline,
        rng=random.Random(1),
    )
    job = put_job(payload={"big": "x"})
    small.jobs[job.job_id] = job
    assert isinstance(runner.handle(deliver(job), budget()), Ack)
    stored = small.jobs[job.job_id]
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert stored.error.type == "ResultTooLargeError"
    assert stored.error.retryable is False


def test_dead_letter_queue_down_still_fails_the_job(
    runner: JobRunner, repo: InMemoryJobRepository, queue: FakeQueue, put_job: PutJob, deliver: Deliver
) -> None:
    job = put_job(type="fail", payload={"retryable": False})
    queue.unavailable = True
    decision = runner.handle(deliver(job), budget())
    assert isinstance(decision, Ack | Defer)
    assert repo.jobs[job.job_id].status is JobStatus.FAILED


# -- messages the runner cannot claim -------------------------------------------------------------


def test_message_for_a_missing_job_is_acked(
    runner: JobRunner, repo: InMemoryJobRepository, queue: FakeQueue, clock: FakeClock, events: RecordingEvents
) -> None:
    missing = JobMessage(job_id=new_job_id(clock.now()), type="echo")
    assert runner.handle(Delivery(message=missing, receive_count=1), budget()) == Ack("no such job")
    assert repo.jobs == {}
    assert queue.sent == []
    assert queue.dead_letters == []
    assert events.names() == ["skipped"]


@pytest.mark.parametrize(("wait", "expected"), [(30, 30), (29.2, 30), (0.001, 1), (900, 900)])
def test_job_not_yet_due_is_released_for_the_remaining_seconds(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
    wait: float,
    expected: int,
) -> None:
    job = put_job(available_at=clock.now() + timedelta(seconds=wait))
    assert runner.handle(deliver(job), budget()) == Defer(expected, "not due yet")
    assert repo.jobs[job.job_id] == job


def test_job_not_yet_due_on_the_last_receive_gets_a_fresh_delayed_message(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
) -> None:
    job = put_job(available_at=clock.now() + timedelta(seconds=40))
    decision = runner.handle(deliver(job, receive_count=MAX_RECEIVE_COUNT), budget())
    assert isinstance(decision, Ack)
    assert queue.sent == [(JobMessage(job_id=job.job_id, type="echo"), 40)]
    assert repo.jobs[job.job_id] == job


def test_delayed_submission_runs_once_due(
    runner: JobRunner, service: JobService, repo: InMemoryJobRepository, queue: FakeQueue, clock: FakeClock
) -> None:
    job = service.submit(SubmitJobRequest(type="echo", payload={"x": 1}, delay_seconds=60), CALLER)
    message, delay = queue.sent[0]
    assert delay == 60
    assert runner.handle(Delivery(message=message, receive_count=1), budget()) == Defer(60, "not due yet")
    clock.advance(60)
    assert runner.handle(Delivery(message=message, receive_count=2), budget()) == Ack("succeeded")
    assert repo.jobs[job.job_id].status is JobStatus.SUCCEEDED


def test_job_running_elsewhere_with_a_held_lease_is_released(
    runner: JobRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver, clock: FakeClock
) -> None:
    job = put_job(
        status=JobStatus.RUNNING,
        attempts=1,
        started_at=clock.now(),
        lease_id="other-worker",
        lease_expires_at=clock.now() + timedelta(seconds=60),
    )
    decision = runner.handle(deliver(job), budget())
    assert isinstance(decision, Defer)
    assert 60 <= decision.delay_seconds <= 62
    assert repo.jobs[job.job_id] == job


def test_job_running_elsewhere_on_the_last_receive_is_acked_untouched(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
) -> None:
    job = put_job(
        status=JobStatus.RUNNING,
        attempts=1,
        lease_id="other-worker",
        lease_expires_at=clock.now() + timedelta(seconds=60),
    )
    assert runner.handle(deliver(job, receive_count=MAX_RECEIVE_COUNT), budget()) == Ack("running elsewhere")
    assert repo.jobs[job.job_id] == job
    assert queue.dead_letters == []


def test_running_job_with_expired_lease_and_attempts_left_is_reclaimed(
    runner: JobRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver, clock: FakeClock
) -> None:
    job = put_job(
        status=JobStatus.RUNNING,
        payload={"again": True},
        attempts=1,
        started_at=clock.now() - timedelta(minutes=10),
        lease_id="crashed-worker",
        lease_expires_at=clock.now() - timedelta(seconds=1),
    )
    assert runner.handle(deliver(job, receive_count=2), budget()) == Ack("succeeded")
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.attempts == 2
    assert stored.started_at == clock.now()
    assert stored.result == {"again": True}
    assert stored.lease_id is None


def test_running_job_with_expired_lease_and_no_attempts_left_fails_as_worker_lost(
    runner: JobRunner,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
) -> None:
    job = put_job(
        status=JobStatus.RUNNING,
        attempts=MAX_ATTEMPTS,
        lease_id="crashed-worker",
        lease_expires_at=clock.now() - timedelta(seconds=1),
    )
    decision = runner.handle(deliver(job), budget())
    assert isinstance(decision, Ack)
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert stored.error.type == "WorkerLostError"
    assert stored.error.retryable is False
    assert stored.attempts == MAX_ATTEMPTS
    assert stored.history[-1].attempt == MAX_ATTEMPTS
    assert stored.lease_id is None
    assert stored.finished_at == clock.now()
    assert queue.dead_letters == [JobMessage(job_id=job.job_id, type="echo")]


def test_queued_job_without_attempts_left_fails_as_exhausted(
    runner: JobRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    job = put_job(attempts=MAX_ATTEMPTS)
    decision = runner.handle(deliver(job, receive_count=MAX_RECEIVE_COUNT), budget())
    assert decision == Defer(0, "failed: the queue's redrive moves the message to the dead-letter queue")
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.FAILED
    assert stored.error is not None
    assert stored.error.type == "AttemptsExhaustedError"
    assert stored.attempts == MAX_ATTEMPTS


# -- lease lost -----------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["succeed", "raise", "raise-not-retryable"])
def test_outcome_after_the_lease_was_taken_over_is_dropped(
    make_runner: MakeRunner,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
    events: RecordingEvents,
    outcome: str,
) -> None:
    from jobq.domain.errors import NonRetryableError

    def slow(payload: Anything, ctx: JobContext) -> str:
        # This attempt outlives its lease; another worker reclaims the job meanwhile.
        clock.advance(3600)
        repo.claim(ctx.job_id, now=clock.now(), lease_id="thief", lease_expires_at=clock.now() + timedelta(seconds=60))
        if outcome == "raise":
            raise RuntimeError("late failure")
        if outcome == "raise-not-retryable":
            raise NonRetryableError("late failure")
        return "late result"

    runner = make_runner(job_types=[custom("slow", slow)])
    job = put_job(type="slow")
    decision = runner.handle(deliver(job), budget())
    assert isinstance(decision, Ack)
    assert "lease" in decision.reason
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.RUNNING
    assert stored.lease_id == "thief"
    assert stored.attempts == 2
    assert stored.result is None
    assert stored.error is None
    assert stored.history == ()
    assert queue.dead_letters == []
    reasons = [details.get("reason", "") for name, _, details in events.events if name == "skipped"]
    assert any("lease lost" in reason for reason in reasons)


# -- time budget ----------------------------------------------------------------------------------


class RecordingLimit:
    """A call_with_time_limit that records the limit it was given."""

    def __init__(self) -> None:
        self.limits: list[float] = []

    def __call__(self, func: Callable[[], Any], seconds: float) -> Any:
        self.limits.append(seconds)
        return func()


def test_time_budget_grants_whole_timeouts_that_fit() -> None:
    remaining = [100.0]
    budget_ = TimeBudget(lambda: remaining[0], reserve_seconds=2.0)
    assert budget_.slot(30) == 30
    assert budget_.slot(30) == 30
    remaining[0] = 20.0
    assert budget_.slot(30) is None
    assert budget_.slot(10) == 10
    assert budget_.started == 3


def test_time_budget_first_slot_gets_what_is_left() -> None:
    budget_ = TimeBudget(lambda: 10.0, reserve_seconds=2.0)
    assert budget_.slot(300) == 8.0
    assert budget_.slot(300) is None
    assert budget_.slot(8.0) == 8.0


def test_time_budget_with_almost_no_time_grants_nothing() -> None:
    budget_ = TimeBudget(lambda: 2.0 + MIN_SLOT_SECONDS / 2, reserve_seconds=2.0)
    assert budget_.slot(0.1) is None
    assert budget_.started == 0


def test_first_record_runs_with_the_remaining_time_and_later_ones_are_released_unclaimed(
    make_runner: MakeRunner,
    repo: InMemoryJobRepository,
    put_job: PutJob,
    deliver: Deliver,
    events: RecordingEvents,
) -> None:
    limit = RecordingLimit()
    runner = make_runner(call_with_time_limit=limit)
    shared = TimeBudget(lambda: 10.0)  # echo's timeout is 30 s; only 8 s are usable
    first, second, third = (put_job(payload={"n": n}) for n in range(3))
    assert runner.handle(deliver(first), shared) == Ack("succeeded")
    assert limit.limits == [8.0]
    for job in (second, third):
        decision = runner.handle(deliver(job), shared)
        assert decision == Defer(0, "not started: no time left in this invocation")
        assert repo.jobs[job.job_id] == job
        assert repo.jobs[job.job_id].attempts == 0
    assert limit.limits == [8.0]
    assert events.names(second.job_id) == ["deferred"]


def test_records_that_fit_all_run(make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob) -> None:
    limit = RecordingLimit()
    runner = make_runner(call_with_time_limit=limit)
    shared = budget(900)
    jobs = [put_job(payload={"n": n}) for n in range(5)]
    for job in jobs:
        assert runner.handle(Delivery(message=JobMessage(job_id=job.job_id, type="echo"), receive_count=1), shared) == (
            Ack("succeeded")
        )
    assert limit.limits == [30.0] * 5
    assert all(repo.jobs[job.job_id].status is JobStatus.SUCCEEDED for job in jobs)


def test_lease_covers_the_granted_slot_plus_grace(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver, clock: FakeClock
) -> None:
    leases: list[Any] = []

    def peek(payload: Anything, ctx: JobContext) -> None:
        leases.append(repo.jobs[ctx.job_id].lease_expires_at)

    runner = make_runner(job_types=[custom("peek", peek, timeout_seconds=45)])
    job = put_job(type="peek")
    runner.handle(deliver(job), budget())
    assert leases == [clock.now() + timedelta(seconds=45 + 30)]


# -- per-job timeouts -----------------------------------------------------------------------------


def test_handler_over_its_timeout_fails_the_attempt_with_a_retryable_timeout_error(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    def stuck(payload: Anything, ctx: JobContext) -> str:
        time.sleep(5)
        return "too late"

    runner = make_runner(
        job_types=[custom("stuck", stuck, timeout_seconds=0.2)], call_with_time_limit=call_with_time_limit
    )
    job = put_job(type="stuck")
    started = time.monotonic()
    decision = runner.handle(deliver(job), budget())
    elapsed = time.monotonic() - started
    assert elapsed < 2
    assert isinstance(decision, Defer)
    stored = repo.jobs[job.job_id]
    assert stored.status is JobStatus.QUEUED
    assert stored.error is not None
    assert stored.error.type == "JobTimeoutError"
    assert stored.error.retryable is True
    assert stored.history[0].type == "JobTimeoutError"
    assert stored.result is None


def test_timeout_never_exceeds_the_invocations_remaining_time(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    def stuck(payload: Anything, ctx: JobContext) -> str:
        time.sleep(5)
        return "too late"

    runner = make_runner(
        job_types=[custom("stuck", stuck, timeout_seconds=300)], call_with_time_limit=call_with_time_limit
    )
    job = put_job(type="stuck")
    started = time.monotonic()
    decision = runner.handle(deliver(job), TimeBudget(lambda: 2.6, reserve_seconds=2.0))
    assert time.monotonic() - started < 2
    assert isinstance(decision, Defer)
    assert repo.jobs[job.job_id].error.type == "JobTimeoutError"  # type: ignore[union-attr]


def test_sleep_job_within_its_timeout_succeeds_under_the_real_time_limit(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    runner = make_runner(call_with_time_limit=call_with_time_limit)
    job = put_job(type="sleep", payload={"seconds": 0.01})
    assert runner.handle(deliver(job), budget()) == Ack("succeeded")
    assert repo.jobs[job.job_id].result == {"slept": 0.01}


# -- observability --------------------------------------------------------------------------------


def test_every_event_is_raised_inside_its_jobs_scope(
    make_runner: MakeRunner,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
    events: RecordingEvents,
) -> None:
    runner = make_runner()
    jobs = [
        put_job(type="echo"),
        put_job(type="fail", payload={"times": 1}),
        put_job(type="fail", payload={"retryable": False}),
        put_job(type="fail", attempts=MAX_ATTEMPTS - 1),
        put_job(type="echo", available_at=clock.now() + timedelta(seconds=90)),
        put_job(type="vanished"),
        put_job(type="sleep", payload={"seconds": -1}),
        put_job(
            type="echo",
            status=JobStatus.RUNNING,
            attempts=1,
            lease_id="x",
            lease_expires_at=clock.now() + timedelta(seconds=5),
        ),
        put_job(
            type="echo",
            status=JobStatus.RUNNING,
            attempts=MAX_ATTEMPTS,
            lease_id="x",
            lease_expires_at=clock.now() - timedelta(seconds=5),
        ),
    ]
    missing = Delivery(message=JobMessage(job_id=new_job_id(clock.now()), type="echo"), receive_count=1)
    for receive in (1, MAX_RECEIVE_COUNT):
        for job in jobs:
            runner.handle(deliver(job, receive_count=receive), budget())
        runner.handle(missing, budget())
    runner.handle(deliver(jobs[0]), TimeBudget(lambda: 0.0))  # released for lack of time
    types = {job.job_id: job.type for job in jobs} | {missing.message.job_id: "echo"}
    names = {name for name, _, _ in events.events}
    assert {"started", "succeeded", "retry_scheduled", "failed", "dead_lettered", "skipped", "deferred"} <= names
    for name, job_id, details in events.events:
        assert details["scope"] == (job_id, types[job_id]), name
    assert events.scope is None


# -- a batch's first attempts claimed ahead ---------------------------------------------------------


def test_a_batchs_fresh_jobs_are_claimed_in_one_request_with_leases_for_their_turn(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver, clock: FakeClock
) -> None:
    runner = make_runner()
    jobs = [put_job(payload={"n": n}) for n in range(3)]
    echo_timeout = build_registry().require("echo").timeout_seconds
    claimed = runner.claim_ahead([deliver(job) for job in jobs], budget(900.0))
    assert repo.claim_requests == 1
    assert list(claimed) == [job.job_id for job in jobs]
    for turn, job in enumerate(jobs, start=1):
        stored = repo.jobs[job.job_id]
        assert stored == claimed[job.job_id]
        assert (stored.status, stored.attempts, stored.started_at) == (JobStatus.RUNNING, 1, clock.now())
        assert stored.lease_expires_at == clock.now() + timedelta(seconds=turn * echo_timeout + 30)
    writes = repo.writes
    for job in jobs:
        assert runner.handle(deliver(job), budget(900.0), claimed[job.job_id]) == Ack("succeeded")
        assert repo.jobs[job.job_id].attempts == 1
    assert repo.writes == writes + 3  # one completion each, no claim of their own


def test_claim_ahead_leaves_retries_duplicates_unknown_types_and_what_may_not_fit_to_a_claim_of_their_own(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    runner = make_runner()
    fresh, retry, later = put_job(), put_job(attempts=1), put_job()
    unknown = put_job(type="no-such-type")
    deliveries = [deliver(fresh), deliver(fresh), deliver(retry), deliver(unknown), deliver(later)]
    assert list(runner.claim_ahead(deliveries, budget(900.0))) == [fresh.job_id, later.job_id]
    assert repo.jobs[retry.job_id] == retry
    assert repo.jobs[unknown.job_id] == unknown
    echo_timeout = build_registry().require("echo").timeout_seconds
    tight = put_job(), put_job()
    # Room for one echo after the 2 s reserve: the second might not start, so it is not claimed ahead either.
    assert runner.claim_ahead([deliver(job) for job in tight], budget(echo_timeout * 1.5 + 2)) == {}
    assert all(repo.jobs[job.job_id].status is JobStatus.QUEUED for job in tight)
    requests = repo.claim_requests
    assert runner.claim_ahead([deliver(put_job())], budget(900.0)) == {}  # a batch of one: claimed in its turn
    assert repo.claim_requests == requests


@dataclass
class ClaimedAhead:
    """Two jobs claimed ahead by one invocation, whose remaining time the test sets."""

    runner: JobRunner
    first: Job
    second: Job
    claimed: dict[str, Job]
    remaining: float = 900.0

    def __post_init__(self) -> None:
        self.budget = TimeBudget(lambda: self.remaining)

    def run(self, delivery: Delivery) -> Decision:
        """Handle one of the two in the invocation that claimed them."""
        return self.runner.handle(delivery, self.budget, self.claimed[delivery.message.job_id])


@pytest.fixture
def claimed_ahead(make_runner: MakeRunner, put_job: PutJob, deliver: Deliver) -> ClaimedAhead:
    runner = make_runner()
    first, second = put_job(), put_job()
    ahead = ClaimedAhead(runner, first, second, {})
    ahead.claimed.update(runner.claim_ahead([deliver(first), deliver(second)], ahead.budget))
    return ahead


def test_a_job_claimed_ahead_that_gets_no_time_is_handed_back_with_its_attempt_uncounted(
    claimed_ahead: ClaimedAhead, repo: InMemoryJobRepository, deliver: Deliver, events: RecordingEvents
) -> None:
    ahead = claimed_ahead
    first, second = ahead.first, ahead.second
    assert ahead.run(deliver(first)) == Ack("succeeded")
    ahead.remaining = 2.1  # an earlier job took the invocation's time
    decision = ahead.run(deliver(second))
    assert decision == Defer(0, "not started: no time left in this invocation")
    back = repo.jobs[second.job_id]
    assert (back.status, back.attempts, back.lease_id, back.lease_expires_at) == (JobStatus.QUEUED, 0, None, None)
    assert events.names(second.job_id) == ["deferred"]
    assert ahead.runner.handle(deliver(second), budget(900.0)) == Ack("succeeded")  # the next delivery runs it
    assert repo.jobs[second.job_id].attempts == 1


def test_a_job_claimed_ahead_and_cancelled_while_it_waits_ends_cancelled_when_it_gets_no_time(
    claimed_ahead: ClaimedAhead, repo: InMemoryJobRepository, deliver: Deliver, events: RecordingEvents
) -> None:
    ahead = claimed_ahead
    first, second = ahead.first, ahead.second
    # The caller cancels the second while the first runs: it is running (claimed), so it is asked to stop.
    asked = repo.update(
        second.job_id,
        JobChange(status=JobStatus.RUNNING, at=second.updated_at, cancel_requested=True),
        expect=Expect.status(JobStatus.RUNNING),
    )
    assert asked.cancel_requested
    assert ahead.run(deliver(first)) == Ack("succeeded")
    ahead.remaining = 2.1  # no time left for the second: it never starts
    assert ahead.run(deliver(second)) == Ack("cancelled before it started")
    ended = repo.jobs[second.job_id]
    assert (ended.status, ended.attempts, ended.lease_id, ended.error) == (JobStatus.CANCELLED, 0, None, None)
    assert ended.finished_at is not None
    assert events.names(second.job_id) == ["cancelled"]


def test_claim_ahead_with_the_table_down_leaves_every_job_to_its_turn(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    runner = make_runner()
    jobs = [put_job(), put_job()]
    repo.unavailable = True
    assert runner.claim_ahead([deliver(job) for job in jobs], budget(900.0)) == {}
    repo.unavailable = False
    assert all(repo.jobs[job.job_id] == job for job in jobs)


def test_a_job_claimed_ahead_that_waited_is_renewed_and_sees_what_happened_meanwhile(
    make_runner: MakeRunner,
    repo: InMemoryJobRepository,
    put_job: PutJob,
    deliver: Deliver,
    clock: FakeClock,
    events: RecordingEvents,
) -> None:
    ran: list[str] = []
    slow = custom("slow", lambda payload, ctx: ran.append(ctx.job_id) or {"ok": True}, timeout_seconds=60)
    runner = make_runner(job_types=with_builtins(slow))
    first, renewed, cancelled, taken = (put_job(type="slow") for _ in range(4))
    claimed = runner.claim_ahead([deliver(job) for job in (first, renewed, cancelled, taken)], budget())
    claimed_at = clock.now()
    assert runner.handle(deliver(first), budget(), claimed[first.job_id]) == Ack("succeeded")
    clock.advance(45)  # the first job took its time
    # Meanwhile a caller asked to cancel one job, and another's lease went to someone else.
    repo.update(
        cancelled.job_id,
        JobChange(status=JobStatus.RUNNING, at=clock.now(), cancel_requested=True),
        expect=Expect.status(JobStatus.RUNNING),
    )
    repo.jobs[taken.job_id] = repo.jobs[taken.job_id].model_copy(update={"lease_id": "someone-else"})

    assert runner.handle(deliver(renewed), budget(), claimed[renewed.job_id]) == Ack("succeeded")
    done = repo.jobs[renewed.job_id]
    assert done.started_at == clock.now() != claimed_at  # when it started, not when it was claimed
    assert runner.handle(deliver(cancelled), budget(), claimed[cancelled.job_id]) == Ack("cancelled while running")
    assert repo.jobs[cancelled.job_id].status is JobStatus.CANCELLED
    assert runner.handle(deliver(taken), budget(), claimed[taken.job_id]) == Ack("lease lost")
    assert repo.jobs[taken.job_id].lease_id == "someone-else"
    assert ran == [first.job_id, renewed.job_id]  # neither the cancelled job nor the taken one ran
    assert "started" not in events.names(taken.job_id)


def test_a_job_claimed_ahead_that_did_not_wait_runs_without_another_write(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver, clock: FakeClock
) -> None:
    runner = make_runner()
    first, second = put_job(), put_job()
    claimed = runner.claim_ahead([deliver(first), deliver(second)], budget())
    clock.advance(0.5)
    writes = repo.writes
    assert runner.handle(deliver(second), budget(), claimed[second.job_id]) == Ack("succeeded")
    assert repo.writes == writes + 1  # the completion only
    assert repo.jobs[second.job_id].started_at == claimed[second.job_id].started_at
