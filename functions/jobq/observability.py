"""Powertools Logger, Metrics and (only when tracing is on) Tracer, created on first use."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, cast

from jobq.domain.models import Job

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

F = TypeVar("F", bound=Callable[..., Any])


@cache
def get_logger() -> Logger:
    """The JSON logger every jobq module and job handler shares (service from POWERTOOLS_SERVICE_NAME)."""
    from aws_lambda_powertools import Logger

    return Logger(utc=True)


@cache
def get_metrics() -> Metrics:
    """CloudWatch EMF metrics (namespace from POWERTOOLS_METRICS_NAMESPACE)."""
    from aws_lambda_powertools import Metrics

    return Metrics()


def tracing_enabled() -> bool:
    """Tracing is on only when POWERTOOLS_TRACE_DISABLED says so and we run inside Lambda."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "true").strip().lower() in {"1", "true", "yes"}
    return not disabled and "AWS_LAMBDA_FUNCTION_NAME" in os.environ


def traced(handler: F) -> F:
    """``handler`` under Powertools Tracer if tracing is on; as is (X-Ray never imported) if off."""
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    tracer = Tracer(patch_modules=["boto3", "botocore"])
    return cast("F", tracer.capture_lambda_handler(handler))


def instrument(handler: F, *, correlation_id_path: str | None = None) -> F:
    """A Lambda handler with the Powertools stack every jobq function uses: tracer, logger context, metrics."""
    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    logged = get_logger().inject_lambda_context(
        get_metrics().log_metrics(handler), correlation_id_path=correlation_id_path
    )
    return traced(cast("F", logged))


class PowertoolsJobEvents:
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

    def dead_lettered(self, job: Job, route: str) -> None:
        self._logger.error("job dead-lettered", extra={"route": route})
        self._count("JobsDeadLettered")

    def skipped(self, job_id: str, reason: str) -> None:
        self._logger.info("delivery skipped", extra={"reason": reason})

    def released(self, job_id: str, delay_seconds: float, reason: str) -> None:
        self._logger.info("message released", extra={"reason": reason, "delay_seconds": delay_seconds})

    def cancelled(self, job: Job) -> None:
        self._logger.info("job cancelled", extra={"job_id": job.job_id, "job_type": job.type})
        self._count("JobsCancelled")

    def requeued(self, job: Job, reason: str) -> None:
        self._logger.info("job requeued", extra={"job_id": job.job_id, "job_type": job.type, "reason": reason})
        self._count("JobsRequeued")


@cache
def get_job_events() -> PowertoolsJobEvents:
    """The process's lifecycle event sink."""
    return PowertoolsJobEvents(get_logger(), get_metrics())
