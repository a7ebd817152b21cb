"""Progress reports and cooperative cancel: JobContext.progress, AttemptProgress and the runner."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from jobq import JobContext, JobType
from jobq.domain.budget import TimeBudget
from jobq.domain.decisions import Ack
from jobq.domain.errors import JobCancelled
from jobq.domain.models import Delivery, Job, JobStatus, Progress
from jobq.domain.ports import Expect, JobChange
from jobq.domain.progress import AttemptProgress
from jobq.domain.runner import JobRunner
from jobq.domain.service import JobService
from jobq.jobs import build_registry
from tests.support.callers import CALLER
from tests.support.fakes import FakeClock, InMemoryJobRepository, RecordingEvents

MakeRunner = Callable[..., JobRunner]
PutJob = Callable[..., Job]
Deliver = Callable[..., Delivery]


class Steps(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = 5


def budget() -> TimeBudget:
    return TimeBudget(lambda: 900.0)


def stepping(on_step: Callable[[int, JobContext], None] | None = None, *, report: bool = True) -> JobType[Steps]:
    """A job type that takes ``steps`` steps, calling ``on_step`` and (if ``report``) ``ctx.progress`` at each."""

    def handler(payload: Steps, ctx: JobContext) -> dict[str, int]:
        for step in range(1, payload.steps + 1):
            if on_step is not None:
                on_step(step, ctx)
            if report:
                ctx.progress(step, payload.steps, f"step {step}")
        return {"steps": payload.steps}

    return JobType("steps", Steps, handler)


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- JobContext ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("done", "total"), [(-1, None), (float("nan"), None), (float("inf"), None), (1, 0), (1, -5), (1, float("inf"))]
)
def test_progress_refuses_nonsense_numbers(done: float, total: float | None) -> None:
    ctx = JobContext(job_id="j", job_type="t", attempt=1, max_attempts=3, deadline=0.0)
    with pytest.raises(ValueError, match="progress"):
        ctx.progress(done, total)


def test_a_context_without_a_sink_takes_reports_and_never_cancels() -> None:
    ctx = JobContext(job_id="j", job_type="t", attempt=1, max_attempts=3, deadline=0.0)
    ctx.progress(1, 2, "half")
    ctx.check_cancelled()


# -- AttemptProgress: throttling, lease, cancel ----------------------------------------------------


def running_job(put_job: PutJob) -> Job:
    return put_job(type="steps", status=JobStatus.RUNNING, lease_id="lease-1", attempts=1)


def test_reports_are_written_at_most_once_a_second(
    repo: InMemoryJobRepository, clock: FakeClock, put_job: PutJob
) -> None:
    job = running_job(put_job)
    ticker = Ticker()
    sink = AttemptProgress(job, repository=repo, clock=clock, monotonic=ticker)
    for done in range(1, 11):  # ten reports within 0.9 s: one write
        sink.report(done, 100, None)
        ticker.now += 0.1
    assert sink.writes == 1
    assert repo.jobs[job.job_id].progress == Progress(done=1, total=100, updated_at=clock.now())
    assert sink.pending is not None
    assert sink.pending.done == 10  # kept for the attempt's last write
    ticker.now += 0.1
    sink.report(11, 100, "eleven")
    assert sink.writes == 2
    stored = repo.jobs[job.job_id].progress
    assert stored is not None
    assert (stored.done, stored.message) == (11, "eleven")
    assert sink.pending is None


def test_a_report_after_the_lease_is_gone_writes_nothing_and_stops_the_attempt(
    repo: InMemoryJobRepository, clock: FakeClock, put_job: PutJob
) -> None:
    job = running_job(put_job)
    taken_over = repo.update(
        job.job_id, JobChange(status=JobStatus.RUNNING, at=clock.now()), expect=Expect.status(JobStatus.RUNNING)
    ).model_copy(update={"lease_id": "lease-2"})
    repo.jobs[job.job_id] = taken_over
    sink = AttemptProgress(job, repository=repo, clock=clock, monotonic=Ticker())
    with pytest.raises(JobCancelled, match="no longer holds the job's lease"):
        sink.report(1, 2, None)
    assert sink.lease_lost
    assert repo.jobs[job.job_id] == taken_over
    with pytest.raises(JobCancelled):  # and stays stopped
        sink.check_cancelled()


def test_check_cancelled_reads_at_most_once_a_second_and_never_writes(
    repo: InMemoryJobRepository, clock: FakeClock, put_job: PutJob
) -> None:
    job = running_job(put_job)
    ticker = Ticker()
    sink = AttemptProgress(job, repository=repo, clock=clock, monotonic=ticker)
    writes = repo.writes
    sink.check_cancelled()
    repo.jobs[job.job_id] = repo.jobs[job.job_id].model_copy(update={"cancel_requested": True})
    ticker.now += 0.5
    sink.check_cancelled()  # within the second: not read yet
    ticker.now += 0.6
    with pytest.raises(JobCancelled, match="cancelled the job"):
        sink.check_cancelled()
    assert repo.writes == writes


def test_a_failing_store_does_not_fail_the_job(repo: InMemoryJobRepository, clock: FakeClock, put_job: PutJob) -> None:
    job = running_job(put_job)
    sink = AttemptProgress(job, repository=repo, clock=clock, monotonic=Ticker())
    repo.unavailable = True
    sink.report(1, 2, None)
    sink.check_cancelled()
    repo.unavailable = False
    assert sink.pending is not None
    assert sink.pending.done == 1
    assert sink.stop_reason is None


# -- the runner ---------------------------------------------------------------------------------


def test_a_job_that_reports_ends_with_its_last_report_and_one_write_per_second(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    runner = make_runner(job_types=[stepping()])
    job = put_job(type="steps", payload={"steps": 50})
    writes = repo.writes
    assert runner.handle(deliver(job), budget()) == Ack("succeeded")
    done = repo.jobs[job.job_id]
    assert done.status is JobStatus.SUCCEEDED
    assert done.progress is not None
    assert (done.progress.done, done.progress.total) == (50, 50)
    assert repo.writes - writes == 3  # claim, the first report, success (carrying the 50th report)


def test_a_job_that_does_not_report_costs_what_it_did(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    runner = make_runner(job_types=[stepping(report=False)])
    job = put_job(type="steps")
    writes = repo.writes
    assert runner.handle(deliver(job), budget()) == Ack("succeeded")
    assert repo.jobs[job.job_id].progress is None
    assert repo.writes - writes == 2  # claim and success


def test_cancel_while_running_stops_the_handler_at_its_next_report(
    make_runner: MakeRunner,
    service: JobService,
    repo: InMemoryJobRepository,
    put_job: PutJob,
    deliver: Deliver,
    events: RecordingEvents,
) -> None:
    reached: list[int] = []

    def on_step(step: int, ctx: JobContext) -> None:
        reached.append(step)
        if step == 2:
            assert service.cancel(ctx.job_id, CALLER).cancel_requested  # the API, mid-run

    runner = make_runner(job_types=[stepping(on_step)], progress_interval=0)
    job = put_job(type="steps", payload={"steps": 5})
    assert runner.handle(deliver(job), budget()) == Ack("cancelled while running")
    assert reached == [1, 2]
    ended = repo.jobs[job.job_id]
    assert ended.status is JobStatus.CANCELLED
    assert ended.finished_at is not None
    assert ended.lease_id is None
    assert ended.error is not None
    assert ended.error.type == "JobCancelled"
    assert not ended.error.retryable
    assert ended.progress is not None
    assert ended.progress.done == 2  # written; its answer said: stop
    assert ended.attempts == 1
    assert events.names(job.job_id)[-2:] == ["cancel_requested", "cancelled"]


def test_check_cancelled_stops_a_handler_that_does_not_report(
    make_runner: MakeRunner, service: JobService, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    def on_step(step: int, ctx: JobContext) -> None:
        if step == 2:
            service.cancel(ctx.job_id, CALLER)
        ctx.check_cancelled()

    runner = make_runner(job_types=[stepping(on_step, report=False)], progress_interval=0)
    job = put_job(type="steps")
    assert runner.handle(deliver(job), budget()) == Ack("cancelled while running")
    assert repo.jobs[job.job_id].status is JobStatus.CANCELLED


def test_a_handler_that_swallows_the_cancel_still_ends_cancelled(
    make_runner: MakeRunner, service: JobService, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    def handler(payload: Steps, ctx: JobContext) -> str:
        service.cancel(ctx.job_id, CALLER)
        with contextlib.suppress(JobCancelled):
            ctx.progress(1)
        return "finished anyway"

    runner = make_runner(job_types=[JobType("steps", Steps, handler)], progress_interval=0)
    job = put_job(type="steps")
    assert runner.handle(deliver(job), budget()) == Ack("cancelled while running")
    assert repo.jobs[job.job_id].status is JobStatus.CANCELLED
    assert repo.jobs[job.job_id].result is None


def test_a_job_that_never_checks_runs_to_its_end(
    make_runner: MakeRunner, service: JobService, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    def on_step(step: int, ctx: JobContext) -> None:
        if step == 1:
            service.cancel(ctx.job_id, CALLER)

    runner = make_runner(job_types=[stepping(on_step, report=False)], progress_interval=0)
    job = put_job(type="steps")
    assert runner.handle(deliver(job), budget()) == Ack("succeeded")
    done = repo.jobs[job.job_id]
    assert (done.status, done.result, done.cancel_requested) == (JobStatus.SUCCEEDED, {"steps": 5}, True)


def test_a_requeued_job_with_a_cancel_request_is_cancelled_when_claimed_not_run(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    ran: list[int] = []
    runner = make_runner(job_types=[stepping(lambda step, ctx: ran.append(step))])
    job = put_job(type="steps", attempts=1, cancel_requested=True)  # its last attempt failed after the request
    assert runner.handle(deliver(job), budget()) == Ack("cancelled while running")
    assert ran == []
    assert repo.jobs[job.job_id].status is JobStatus.CANCELLED


def test_a_handler_that_lost_its_lease_has_its_outcome_dropped(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    def on_step(step: int, ctx: JobContext) -> None:
        if step == 2:  # another worker took the job over (this one's lease had expired)
            repo.jobs[ctx.job_id] = repo.jobs[ctx.job_id].model_copy(update={"lease_id": "someone-else"})

    runner = make_runner(job_types=[stepping(on_step)], progress_interval=0)
    job = put_job(type="steps")
    assert runner.handle(deliver(job), budget()) == Ack("lease lost")
    taken = repo.jobs[job.job_id]
    assert (taken.status, taken.lease_id) == (JobStatus.RUNNING, "someone-else")


def test_the_count_job_reports_its_progress(
    make_runner: MakeRunner, repo: InMemoryJobRepository, put_job: PutJob, deliver: Deliver
) -> None:
    seen: list[Any] = []
    count = build_registry().require("count")

    def watching(payload: Any, ctx: JobContext) -> Any:
        result = count.handler(payload, ctx)
        seen.append(repo.jobs[ctx.job_id].progress)
        return result

    runner = make_runner(job_types=[JobType("count", count.model, watching)], progress_interval=0)
    job = put_job(type="count", payload={"to": 4})
    assert runner.handle(deliver(job), budget()) == Ack("succeeded")
    assert seen[0] is not None
    assert (seen[0].done, seen[0].total, seen[0].message) == (4, 4, "counted to 4")
    assert repo.jobs[job.job_id].result == {"counted": 4}
