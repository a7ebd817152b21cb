"""Cached factories that assemble the domain with its adapters, on first use (never at import)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING

from jobq import observability, settings
from jobq.adapters import aws
from jobq.adapters.aws import dynamodb_client, sqs_client
from jobq.adapters.dynamodb import DynamoDBJobRepository, DynamoDBSweepIndex
from jobq.adapters.sqs import SqsDeadLetterQueue, SqsJobQueue
from jobq.domain.runner import JobRunner
from jobq.domain.service import JobService
from jobq.domain.sweeper import Sweeper
from jobq.jobs import build_registry
from jobq.observability import get_job_events
from jobq.registry import JobRegistry
from jobq.settings import Settings, get_api_settings, get_settings, get_sweeper_settings
from jobq.timeouts import call_with_time_limit

if TYPE_CHECKING:
    from jobq.adapters.idempotency import PowertoolsIdempotencyStore


class SystemClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@cache
def get_registry() -> JobRegistry:
    """The deployment's job types."""
    return build_registry()


def _repository(settings: Settings) -> DynamoDBJobRepository:
    return DynamoDBJobRepository(
        dynamodb_client(),
        settings.jobs_table_name,
        ttl_days=settings.job_ttl_days,
        shards=settings.list_shards,
    )


@cache
def get_queue() -> SqsJobQueue:
    """The jobs queue and its DLQ."""
    settings = get_settings()
    return SqsJobQueue(sqs_client(), settings.jobs_queue_url, settings.jobs_dlq_url)


@cache
def get_idempotency_store() -> PowertoolsIdempotencyStore:
    """Idempotency-Key records (Powertools idempotency on IdempotencyTable)."""
    from jobq.adapters.idempotency import PowertoolsIdempotencyStore  # the API's alone: not in others' cold start

    settings = get_api_settings()
    return PowertoolsIdempotencyStore(
        dynamodb_client(),
        settings.idempotency_table_name,
        expires_after_seconds=settings.idempotency_expires_after_seconds,
    )


@cache
def get_job_service() -> JobService:
    """The API's use cases."""
    settings = get_api_settings()
    return JobService(
        repository=_repository(settings),
        queue=get_queue(),
        registry=get_registry(),
        clock=SystemClock(),
        events=get_job_events(),
        max_attempts=settings.max_attempts,
        list_shards=settings.list_shards,
        idempotency=get_idempotency_store(),
        sweep_index=DynamoDBSweepIndex(_repository(settings)),
    )


@cache
def get_job_runner() -> JobRunner:
    """The worker's job runner."""
    settings = get_settings()
    return JobRunner(
        repository=_repository(settings),
        queue=get_queue(),
        registry=get_registry(),
        clock=SystemClock(),
        events=get_job_events(),
        retry_policy=settings.retry_policy,
        max_receive_count=settings.max_attempts,
        call_with_time_limit=call_with_time_limit,
    )


@cache
def get_sweeper() -> Sweeper:
    """The sweeper of stuck jobs."""
    settings = get_sweeper_settings()
    repository = _repository(settings)
    return Sweeper(
        repository=repository,
        index=DynamoDBSweepIndex(repository),
        queue=get_queue(),
        clock=SystemClock(),
        events=get_job_events(),
        stuck_after_seconds=settings.stuck_after_seconds,
        dead_letters=SqsDeadLetterQueue(sqs_client(), settings.jobs_dlq_url, wait_seconds=0),
    )


def clear_caches() -> None:
    """Forget every cached setting, client and service (tests switch environments with this)."""
    for factory in (
        get_registry,
        get_queue,
        get_job_service,
        get_job_runner,
        get_idempotency_store,
        get_sweeper,
        settings.get_sweeper_settings,
        settings.get_settings,
        settings.get_api_settings,
        aws.dynamodb_client,
        aws.sqs_client,
        observability.get_logger,
        observability.get_metrics,
        observability.get_job_events,
    ):
        factory.cache_clear()
    for name in ("jobq.handlers.api", "jobq.handlers.worker", "jobq.handlers.sweeper"):
        handler_module = sys.modules.get(name)
        if handler_module is not None:
            handler_module._entrypoint.cache_clear()
