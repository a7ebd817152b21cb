"""An attempt's progress reports: written to its job at most once a second, only while the attempt holds
the lease, and the way a cancel request reaches a running handler."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from jobq.domain.errors import DependencyUnavailableError, JobCancelled
from jobq.domain.models import MAX_PROGRESS_MESSAGE, Job, JobStatus, Progress
from jobq.domain.ports import Clock, ConditionFailedError, Expect, JobChange, JobRepository

_log = logging.getLogger(__name__)

MIN_WRITE_INTERVAL_SECONDS = 1.0


class AttemptProgress:
    """The ProgressSink of one attempt (see ``JobContext.progress``).

    A report inside the interval is kept, not written; the attempt's final write carries the last one
    (``pending``). ``stop_reason`` is set once the attempt was told to stop.
    """

    def __init__(
        self,
        job: Job,
        *,
        repository: JobRepository,
        clock: Clock,
        interval: float = MIN_WRITE_INTERVAL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._job = job
        self._repo = repository
        self._clock = clock
        self._interval = interval
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last_look: float | None = None
        self.pending: Progress | None = None
        """The latest report not yet written to the job (None: nothing to write)."""
        self.writes = 0
        self.stop_reason: str | None = None
        """Why the attempt was told to stop: a caller cancelled the job, or the lease was lost."""
        self.lease_lost = False

    def report(self, done: float, total: float | None, message: str | None) -> None:
        with self._lock:
            self._raise_if_stopped()
            text = None if message is None else str(message)[:MAX_PROGRESS_MESSAGE]
            self.pending = Progress(done=done, total=total, message=text, updated_at=self._clock.now())
            if self._due():
                self._write()
            self._raise_if_stopped()

    def check_cancelled(self) -> None:
        with self._lock:
            self._raise_if_stopped()
            if self._due():
                try:
                    current = self._repo.get(self._job.job_id)
                except DependencyUnavailableError as exc:
                    _log.warning("could not read job %s for a cancel request: %s", self._job.job_id, exc.message)
                    return
                self._look_at(current)
            self._raise_if_stopped()

    def _due(self) -> bool:
        now = self._monotonic()
        if self._last_look is not None and now - self._last_look < self._interval:
            return False
        self._last_look = now
        return True

    def _write(self) -> None:
        change = JobChange(status=JobStatus.RUNNING, at=self._clock.now(), progress=self.pending)
        expect = Expect.holding(self._job)
        try:
            updated = self._repo.update(self._job.job_id, change, expect=expect)
        except ConditionFailedError as rejected:
            self._look_at(rejected.current)
            return
        except DependencyUnavailableError as exc:  # progress is best effort; the job goes on
            _log.warning("could not record progress of job %s: %s", self._job.job_id, exc.message)
            return
        self.writes += 1
        self.pending = None
        self._look_at(updated)

    def _look_at(self, current: Job | None) -> None:
        if current is None or current.status is not JobStatus.RUNNING or current.lease_id != self._job.lease_id:
            state = "gone" if current is None else current.status.value
            self.lease_lost = True
            self.stop_reason = f"this attempt no longer holds the job's lease (the job is {state})"
        elif current.cancel_requested:
            self.stop_reason = "a caller cancelled the job while it ran"

    def _raise_if_stopped(self) -> None:
        if self.stop_reason is not None:
            raise JobCancelled(self.stop_reason)
