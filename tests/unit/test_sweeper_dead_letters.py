"""The sweeper keeps the DLQ true: messages of jobs that are no longer failed are deleted."""

from __future__ import annotations

from datetime import timedelta

from jobq.domain.models import Job, JobStatus, new_job_id
from jobq.domain.sweeper import Sweeper
from tests.support.fakes import (
    FakeClock,
    FakeDeadLetterQueue,
    FakeQueue,
    InMemoryJobRepository,
    InMemorySweepIndex,
    RecordingEvents,
)


def _job(clock: FakeClock, status: JobStatus) -> Job:
    now = clock.now()
    return Job(
        job_id=new_job_id(now),
        type="echo",
        owner="arn:aws:iam::000000000000:user/alice",
        status=status,
        payload={},
        max_attempts=3,
        attempts=1,
        created_at=now,
        updated_at=now,
        available_at=now + timedelta(hours=1),
    )


def _setup() -> tuple[Sweeper, InMemoryJobRepository, FakeDeadLetterQueue, FakeClock]:
    clock = FakeClock()
    repo = InMemoryJobRepository()
    dlq = FakeDeadLetterQueue()
    sweeper = Sweeper(
        repository=repo,
        index=InMemorySweepIndex(repo),
        queue=FakeQueue(),
        clock=clock,
        events=RecordingEvents(),
        stuck_after_seconds=900,
        dead_letters=dlq,
        dead_letter_interval_seconds=300,
    )
    return sweeper, repo, dlq, clock


def _dead_letter(dlq: FakeDeadLetterQueue, job: Job) -> None:
    dlq.add(f'{{"job_id":"{job.job_id}","type":"{job.type}"}}')


def test_messages_of_jobs_no_longer_failed_are_deleted_the_rest_kept() -> None:
    sweeper, repo, dlq, clock = _setup()
    failed = _job(clock, JobStatus.FAILED)
    recovered = _job(clock, JobStatus.SUCCEEDED)
    retried = _job(clock, JobStatus.QUEUED)
    for job in (failed, recovered, retried):
        repo.insert(job)
        _dead_letter(dlq, job)
    dlq.add("not a job message")
    dlq.add('{"job_id":"01JAAAAAAAAAAAAAAAAAAAAAAA","type":"echo"}')  # its job expired

    report = sweeper.run()

    assert report.stale_dead_letters == 2
    assert sorted(letter.body for letter in dlq.deleted) == sorted(
        f'{{"job_id":"{job.job_id}","type":"echo"}}' for job in (recovered, retried)
    )
    assert len(dlq.visible) == 3  # put back: the failed job's, the unreadable one, the orphan
    assert dlq.hidden == []


def test_the_dlq_is_read_at_most_every_interval() -> None:
    sweeper, repo, dlq, clock = _setup()
    sweeper.run()
    recovered = _job(clock, JobStatus.SUCCEEDED)
    repo.insert(recovered)
    _dead_letter(dlq, recovered)

    clock.advance(299)
    assert sweeper.run().stale_dead_letters == 0
    clock.advance(1)
    assert sweeper.run().stale_dead_letters == 1
