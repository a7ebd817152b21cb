"""Powertools Logger, Metrics and (only when tracing is on) Tracer, created on first use."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from jobq.caching import per_process

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

F = TypeVar("F", bound=Callable[..., Any])


@per_process
def get_logger() -> Logger:
    """The JSON logger every jobq module and job handler shares (service from POWERTOOLS_SERVICE_NAME)."""
    from aws_lambda_powertools import Logger

    return Logger(utc=True)


@per_process
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
