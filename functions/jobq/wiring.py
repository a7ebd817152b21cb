"""Cached factories that assemble the domain with its adapters, on first use (never at import).

The functions' handlers and the ``jobq`` command build their services here, from settings, so there
is one way to put jobq together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from jobq.adapters.aws import dynamodb_client, sqs_client
from jobq.adapters.dynamodb import DynamoDBJobRepository, DynamoDBSweepIndex, JobsTable
from jobq.adapters.events import PowertoolsJobEvents
from jobq.adapters.sqs import SqsDeadLetterQueue, SqsJobQueue
from jobq.caching import clear_all, per_process
from jobq.domain.ports import IdempotencyStore, JobEvents
from jobq.domain.registry import JobRegistry
from jobq.jobs import build_registry
from jobq.observability import get_logger, get_metrics
from jobq.settings import ApiSettings, Settings, get_api_settings, get_settings, get_sweeper_settings
from jobq.timeouts import call_with_time_limit

if TYPE_CHECKING:
    from jobq.adapters.idempotency import PowertoolsIdempotencyStore
    from jobq.domain.redrive import Redriver
    from jobq.domain.runner import JobRunner
    from jobq.domain.service import JobService
    from jobq.domain.sweeper import Sweeper

# Each function's use cases are imported by the factory that builds them, so that a function's cold start
# imports its own alone: the worker imports neither the API's service (nor its documents) nor the sweeper.


class SystemClock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@per_process
def get_registry() -> JobRegistry:
    """The deployment's job types."""
    return build_registry()


@per_process
def get_job_events() -> JobEvents:
    """The process's lifecycle event sink (Powertools logs and metrics)."""
    return PowertoolsJobEvents(get_logger(), get_metrics())


def jobs_table(settings: Settings) -> JobsTable:
    """The jobs table the settings name."""
    return JobsTable(dynamodb_client(), settings.jobs_table_name, shards=settings.list_shards)


def build_queue(settings: Settings) -> SqsJobQueue:
    """The jobs queue and its DLQ the settings name."""
    return SqsJobQueue(sqs_client(), settings.jobs_queue_url, settings.jobs_dlq_url)


@per_process
def get_queue() -> SqsJobQueue:
    """The process's jobs queue and DLQ."""
    return build_queue(get_settings())


def build_job_service(
    settings: ApiSettings, *, events: JobEvents, idempotency: IdempotencyStore | None = None
) -> JobService:
    """The API's use cases on the resources the settings name."""
    from jobq.domain.service import JobService

    table = jobs_table(settings)
    return JobService(
        max_retries=settings.max_retries,
        repository=DynamoDBJobRepository(table, ttl_days=settings.job_ttl_days),
        queue=build_queue(settings),
        registry=get_registry(),
        clock=SystemClock(),
        events=events,
        max_attempts=settings.max_attempts,
        idempotency=idempotency,
        sweep_index=DynamoDBSweepIndex(table),
    )


@per_process
def get_idempotency_store() -> PowertoolsIdempotencyStore:
    """Idempotency-Key records (Powertools idempotency on IdempotencyTable)."""
    from jobq.adapters.idempotency import PowertoolsIdempotencyStore  # the API's alone: not in others' cold start

    settings = get_api_settings()
    return PowertoolsIdempotencyStore(
        dynamodb_client(),
        settings.idempotency_table_name,
        expires_after_seconds=settings.idempotency_expires_after_seconds,
    )


class IdempotencyOnFirstUse:
    """The API's IdempotencyStore, built by the first request that carries an Idempotency-Key.

    Powertools idempotency imports boto3: requests without a key never pay for it.
    """

    def __init__(self) -> None:
        self._context: Any = None

    def register_lambda_context(self, context: Any) -> None:
        """The invocation an in-progress record expires with (see PowertoolsIdempotencyStore)."""
        self._context = context

    def once(self, key: str, fingerprint: Mapping[str, Any], action: Callable[[], str]) -> tuple[str, bool]:
        store = get_idempotency_store()
        store.register_lambda_context(self._context)
        return store.once(key, fingerprint, action)


@per_process
def get_idempotency_gate() -> IdempotencyOnFirstUse:
    """The API's idempotency store, as the handler registers each invocation with it."""
    return IdempotencyOnFirstUse()


@per_process
def get_job_service() -> JobService:
    """The API function's use cases."""
    return build_job_service(get_api_settings(), events=get_job_events(), idempotency=get_idempotency_gate())


API_REDRIVE_LIMIT = 100
"""DLQ messages one API call lists or redrives: well inside the API function's timeout."""


@per_process
def get_redriver() -> Redriver:
    """The API function's DLQ listing and redrive (admins only)."""
    from jobq.domain.redrive import Redriver

    settings = get_api_settings()
    dead_letters = SqsDeadLetterQueue(sqs_client(), settings.jobs_dlq_url, wait_seconds=0)
    return Redriver(service=get_job_service(), dead_letters=dead_letters, max_messages=API_REDRIVE_LIMIT)


@per_process
def get_job_runner() -> JobRunner:
    """The worker's job runner."""
    from jobq.domain.runner import JobRunner

    settings = get_settings()
    return JobRunner(
        repository=DynamoDBJobRepository(jobs_table(settings), ttl_days=settings.job_ttl_days),
        queue=get_queue(),
        registry=get_registry(),
        clock=SystemClock(),
        events=get_job_events(),
        retry_policy=settings.retry_policy,
        max_receive_count=settings.max_attempts,
        call_with_time_limit=call_with_time_limit,
        history_limit=settings.history_limit,
    )


@per_process
def get_sweeper() -> Sweeper:
    """The sweeper of stuck jobs."""
    from jobq.domain.sweeper import Sweeper

    settings = get_sweeper_settings()
    table = jobs_table(settings)
    return Sweeper(
        repository=DynamoDBJobRepository(table, ttl_days=settings.job_ttl_days),
        index=DynamoDBSweepIndex(table),
        queue=get_queue(),
        clock=SystemClock(),
        events=get_job_events(),
        stuck_after_seconds=settings.stuck_after_seconds,
        dead_letters=SqsDeadLetterQueue(sqs_client(), settings.jobs_dlq_url, wait_seconds=0),
        history_limit=settings.history_limit,
    )


def clear_caches() -> None:
    """Forget every cached setting, client and service (tests switch environments with this)."""
    clear_all()
