"""JobEvents on Powertools: lifecycle events as structured log lines and EMF metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from jobq.domain.models import Job
from jobq.domain.ports import DeadLetterRoute, JobEvents

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics


class PowertoolsJobEvents(JobEvents):
    """Lifecycle events as structured log lines and EMF metrics."""

    def __init__(self, logger: Logger, metrics: Metrics) -> None:
        self._logger = logger
        self._metrics = metrics

    @contextmanager
    def job_scope(self, job_id: str, job_type: str) -> Iterator[None]:
        # Thread-local keys: correct even when several invocations share a process (the local runtime).
        self._logger.thread_safe_append_keys(job_id=job_id, job_type=job_type)
        try:
            yield
        finally:
            self._logger.thread_safe_remove_keys(["job_id", "job_type"])

    def _count(self, name: str, value: float = 1) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def _duration(self, duration_ms: float | None) -> None:
        if duration_ms is not None:
            from aws_lambda_powertools.metrics import MetricUnit

            self._metrics.add_metric(name="JobDuration", unit=MetricUnit.Milliseconds, value=duration_ms)

    def submitted(self, job: Job) -> None:
        self._logger.info(
            "job submitted",
            extra={"job_id": job.job_id, "job_type": job.type, "available_at": job.available_at.isoformat()},
        )
        self._count("JobsSubmitted")

    def started(self, job: Job) -> None:
        self._logger.info("job started", extra={"attempt": job.attempts, "max_attempts": job.max_attempts})

    def succeeded(self, job: Job, duration_ms: float) -> None:
        self._logger.info("job succeeded", extra={"attempt": job.attempts, "duration_ms": round(duration_ms, 3)})
        self._count("JobsSucceeded")
        self._duration(duration_ms)

    def retry_scheduled(self, job: Job, delay_seconds: float, duration_ms: float) -> None:
        self._logger.warning(
            "job retry scheduled",
            extra={
                "attempt": job.attempts,
                "max_attempts": job.max_attempts,
                "delay_seconds": delay_seconds,
                "error": job.error.model_dump() if job.error else None,
            },
        )
        self._count("JobsRetried")
        self._duration(duration_ms)

    def failed(self, job: Job, duration_ms: float | None) -> None:
        self._logger.error(
            "job failed",
            extra={"attempt": job.attempts, "error": job.error.model_dump() if job.error else None},
        )
        self._count("JobsFailed")
        self._duration(duration_ms)

    def dead_lettered(self, job: Job, route: DeadLetterRoute) -> None:
        self._logger.error("job dead-lettered", extra={"route": route})
        self._count("JobsDeadLettered")

    def skipped(self, job_id: str, reason: str) -> None:
        self._logger.info("delivery skipped", extra={"reason": reason})

    def deferred(self, job_id: str, delay_seconds: float, reason: str) -> None:
        self._logger.info("message deferred", extra={"reason": reason, "delay_seconds": delay_seconds})

    def cancelled(self, job: Job) -> None:
        self._logger.info("job cancelled", extra={"job_id": job.job_id, "job_type": job.type})
        self._count("JobsCancelled")

    def cancel_requested(self, job: Job) -> None:
        self._logger.info("job cancel requested", extra={"job_id": job.job_id, "job_type": job.type})
        self._count("JobsCancelRequested")

    def requeued(self, job: Job, reason: str) -> None:
        self._logger.info("job requeued", extra={"job_id": job.job_id, "job_type": job.type, "reason": reason})
        self._count("JobsRequeued")

    def resent(self, job: Job, reason: str) -> None:
        self._logger.info("job message resent", extra={"job_id": job.job_id, "job_type": job.type, "reason": reason})
        self._count("JobsResent")
