"""The sweeper: no job stays ``queued`` or ``running`` forever.

Runs on a schedule. It reads the listing index shard by shard, oldest first, from each shard's mark
(everything before it is terminal), and for each job that is not terminal:

- ``running`` with an expired lease (its worker crashed or timed out): back to ``queued`` with a fresh
  message while attempts remain, else ``failed`` with a WorkerLostError and a message in the DLQ;
- ``queued``, due, and untouched for longer than ``stuck_after`` (its message was lost, e.g. the API
  died between writing the job and sending it): a fresh message (the job is *resent*; it stays queued).

It also keeps the dead-letter queue true: a message there whose job is not ``failed`` (the job was
recovered or retried since, e.g. a message redriven after its worker died on the last receive while
the sweeper re-queued the job) is stale and deleted, so the DLQ alarm means a failed job.

A shard's mark moves past every job found terminal. A job that stays non-terminal holds it while it is
young; once older than ``WATCH_AFTER`` the mark passes it and the job goes on the shard's watch list,
which every sweep reads again (up to ``WATCH_LIMIT`` jobs a shard; beyond that such jobs hold the mark
as young ones do). So a sweep reads the jobs of the last few minutes and the few long ones, never the
whole table, and a job that runs for hours does not make every sweep re-read the hours behind it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jobq.domain.errors import DependencyUnavailableError
from jobq.domain.models import (
    DEFAULT_HISTORY_LIMIT,
    AttemptFailure,
    Job,
    JobMessage,
    JobStatus,
    appended_history,
    worker_lost,
)
from jobq.domain.ports import (
    UNSET,
    Clock,
    ConditionFailedError,
    DeadLetter,
    DeadLetterQueue,
    DeadLetterRoute,
    Expect,
    JobChange,
    JobEvents,
    JobQueue,
    JobRepository,
    SweepIndex,
)
from jobq.domain.redrive import receive_all, superseded

_log = logging.getLogger(__name__)

DEFAULT_SHARD_LIMIT = 1000
WATCH_AFTER = timedelta(minutes=5)
"""A non-terminal job this old no longer holds its shard's mark: it is watched instead."""
WATCH_LIMIT = 200
"""Jobs watched per shard, at most (the marks item stays small)."""
DEFAULT_DEAD_LETTER_LIMIT = 1000
DEFAULT_DEAD_LETTER_INTERVAL_SECONDS = 300


@dataclass
class SweepReport:
    """What one sweep saw and did."""

    examined: int = 0
    active: int = 0
    requeued: int = 0
    failed: int = 0
    resent: int = 0
    errors: int = 0
    stale_dead_letters: int = 0
    watched: int = 0
    marks_saved: bool = False
    advanced: dict[int, str] = field(default_factory=dict)


class Sweeper:
    """Finds and recovers stuck jobs. Every change it makes is a conditional write."""

    def __init__(
        self,
        *,
        repository: JobRepository,
        index: SweepIndex,
        queue: JobQueue,
        clock: Clock,
        events: JobEvents,
        stuck_after_seconds: float,
        dead_letters: DeadLetterQueue | None = None,
        shard_limit: int = DEFAULT_SHARD_LIMIT,
        dead_letter_limit: int = DEFAULT_DEAD_LETTER_LIMIT,
        dead_letter_interval_seconds: float = DEFAULT_DEAD_LETTER_INTERVAL_SECONDS,
        history_limit: int = DEFAULT_HISTORY_LIMIT,
    ) -> None:
        self._repo = repository
        self._index = index
        self._queue = queue
        self._clock = clock
        self._events = events
        self._stuck_after = timedelta(seconds=stuck_after_seconds)
        self._shard_limit = shard_limit
        self._dead_letters = dead_letters
        self._dead_letter_limit = dead_letter_limit
        self._dead_letter_interval = timedelta(seconds=dead_letter_interval_seconds)
        self._last_dead_letter_check: datetime | None = None
        self._history_limit = history_limit

    def run(self) -> SweepReport:
        """One sweep over every shard."""
        report = SweepReport()
        now = self._clock.now()
        before = self._index.marks()
        after = dict(before.positions)
        watching: dict[int, tuple[str, ...]] = {}
        for shard in range(self._index.shard_count):
            watched = before.watching.get(shard, ())
            mark, still = self._sweep_shard(shard, before.positions.get(shard), watched, now, report)
            if mark is not None and mark != before.positions.get(shard):
                after[shard] = mark
                report.advanced[shard] = mark
            if still:
                watching[shard] = still
            report.watched += len(still)
        if after != before.positions or watching != {k: v for k, v in before.watching.items() if v}:
            report.marks_saved = self._index.save_marks(before, after, watching)
        if self._dead_letters is not None and self._dead_letters_due(now):
            try:
                self._clean_dead_letters(self._dead_letters, report)
            except DependencyUnavailableError:
                _log.exception("checking the dead-letter queue failed; the next sweep tries again")
                report.errors += 1
        return report

    def _dead_letters_due(self, now: datetime) -> bool:
        """At most every ``dead_letter_interval``: reading a long DLQ every minute would cost more than it finds."""
        last = self._last_dead_letter_check
        if last is not None and now - last < self._dead_letter_interval:
            return False
        self._last_dead_letter_check = now
        return True

    def _clean_dead_letters(self, dead_letters: DeadLetterQueue, report: SweepReport) -> None:
        """Delete DLQ messages that stand for no failed job, so that each failed job has one; keep the rest.

        Stale: the job is not failed, or it was retried since the message was sent (an older generation),
        or another message of the same failure was kept already. SQS samples, so all are seen in time.
        """
        letters = receive_all(dead_letters, limit=self._dead_letter_limit, hide_seconds=60)
        ids = [letter.message.job_id for letter in letters if letter.message is not None]
        jobs = self._index.get_many(ids)
        keep: list[DeadLetter] = []
        kept_jobs: set[str] = set()
        for letter in letters:
            message = letter.message
            job = jobs.get(message.job_id) if message is not None else None
            if message is None or job is None:
                keep.append(letter)  # something an operator must look at
                continue
            why = f"the job is {job.status.value}" if job.status is not JobStatus.FAILED else None
            why = why or superseded(job, message.generation, kept_jobs)
            if why is None:
                keep.append(letter)
                kept_jobs.add(job.job_id)
                continue
            dead_letters.delete(letter)
            report.stale_dead_letters += 1
            with self._events.job_scope(job.job_id, job.type):
                self._events.skipped(job.job_id, f"stale dead-letter message deleted: {why}")
        dead_letters.put_back(keep)

    def _sweep_shard(
        self, shard: int, mark: str | None, watched: tuple[str, ...], now: datetime, report: SweepReport
    ) -> tuple[str | None, tuple[str, ...]]:
        """Check the shard's watched jobs and its jobs after ``mark``; returns the new mark and watch list."""
        still = list(self._active(watched, report, now))
        ids = list(self._index.scan_shard(shard, after=mark, limit=self._shard_limit))
        jobs = self._index.get_many(ids)
        new_mark = mark
        holding = False
        for job_id in ids:
            report.examined += 1
            job = jobs.get(job_id)
            if job is not None and not job.status.terminal:
                job = self._checked(job, now, report)
                if not job.status.terminal:
                    report.active += 1
                    if holding or job.created_at > now - WATCH_AFTER or len(still) >= WATCH_LIMIT:
                        holding = True
                    elif job_id not in still:
                        still.append(job_id)  # old: watched from now on, and the mark may pass it
            if not holding:
                new_mark = job_id
        return new_mark, tuple(still)

    def _active(self, watched: tuple[str, ...], report: SweepReport, now: datetime) -> list[str]:
        """The watched jobs that are still not terminal, after checking each."""
        if not watched:
            return []
        jobs = self._index.get_many(list(dict.fromkeys(watched)))
        active = []
        for job_id, job in jobs.items():
            report.examined += 1
            if job.status.terminal:
                continue
            checked = self._checked(job, now, report)
            if not checked.status.terminal:
                report.active += 1
                active.append(job_id)
        return active

    def _checked(self, job: Job, now: datetime, report: SweepReport) -> Job:
        """``job`` after the sweeper's check; as it was if the check could not be made."""
        try:
            return self._check(job, now, report)
        except DependencyUnavailableError:
            _log.exception("sweeping job %s failed; the next sweep tries again", job.job_id)
            report.errors += 1
            return job

    def _check(self, job: Job, now: datetime, report: SweepReport) -> Job:
        with self._events.job_scope(job.job_id, job.type):
            if job.status is JobStatus.RUNNING:
                if job.lease_expires_at is None or job.lease_expires_at > now:
                    return job
                return self._recover_lost(job, now, report)
            if job.status is JobStatus.QUEUED and self._stale(job, now):
                return self._resend(job, now, report)
            return job

    def _stale(self, job: Job, now: datetime) -> bool:
        return job.available_at <= now - self._stuck_after and job.updated_at <= now - self._stuck_after

    def _recover_lost(self, job: Job, now: datetime, report: SweepReport) -> Job:
        retry = job.attempts < job.max_attempts
        error = worker_lost(job.attempts, job.max_attempts, retryable=retry)
        history = AttemptFailure.of(error, attempt=job.attempts, at=now)
        kept, dropped = appended_history(job, (history,), self._history_limit)
        change = JobChange(
            status=JobStatus.QUEUED if retry else JobStatus.FAILED,
            at=now,
            error=error,
            history=kept,
            history_dropped=dropped,
            available_at=now if retry else UNSET,
            finished_at=UNSET if retry else now,
            release_lease=True,
        )
        try:
            changed = self._repo.update(job.job_id, change, expect=Expect.holding(job))
        except ConditionFailedError as rejected:
            return rejected.current or job  # someone else moved it on: nothing to do
        message = JobMessage.of(changed)
        if retry:
            report.requeued += 1
            self._events.requeued(changed, "lease expired: the worker crashed or timed out")
            self._send(message, changed)
        else:
            report.failed += 1
            self._events.failed(changed, None)
            self._queue.send_to_dead_letter(message)
            self._events.dead_lettered(changed, DeadLetterRoute.SWEEPER)
        return changed

    def _resend(self, job: Job, now: datetime, report: SweepReport) -> Job:
        """A fresh message for a job that stays ``queued`` (touching ``updated_at`` restarts its bound)."""
        change = JobChange(status=JobStatus.QUEUED, at=now)
        try:
            touched = self._repo.update(
                job.job_id, change, expect=Expect.status(JobStatus.QUEUED, attempts=job.attempts)
            )
        except ConditionFailedError as rejected:
            return rejected.current or job
        report.resent += 1
        self._events.resent(touched, f"queued for over {self._stuck_after.total_seconds():g} s without a run")
        self._send(JobMessage.of(touched), touched)
        return touched

    def _send(self, message: JobMessage, job: Job) -> None:
        # A failure here leaves the job queued without a message; the next sweeps re-enqueue it.
        self._queue.send(message)
