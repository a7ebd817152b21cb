"""The Sweeper over the in-memory fakes: lost leases, lost messages, and the per-shard marks."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest

from jobq import JobRegistry
from jobq.adapters.dynamodb import list_shard
from jobq.domain.errors import DependencyUnavailableError
from jobq.domain.models import AttemptFailure, Job, JobError, JobMessage, JobStatus, new_job_id
from jobq.domain.ports import Expect, JobChange
from jobq.domain.service import JobService
from jobq.domain.sweeper import Sweeper
from tests.support.callers import CALLER
from tests.support.fakes import FakeClock, FakeQueue, InMemoryJobRepository, InMemorySweepIndex, RecordingEvents

from .conftest import MAX_ATTEMPTS

SHARDS = 4
STUCK_AFTER = 300.0
LEASE = 60.0
SWEEP_EVERY = 60.0


class RacingRepository(InMemoryJobRepository):
    """Runs ``before_update`` once, just before the next update: another writer getting in first."""

    def __init__(self) -> None:
        super().__init__()
        self.before_update: Callable[[str], None] | None = None

    def update(self, job_id: str, change: JobChange, *, expect: Expect) -> Job:
        hook, self.before_update = self.before_update, None
        if hook is not None:
            hook(job_id)
        return super().update(job_id, change, expect=expect)


class RacingIndex(InMemorySweepIndex):
    """Runs ``after_read`` once, right after the sweep read a shard's jobs: a change it cannot see."""

    def __init__(self, repository: InMemoryJobRepository, shards: int) -> None:
        super().__init__(repository, shards)
        self.after_read: Callable[[], None] | None = None

    def get_many(self, job_ids: Sequence[str]) -> dict[str, Job]:
        found = super().get_many(job_ids)
        hook, self.after_read = self.after_read, None
        if hook is not None:
            hook()
        return found


@pytest.fixture
def repo() -> RacingRepository:
    return RacingRepository()


@pytest.fixture
def index(repo: RacingRepository) -> RacingIndex:
    return RacingIndex(repo, SHARDS)


def make_sweeper(
    repo: InMemoryJobRepository,
    index: InMemorySweepIndex,
    queue: FakeQueue,
    clock: FakeClock,
    events: RecordingEvents,
    shard_limit: int = 1000,
) -> Sweeper:
    return Sweeper(
        repository=repo,
        index=index,
        queue=queue,
        clock=clock,
        events=events,
        stuck_after_seconds=STUCK_AFTER,
        shard_limit=shard_limit,
    )


@pytest.fixture
def sweeper(
    repo: RacingRepository, index: RacingIndex, queue: FakeQueue, clock: FakeClock, events: RecordingEvents
) -> Sweeper:
    return make_sweeper(repo, index, queue, clock, events)


@pytest.fixture
def put(put_job: Callable[..., Job], clock: FakeClock) -> Callable[..., Job]:
    """Store a job in a chosen listing shard; ids (and so scan order) follow the order of the calls."""
    offsets = itertools.count(1)

    def put_in(shard: int = 0, **fields: Any) -> Job:
        while True:
            job_id = new_job_id(clock.now() + timedelta(milliseconds=next(offsets)))
            if int(list_shard(job_id, SHARDS)) == shard:
                return put_job(job_id=job_id, **fields)

    return put_in


def running(put: Callable[..., Job], clock: FakeClock, *, attempts: int = 1, shard: int = 0, **fields: Any) -> Job:
    """A job a worker claimed just now, holding a lease of LEASE seconds."""
    now = clock.now()
    return put(
        shard=shard,
        status=JobStatus.RUNNING,
        attempts=attempts,
        started_at=now,
        lease_id=f"lease-{attempts}",
        lease_expires_at=now + timedelta(seconds=LEASE),
        **fields,
    )


def done(put: Callable[..., Job], clock: FakeClock, status: JobStatus = JobStatus.SUCCEEDED, shard: int = 0) -> Job:
    return put(shard=shard, status=status, attempts=1, finished_at=clock.now())


def message(job: Job) -> JobMessage:
    return JobMessage.of(job)


def sweep_until(sweeper: Sweeper, clock: FakeClock, condition: Callable[[], bool], within: float) -> float:
    """Sweep every SWEEP_EVERY seconds until ``condition`` holds; the seconds it took (fails past ``within``)."""
    waited = 0.0
    while not condition():
        assert waited < within, f"still not done after sweeping for {waited:g} s"
        clock.advance(SWEEP_EVERY)
        waited += SWEEP_EVERY
        sweeper.run()
    return waited


# -- running jobs ------------------------------------------------------------------------------


def test_running_job_with_a_held_lease_is_left_alone(
    sweeper: Sweeper, repo: RacingRepository, queue: FakeQueue, clock: FakeClock, events: RecordingEvents, put: Any
) -> None:
    # Given a running job whose lease has 1 ms left, long after it was queued
    job = running(put, clock)
    clock.advance(LEASE - 0.001)

    # When the sweeper runs
    report = sweeper.run()

    # Then it is untouched and counted as active
    assert repo.jobs[job.job_id] == job
    assert repo.writes == 0
    assert queue.sent == []
    assert queue.dead_letters == []
    assert events.events == []
    assert (report.examined, report.active, report.requeued, report.failed, report.errors) == (1, 1, 0, 0, 0)


def test_running_job_with_an_expired_lease_and_attempts_left_is_queued_again(
    sweeper: Sweeper, repo: RacingRepository, queue: FakeQueue, clock: FakeClock, events: RecordingEvents, put: Any
) -> None:
    # Given a job on attempt 2 of 3 (one failure already in its history) whose worker vanished
    earlier = AttemptFailure(type="ValueError", message="boom", retryable=True, attempt=1, at=clock.now())
    job = running(
        put, clock, attempts=2, history=(earlier,), error=JobError(type="ValueError", message="boom", retryable=True)
    )
    clock.advance(LEASE + 1)
    now = clock.now()

    # When the sweeper runs
    report = sweeper.run()

    # Then the job is queued, due now, without a lease, with a retryable WorkerLostError recorded
    after = repo.jobs[job.job_id]
    assert after.status is JobStatus.QUEUED
    assert after.available_at == now
    assert after.updated_at == now
    assert after.lease_id is None
    assert after.lease_expires_at is None
    assert after.finished_at is None
    assert after.attempts == 2  # the lost attempt counts; the next claim makes it 3
    assert after.error is not None
    assert (after.error.type, after.error.retryable) == ("WorkerLostError", True)
    assert after.history[0] == earlier
    assert len(after.history) == 2
    lost = after.history[1]
    assert (lost.type, lost.retryable, lost.attempt, lost.at) == ("WorkerLostError", True, 2, now)
    assert lost.message == after.error.message
    # And exactly one fresh message, nothing dead-lettered
    assert queue.sent == [(message(job), 0)]
    assert queue.dead_letters == []
    assert (report.requeued, report.failed, report.resent, report.errors, report.active) == (1, 0, 0, 0, 1)
    assert [(name, details["scope"]) for name, _, details in events.events] == [("requeued", (job.job_id, "echo"))]
    # And a worker can claim it again right away
    claimed = repo.claim(job.job_id, now=now, lease_id="new", lease_expires_at=now + timedelta(seconds=LEASE))
    assert claimed.attempts == 3


def test_running_job_with_an_expired_lease_and_no_attempts_left_fails_into_the_dlq(
    sweeper: Sweeper, repo: RacingRepository, queue: FakeQueue, clock: FakeClock, events: RecordingEvents, put: Any
) -> None:
    # Given a job on its last attempt whose worker vanished
    job = running(put, clock, attempts=MAX_ATTEMPTS)
    clock.advance(LEASE + 1)
    now = clock.now()

    # When the sweeper runs
    report = sweeper.run()

    # Then the job failed with a non-retryable WorkerLostError, and its message is in the DLQ
    after = repo.jobs[job.job_id]
    assert after.status is JobStatus.FAILED
    assert after.finished_at == now
    assert after.updated_at == now
    assert after.lease_id is None
    assert after.lease_expires_at is None
    assert after.attempts == MAX_ATTEMPTS
    assert after.error is not None
    assert (after.error.type, after.error.retryable) == ("WorkerLostError", False)
    assert [(h.type, h.retryable, h.attempt, h.at) for h in after.history] == [
        ("WorkerLostError", False, MAX_ATTEMPTS, now)
    ]
    assert queue.dead_letters == [message(job)]
    assert queue.sent == []
    assert (report.requeued, report.failed, report.active, report.errors) == (0, 1, 0, 0)
    assert events.names(job.job_id) == ["failed", "dead_lettered"]

    # And a later sweep does not touch it again
    clock.advance(STUCK_AFTER * 10)
    writes = repo.writes
    again = sweeper.run()
    assert repo.writes == writes
    assert queue.dead_letters == [message(job)]
    assert again.failed == 0


# -- queued jobs -------------------------------------------------------------------------------


def test_queued_job_stuck_past_the_bound_gets_one_fresh_message_per_bound(
    sweeper: Sweeper, repo: RacingRepository, queue: FakeQueue, clock: FakeClock, events: RecordingEvents, put: Any
) -> None:
    # Given a queued job whose message was lost (the API died between the write and the send)
    job = put(status=JobStatus.QUEUED)

    # When sweeps run before the bound has passed, nothing is sent
    clock.advance(STUCK_AFTER - 1)
    assert sweeper.run().resent == 0
    assert queue.sent == []

    # When a sweep runs after the bound
    clock.advance(2)
    first = clock.now()
    report = sweeper.run()

    # Then the job gets a fresh message and its updated_at is bumped; nothing else changes
    assert report.resent == 1
    assert queue.sent == [(message(job), 0)]
    after = repo.jobs[job.job_id]
    assert after == job.model_copy(update={"updated_at": first})
    assert events.names(job.job_id) == ["resent"]

    # And the following sweeps within another bound do not send it again
    clock.advance(1)
    assert sweeper.run().resent == 0
    clock.advance(STUCK_AFTER - 2)
    assert sweeper.run().resent == 0
    assert len(queue.sent) == 1

    # But once another bound has passed without a run, it is sent again
    clock.advance(2)
    assert sweeper.run().resent == 1
    assert queue.sent == [(message(job), 0), (message(job), 0)]
    assert repo.jobs[job.job_id].updated_at == clock.now()


def test_queued_job_due_long_ago_but_updated_recently_is_left_alone(
    sweeper: Sweeper, repo: RacingRepository, queue: FakeQueue, clock: FakeClock, put: Any
) -> None:
    # Given a job due an hour ago that a worker put back 10 s ago (e.g. a release of its message)
    now = clock.now()
    job = put(
        status=JobStatus.QUEUED,
        created_at=now - timedelta(hours=1),
        available_at=now - timedelta(hours=1),
        updated_at=now - timedelta(seconds=10),
    )

    report = sweeper.run()

    assert report.resent == 0
    assert queue.sent == []
    assert repo.jobs[job.job_id] == job


@pytest.mark.parametrize("not_due_for", [900.0, 20.0], ids=["delayed-submit", "retry-backoff"])
def test_queued_job_not_yet_due_is_left_alone_until_due_for_longer_than_the_bound(
    sweeper: Sweeper, repo: RacingRepository, queue: FakeQueue, clock: FakeClock, put: Any, not_due_for: float
) -> None:
    # Given a job written long ago whose message is delayed (a delayed submit or a retry's backoff)
    now = clock.now()
    due = now + timedelta(seconds=not_due_for)
    job = put(
        status=JobStatus.QUEUED,
        created_at=now - timedelta(hours=1),
        updated_at=now - timedelta(hours=1),
        available_at=due,
    )

    # Then sweeps leave it alone while it is not due, and while it is due for less than the bound
    for at in sorted([STUCK_AFTER + 1, not_due_for - 1, not_due_for + 1, not_due_for + STUCK_AFTER - 1]):
        clock.current = now + timedelta(seconds=at)
        assert sweeper.run().resent == 0, f"re-enqueued at +{at:g} s"
    assert queue.sent == []
    assert repo.jobs[job.job_id] == job

    # And once it has been due for longer than the bound, it gets a fresh message
    clock.current = due + timedelta(seconds=STUCK_AFTER + 1)
    assert sweeper.run().resent == 1
    assert queue.sent == [(message(job), 0)]


def test_terminal_jobs_are_skipped(
    sweeper: Sweeper, repo: RacingRepository, queue: FakeQueue, clock: FakeClock, events: RecordingEvents, put: Any
) -> None:
    # Given terminal jobs, one of them still carrying an expired lease
    now = clock.now()
    jobs = [
        done(put, clock, JobStatus.SUCCEEDED),
        put(status=JobStatus.FAILED, attempts=1, lease_id="old", lease_expires_at=now, finished_at=now),
        done(put, clock, JobStatus.CANCELLED),
    ]
    clock.advance(86_400)

    report = sweeper.run()

    assert [repo.jobs[j.job_id] for j in jobs] == jobs
    assert repo.writes == 0
    assert queue.sent == []
    assert queue.dead_letters == []
    assert events.events == []
    assert (report.examined, report.active, report.requeued, report.failed, report.resent) == (3, 0, 0, 0, 0)


# -- marks ---------------------------------------------------------------------------------------


def test_marks_advance_to_each_shards_last_job_and_the_next_sweep_reads_from_there(
    sweeper: Sweeper, index: RacingIndex, clock: FakeClock, put: Any
) -> None:
    # Given three terminal jobs in every shard, interleaved
    statuses = [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED]
    last: dict[int, str] = {}
    for status in statuses:
        for shard in range(SHARDS):
            last[shard] = done(put, clock, status, shard=shard).job_id

    # When the first sweep runs, it reads every shard from the start
    report = sweeper.run()
    assert index.scanned == [(shard, None) for shard in range(SHARDS)]

    # Then every shard's mark is its last job
    assert report.examined == 3 * SHARDS
    assert report.marks_saved is True
    assert report.advanced == last
    assert index.stored == last

    # And the next sweep reads each shard after its mark, and finds nothing to do
    index.scanned.clear()
    again = sweeper.run()
    assert index.scanned == [(shard, last[shard]) for shard in range(SHARDS)]
    assert again.examined == 0
    assert again.advanced == {}
    assert index.stored == last

    # And a job written later is the only one the sweep after that examines
    newer = done(put, clock, shard=2)
    third = sweeper.run()
    assert third.examined == 1
    assert index.stored == last | {2: newer.job_id}


def test_a_non_terminal_job_holds_its_shards_mark_at_the_job_before_it(
    sweeper: Sweeper, repo: RacingRepository, index: RacingIndex, clock: FakeClock, put: Any
) -> None:
    # Given, in shard 0: two terminal jobs, a queued one, then two more terminal jobs
    first = done(put, clock)
    second = done(put, clock, JobStatus.FAILED)
    waiting = put(status=JobStatus.QUEUED)
    done(put, clock)
    done(put, clock)
    # and, in shard 1, a non-terminal job first of all
    held = running(put, clock, shard=1)
    done(put, clock, shard=1)

    report = sweeper.run()

    # Then shard 0's mark stops just before the queued job, and shard 1 gets none
    assert index.stored == {0: second.job_id}
    assert report.advanced == {0: second.job_id}
    assert report.active == 2
    assert first.job_id < second.job_id < waiting.job_id < held.job_id

    # And the next sweep reads shard 0 from the queued job on, and shard 1 from the start
    index.scanned.clear()
    sweeper.run()
    assert index.scanned[:2] == [(0, second.job_id), (1, None)]

    # And once the queued job has finished, the mark moves past everything
    repo.jobs[waiting.job_id] = waiting.model_copy(update={"status": JobStatus.SUCCEEDED})
    sweeper.run()
    assert index.stored[0] == max(j for j in repo.jobs if int(list_shard(j, SHARDS)) == 0)
    assert 1 not in index.stored


def test_a_job_the_sweep_fails_does_not_hold_the_mark_but_one_it_requeues_does(
    sweeper: Sweeper, index: RacingIndex, clock: FakeClock, put: Any
) -> None:
    # Given, in shard 0, a lost job with no attempts left, then a terminal one;
    # and in shard 1 a terminal job, a lost job with attempts left, then a terminal one
    lost_for_good = running(put, clock, attempts=MAX_ATTEMPTS)
    after_it = done(put, clock)
    before_retry = done(put, clock, shard=1)
    running(put, clock, attempts=1, shard=1)
    done(put, clock, shard=1)
    clock.advance(LEASE + 1)

    report = sweeper.run()

    # Then shard 0's mark passes the job the sweep just failed; shard 1's stops before the requeued one
    assert (report.failed, report.requeued) == (1, 1)
    assert lost_for_good.job_id < after_it.job_id
    assert index.stored == {0: after_it.job_id, 1: before_retry.job_id}


def test_shard_limit_bounds_one_sweep_and_later_sweeps_carry_on(
    repo: RacingRepository, index: RacingIndex, queue: FakeQueue, clock: FakeClock, events: RecordingEvents, put: Any
) -> None:
    # Given five terminal jobs, then a stuck queued one, all in shard 0, and a sweep that reads two at a time
    finished = [done(put, clock) for _ in range(5)]
    stuck = put(status=JobStatus.QUEUED)
    clock.advance(STUCK_AFTER + 1)
    sweeper = make_sweeper(repo, index, queue, clock, events, shard_limit=2)

    # Then each sweep moves the mark on by two, until it reaches the stuck job
    assert sweeper.run().examined == 2
    assert index.stored[0] == finished[1].job_id
    sweeper.run()
    assert index.stored[0] == finished[3].job_id
    assert queue.sent == []
    report = sweeper.run()
    assert report.resent == 1
    assert queue.sent == [(message(stuck), 0)]
    # Old and still queued after its resend: watched, and the mark moves past it
    assert index.stored[0] == stuck.job_id
    assert index.watching == {0: (stuck.job_id,)}


def test_losing_the_race_to_save_marks_returns_false_and_keeps_the_newer_marks(
    sweeper: Sweeper, index: RacingIndex, clock: FakeClock, put: Any
) -> None:
    # Given terminal jobs in shards 0 and 1
    zero = [done(put, clock) for _ in range(3)]
    one = done(put, clock, shard=1)
    newer = {0: zero[0].job_id, 1: one.job_id}

    # When another sweep saves its marks while this one is reading
    def other_sweep_saves() -> None:
        index.stored = dict(newer)

    index.after_read = other_sweep_saves
    report = sweeper.run()

    # Then this sweep's save is refused and the other's marks stand
    assert report.marks_saved is False
    assert index.stored == newer


def test_retrying_a_failed_job_lowers_the_mark_so_the_next_sweep_reads_it_again(
    sweeper: Sweeper,
    repo: RacingRepository,
    index: RacingIndex,
    queue: FakeQueue,
    clock: FakeClock,
    events: RecordingEvents,
    registry: JobRegistry,
    put: Any,
) -> None:
    # Given a failed job and a later terminal one, both behind shard 0's mark
    failed = put(
        status=JobStatus.FAILED,
        attempts=MAX_ATTEMPTS,
        finished_at=clock.now(),
        error=JobError(type="ValueError", message="boom", retryable=False),
    )
    later = done(put, clock)
    sweeper.run()
    assert index.stored == {0: later.job_id}
    service = JobService(
        repository=repo,
        queue=queue,
        registry=registry,
        clock=clock,
        events=events,
        max_attempts=MAX_ATTEMPTS,
        sweep_index=index,
    )

    # When the API retries it, and its fresh message is lost
    service.retry(failed.job_id, CALLER)
    assert index.stored[0] < failed.job_id
    lowered = index.stored[0]
    queue.sent.clear()
    clock.advance(STUCK_AFTER + 1)
    index.scanned.clear()
    report = sweeper.run()

    # Then the next sweep reads it again and re-enqueues it; old and still queued, it is watched from now
    # on, and the mark moves past it
    assert index.scanned[0] == (0, lowered)
    assert report.examined == 2
    assert report.resent == 1
    assert queue.sent == [(message(repo.jobs[failed.job_id]), 0)]
    assert index.stored[0] == later.job_id
    assert index.watching == {0: (failed.job_id,)}


def test_retry_racing_a_sweep_does_not_leave_the_job_behind_the_mark(
    sweeper: Sweeper,
    repo: RacingRepository,
    index: RacingIndex,
    queue: FakeQueue,
    clock: FakeClock,
    events: RecordingEvents,
    registry: JobRegistry,
    put: Any,
) -> None:
    # Given shard 0's mark at an old job, then a failed job and a terminal one after it
    old = done(put, clock)
    sweeper.run()
    assert index.stored == {0: old.job_id}
    failed = put(status=JobStatus.FAILED, attempts=MAX_ATTEMPTS, finished_at=clock.now())
    done(put, clock)
    service = JobService(
        repository=repo,
        queue=queue,
        registry=registry,
        clock=clock,
        events=events,
        max_attempts=MAX_ATTEMPTS,
        sweep_index=index,
    )

    # When the API retries the failed job while a sweep has it in hand as failed
    def api_retries() -> None:
        service.retry(failed.job_id, CALLER)

    index.after_read = api_retries
    sweeper.run()
    assert repo.jobs[failed.job_id].status is JobStatus.QUEUED

    # And a worker then claims it and crashes
    now = clock.now()
    repo.claim(failed.job_id, now=now, lease_id="crashed", lease_expires_at=now + timedelta(seconds=LEASE))
    clock.advance(LEASE + 1)
    sweeper.run()

    # Then a later sweep still finds the lost lease and queues the job again
    after = repo.jobs[failed.job_id]
    assert after.status is JobStatus.QUEUED, (
        f"job {failed.job_id} stays {after.status.value} forever: the sweep saved mark {index.stored[0]} past it"
    )


# -- outages -------------------------------------------------------------------------------------


def test_queue_outage_while_requeuing_a_lost_job_is_counted_and_a_later_sweep_sends_it(
    sweeper: Sweeper, repo: RacingRepository, index: RacingIndex, queue: FakeQueue, clock: FakeClock, put: Any
) -> None:
    # Given a terminal job, a job whose worker vanished, then another terminal job
    first = done(put, clock)
    lost = running(put, clock, attempts=1)
    done(put, clock)
    clock.advance(LEASE + 1)

    # When the sweep runs while SQS is down
    queue.unavailable = True
    report = sweeper.run()

    # Then the error is counted, the job is queued without a message, and the mark does not pass it
    assert report.errors == 1
    assert queue.sent == []
    assert repo.jobs[lost.job_id].status is JobStatus.QUEUED
    assert index.stored == {0: first.job_id}

    # And once SQS is back, a later scheduled sweep sends it exactly once
    queue.unavailable = False
    sweep_until(sweeper, clock, lambda: bool(queue.sent), within=STUCK_AFTER + SWEEP_EVERY)
    assert queue.sent == [(message(lost), 0)]
    for _ in range(3):
        clock.advance(SWEEP_EVERY)
        assert sweeper.run().errors == 0
    assert queue.sent == [(message(lost), 0)]
    after = repo.jobs[lost.job_id]
    assert after.status is JobStatus.QUEUED
    assert after.attempts == 1
    assert [h.type for h in after.history] == ["WorkerLostError"]


def test_queue_outage_while_reenqueuing_a_stuck_job_is_counted_and_a_later_sweep_sends_it(
    sweeper: Sweeper, repo: RacingRepository, index: RacingIndex, queue: FakeQueue, clock: FakeClock, put: Any
) -> None:
    stuck = put(status=JobStatus.QUEUED)
    clock.advance(STUCK_AFTER + 1)
    queue.unavailable = True

    report = sweeper.run()

    assert report.errors == 1
    assert queue.sent == []
    assert repo.jobs[stuck.job_id].status is JobStatus.QUEUED
    assert index.watching == {0: (stuck.job_id,)}  # old and not terminal: every sweep reads it again

    queue.unavailable = False
    sweep_until(sweeper, clock, lambda: bool(queue.sent), within=STUCK_AFTER + SWEEP_EVERY)
    assert queue.sent == [(message(stuck), 0)]


def test_queue_outage_while_dead_lettering_is_counted_and_the_job_is_still_failed(
    sweeper: Sweeper, repo: RacingRepository, index: RacingIndex, queue: FakeQueue, clock: FakeClock, put: Any
) -> None:
    lost = running(put, clock, attempts=MAX_ATTEMPTS)
    clock.advance(LEASE + 1)
    queue.unavailable = True

    report = sweeper.run()

    assert report.errors == 1
    assert queue.dead_letters == []
    after = repo.jobs[lost.job_id]
    assert after.status is JobStatus.FAILED
    assert after.finished_at == clock.now()
    assert index.stored == {}  # this sweep is not sure the job is settled: it holds the mark


def test_storage_outage_on_one_job_is_counted_and_the_sweep_goes_on(
    sweeper: Sweeper, repo: RacingRepository, index: RacingIndex, queue: FakeQueue, clock: FakeClock, put: Any
) -> None:
    # Given two jobs whose workers vanished, and DynamoDB failing the first write
    first = running(put, clock)
    second = running(put, clock)
    clock.advance(LEASE + 1)

    def storage_down(job_id: str) -> None:
        raise DependencyUnavailableError("DynamoDB is down (test)")

    repo.before_update = storage_down
    report = sweeper.run()

    # Then the first stays as it was, the second is recovered, and the mark stays before both
    assert report.errors == 1
    assert report.requeued == 1
    assert repo.jobs[first.job_id] == first
    assert repo.jobs[second.job_id].status is JobStatus.QUEUED
    assert queue.sent == [(message(second), 0)]
    assert index.stored == {}

    # And the next sweep recovers the first
    clock.advance(SWEEP_EVERY)
    assert sweeper.run().requeued == 1
    assert repo.jobs[first.job_id].status is JobStatus.QUEUED
    assert queue.sent[-1] == (message(first), 0)


# -- races with other writers ------------------------------------------------------------------


@pytest.mark.parametrize("attempts", [1, MAX_ATTEMPTS], ids=["attempts-left", "last-attempt"])
def test_job_that_completes_between_read_and_write_is_left_as_its_worker_left_it(
    sweeper: Sweeper,
    repo: RacingRepository,
    index: RacingIndex,
    queue: FakeQueue,
    clock: FakeClock,
    events: RecordingEvents,
    put: Any,
    attempts: int,
) -> None:
    # Given a job whose lease looks expired when the sweep reads it
    job = running(put, clock, attempts=attempts)
    clock.advance(LEASE + 1)
    finished = job.model_copy(
        update={
            "status": JobStatus.SUCCEEDED,
            "result": {"ok": True},
            "finished_at": clock.now(),
            "updated_at": clock.now(),
            "lease_id": None,
            "lease_expires_at": None,
        }
    )

    # When its (slow) worker completes it just before the sweeper's write
    def worker_completes(job_id: str) -> None:
        repo.jobs[job_id] = finished

    repo.before_update = worker_completes
    report = sweeper.run()

    # Then the sweeper's write is refused and the job stays succeeded; nothing is sent anywhere
    assert repo.before_update is None, "the sweeper never tried to write"
    assert repo.jobs[job.job_id] == finished
    assert queue.sent == []
    assert queue.dead_letters == []
    assert events.events == []
    assert (report.requeued, report.failed, report.errors, report.active) == (0, 0, 0, 0)
    # And the job, terminal after all, does not hold the mark
    assert index.stored == {0: job.job_id}


def test_expired_lease_taken_over_by_another_worker_before_the_write_is_left_running(
    sweeper: Sweeper, repo: RacingRepository, index: RacingIndex, queue: FakeQueue, clock: FakeClock, put: Any
) -> None:
    # Given a job whose lease expired, that another worker claims between the sweep's read and write
    job = running(put, clock, attempts=1)
    clock.advance(LEASE + 1)
    now = clock.now()
    reclaimed: list[Job] = []

    def another_worker_claims(job_id: str) -> None:
        reclaimed.append(
            repo.claim(job_id, now=now, lease_id="second", lease_expires_at=now + timedelta(seconds=LEASE))
        )

    repo.before_update = another_worker_claims
    report = sweeper.run()

    # Then the new attempt keeps its lease: nothing is written or sent, and the job holds the mark
    assert repo.jobs[job.job_id] == reclaimed[0]
    assert reclaimed[0].lease_id == "second"
    assert queue.sent == []
    assert report.requeued == 0
    assert report.active == 1
    assert index.stored == {}


def test_stuck_job_claimed_between_read_and_write_gets_no_message(
    sweeper: Sweeper, repo: RacingRepository, index: RacingIndex, queue: FakeQueue, clock: FakeClock, put: Any
) -> None:
    job = put(status=JobStatus.QUEUED)
    clock.advance(STUCK_AFTER + 1)
    now = clock.now()

    def worker_claims(job_id: str) -> None:
        repo.claim(job_id, now=now, lease_id="w", lease_expires_at=now + timedelta(seconds=LEASE))

    repo.before_update = worker_claims
    report = sweeper.run()

    after = repo.jobs[job.job_id]
    assert (after.status, after.lease_id, after.attempts) == (JobStatus.RUNNING, "w", 1)
    assert queue.sent == []
    assert report.resent == 0
    assert index.watching == {0: (job.job_id,)}  # running now, and old: watched, not holding the mark


def test_stuck_job_that_ran_and_was_put_back_between_read_and_write_gets_no_message(
    sweeper: Sweeper, repo: RacingRepository, queue: FakeQueue, clock: FakeClock, put: Any
) -> None:
    # Given a stuck queued job that, between the sweep's read and write, ran, failed and went back to
    # queued with a backoff (its message now delayed in the queue): same status, one more attempt
    job = put(status=JobStatus.QUEUED)
    clock.advance(STUCK_AFTER + 1)
    put_back = job.model_copy(
        update={"attempts": 1, "available_at": clock.now() + timedelta(seconds=5), "updated_at": clock.now()}
    )

    def ran_and_was_put_back(job_id: str) -> None:
        repo.jobs[job_id] = put_back

    repo.before_update = ran_and_was_put_back
    report = sweeper.run()

    assert repo.jobs[job.job_id] == put_back
    assert queue.sent == []
    assert report.resent == 0


def test_stuck_job_cancelled_between_read_and_write_stays_cancelled_and_does_not_hold_the_mark(
    sweeper: Sweeper, repo: RacingRepository, index: RacingIndex, queue: FakeQueue, clock: FakeClock, put: Any
) -> None:
    job = put(status=JobStatus.QUEUED)
    clock.advance(STUCK_AFTER + 1)
    cancelled = job.model_copy(
        update={"status": JobStatus.CANCELLED, "finished_at": clock.now(), "updated_at": clock.now()}
    )

    def api_cancels(job_id: str) -> None:
        repo.jobs[job_id] = cancelled

    repo.before_update = api_cancels
    report = sweeper.run()

    assert repo.before_update is None, "the sweeper never tried to write"
    assert repo.jobs[job.job_id] == cancelled
    assert queue.sent == []
    assert (report.resent, report.active) == (0, 0)
    assert index.stored == {0: job.job_id}


def test_a_long_running_job_is_watched_and_does_not_make_every_sweep_reread_the_jobs_after_it(
    sweeper: Sweeper, repo: RacingRepository, index: RacingIndex, queue: FakeQueue, clock: FakeClock, put: Any
) -> None:
    from jobq.domain.sweeper import WATCH_AFTER

    # Given a job running under a long lease, and 50 jobs after it that finished
    long_one = put(
        status=JobStatus.RUNNING,
        attempts=1,
        started_at=clock.now(),
        lease_id="lease-1",
        lease_expires_at=clock.now() + timedelta(hours=3),
    )
    finished = [done(put, clock) for _ in range(50)]

    # While it is young, it holds the mark: each sweep reads the 50 again
    assert sweeper.run().examined == 51
    assert sweeper.run().examined == 51
    assert index.stored.get(0) is None

    # Once it is older than WATCH_AFTER, the mark passes it and it is watched
    clock.advance(WATCH_AFTER.total_seconds() + 1)
    sweeper.run()
    assert index.stored[0] == finished[-1].job_id
    assert index.watching == {0: (long_one.job_id,)}
    for _ in range(3):
        report = sweeper.run()
        assert report.examined == 1  # the watched job alone
        assert report.watched == 1

    # When its lease expires (its worker was lost), the watch list is where the sweep finds it
    clock.advance(3 * 3600)
    report = sweeper.run()
    assert report.requeued == 1
    assert repo.jobs[long_one.job_id].status is JobStatus.QUEUED
    repo.jobs[long_one.job_id] = repo.jobs[long_one.job_id].model_copy(update={"status": JobStatus.SUCCEEDED})
    sweeper.run()
    assert index.watching == {}  # terminal: no longer watched
