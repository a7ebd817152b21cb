"""The sweeper function on moto: lost workers, lost messages, marks, and retries behind the marks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobq import wiring
from jobq.adapters.dynamodb import DynamoDBJobRepository, JobsTable
from jobq.adapters.dynamodb.sweep_index import MARKS_KEY
from jobq.domain.models import Job, JobStatus, new_job_id
from tests.support.stack import Stack


class Skew:
    """Moves the functions' clock (leases, due times) forward without waiting."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def skew(monkeypatch: pytest.MonkeyPatch) -> Skew:
    clock = Skew()
    monkeypatch.setattr(wiring.SystemClock, "now", lambda self: clock.now())
    return clock


def _table(stack: Stack) -> JobsTable:
    from jobq.adapters.aws import dynamodb_client

    return JobsTable(dynamodb_client(), stack.table_name, shards=16)


def _repository(stack: Stack) -> DynamoDBJobRepository:
    return DynamoDBJobRepository(_table(stack), ttl_days=30)


def _crash_after_claim(stack: Stack, job_id: str, lease_seconds: float = 60) -> Job:
    """A worker claims the job and dies before completing it (its message stays in flight)."""
    messages = stack.receive()
    assert [m.body for m in messages] == [f'{{"job_id":"{job_id}","type":"echo"}}']
    now = datetime.now(UTC)
    return _repository(stack).claim(
        job_id, now=now, lease_id="dead-worker", lease_expires_at=now + timedelta(seconds=lease_seconds)
    )


def test_a_lost_worker_is_recovered_once_its_lease_expires(aws_stack: Stack, skew: Skew) -> None:
    job = aws_stack.submit("echo", {"n": 1})
    _crash_after_claim(aws_stack, job["job_id"])

    assert aws_stack.sweep()["requeued"] == 0  # lease still held: the worker may yet finish
    skew.offset = timedelta(seconds=61)
    report = aws_stack.sweep()

    assert report["requeued"] == 1
    recovered = aws_stack.job(job["job_id"])
    assert recovered["status"] == "queued"
    assert recovered["error"]["type"] == "WorkerLostError"
    assert [h["attempt"] for h in recovered["history"]] == [1]
    aws_stack.drain()
    done = aws_stack.job(job["job_id"])
    assert done["status"] == "succeeded"
    assert done["attempts"] == 2


def test_a_lost_last_attempt_fails_the_job_into_the_dlq(make_stack: Callable[..., Stack], skew: Skew) -> None:
    stack = make_stack(MaxAttempts="1")
    job = stack.submit("echo", {})
    _crash_after_claim(stack, job["job_id"])
    skew.offset = timedelta(seconds=61)

    report = stack.sweep()

    assert report["failed"] == 1
    failed = stack.job(job["job_id"])
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "type": "WorkerLostError",
        "message": "attempt 1 of 1 did not finish: its lease expired (the worker crashed or timed out)",
        "retryable": False,
    }
    assert [m.body for m in stack.receive(queue_url=stack.dlq_url)] == [f'{{"job_id":"{job["job_id"]}","type":"echo"}}']


def test_a_job_written_without_its_message_is_resent_after_the_bound(aws_stack: Stack, skew: Skew) -> None:
    # The API died between the table write and the send: the job exists, no message does.
    now = datetime.now(UTC)
    job_id = new_job_id(now)
    _repository(aws_stack).insert(
        Job(
            job_id=job_id,
            type="echo",
            owner="arn:aws:iam::000000000000:user/alice",
            status=JobStatus.QUEUED,
            payload={"orphan": True},
            max_attempts=5,
            created_at=now,
            updated_at=now,
            available_at=now,
        )
    )
    bound = int(aws_stack.environment["JOBQ_STUCK_AFTER_SECONDS"])
    skew.offset = timedelta(seconds=bound - 5)
    assert aws_stack.sweep()["resent"] == 0
    skew.offset = timedelta(seconds=bound + 1)
    assert aws_stack.sweep()["resent"] == 1
    assert aws_stack.sweep()["resent"] == 0  # touched: not again before another bound passes

    aws_stack.drain()
    assert aws_stack.job(job_id)["status"] == "succeeded"


def test_marks_advance_past_terminal_jobs_so_later_sweeps_read_little(aws_stack: Stack, skew: Skew) -> None:
    jobs = [aws_stack.submit("echo", {"n": n}) for n in range(20)]
    aws_stack.drain()
    first = aws_stack.sweep()
    assert first["examined"] == 20
    assert first["active"] == 0
    assert first["marks_saved"] is True

    second = aws_stack.sweep()
    assert second["examined"] == 0
    marks = aws_stack.dynamodb.get_item(TableName=aws_stack.table_name, Key=MARKS_KEY)
    assert max(value["S"] for name, value in marks["Item"].items() if name.startswith("mark_")) == max(
        j["job_id"] for j in jobs
    )


def test_active_jobs_hold_their_shard_mark(aws_stack: Stack, skew: Skew) -> None:
    waiting = aws_stack.submit("echo", {"later": True}, delay_seconds=600)
    done = [aws_stack.submit("echo", {"n": n}) for n in range(5)]
    aws_stack.drain()
    assert aws_stack.sweep()["active"] == 1
    report = aws_stack.sweep()
    assert report["active"] == 1  # still read: it is not terminal
    assert report["examined"] >= 1
    assert aws_stack.job(waiting["job_id"])["status"] == "queued"
    assert all(aws_stack.job(j["job_id"])["status"] == "succeeded" for j in done)


def test_a_retried_job_behind_the_mark_is_watched_again(aws_stack: Stack, skew: Skew) -> None:
    job = aws_stack.submit("fail", {"retryable": False})
    aws_stack.drain()
    assert aws_stack.sweep()["examined"] == 1
    assert aws_stack.sweep()["examined"] == 0

    retried = aws_stack.api("POST", f"/jobs/{job['job_id']}/retry")
    assert retried.status == 202
    aws_stack.sqs.purge_queue(QueueUrl=aws_stack.queue_url)  # as if the API died before its send
    skew.offset = timedelta(seconds=int(aws_stack.environment["JOBQ_STUCK_AFTER_SECONDS"]) + 1)

    report: dict[str, Any] = aws_stack.sweep()
    assert report["resent"] == 1
    assert len(aws_stack.receive()) == 1


def test_a_retry_during_a_sweep_makes_that_sweep_lose_its_save(aws_stack: Stack) -> None:
    from jobq.adapters.dynamodb import DynamoDBSweepIndex

    index = DynamoDBSweepIndex(_table(aws_stack))
    job = aws_stack.submit("echo", {})
    aws_stack.drain()
    before = index.marks()
    index.lower_mark(job["job_id"])  # an API retry while a sweep is between reading and saving
    assert index.save_marks(before, {0: job["job_id"]}, {}) is False
    assert index.save_marks(index.marks(), {0: job["job_id"]}, {}) is True


def test_watch_lists_are_kept_with_the_marks_and_cleared(aws_stack: Stack) -> None:
    from jobq.adapters.dynamodb import DynamoDBSweepIndex

    index = DynamoDBSweepIndex(_table(aws_stack))
    ids = ("01JAAAAAAAAAAAAAAAAAAAAAA1", "01JAAAAAAAAAAAAAAAAAAAAAA2")
    assert index.save_marks(index.marks(), {0: ids[1]}, {0: ids, 3: ids[:1]}) is True
    saved = index.marks()
    assert (saved.positions, saved.watching) == ({0: ids[1]}, {0: ids, 3: ids[:1]})
    assert index.save_marks(saved, {0: ids[1]}, {3: ids[:1]}) is True  # shard 0's watched jobs all ended
    assert index.marks().watching == {3: ids[:1]}


def test_a_worker_taking_over_a_lost_attempt_records_it_in_history(aws_stack: Stack, skew: Skew) -> None:
    job = aws_stack.submit("echo", {"n": 2})
    (message,) = aws_stack.receive()
    now = datetime.now(UTC)
    _repository(aws_stack).claim(
        job["job_id"], now=now, lease_id="dead-worker", lease_expires_at=now + timedelta(seconds=60)
    )
    # The dead worker's message comes back (its visibility timeout ended) after the lease expired.
    aws_stack.sqs.change_message_visibility(
        QueueUrl=aws_stack.queue_url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=0
    )
    skew.offset = timedelta(seconds=61)
    assert aws_stack.worker(aws_stack.receive()) == {"batchItemFailures": []}

    done = aws_stack.job(job["job_id"])
    assert done["status"] == "succeeded"
    assert done["attempts"] == 2
    assert [(h["attempt"], h["type"], h["retryable"]) for h in done["history"]] == [(1, "WorkerLostError", True)]
