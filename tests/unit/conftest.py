"""Shared fixtures of the unit tier: the domain wired to the in-memory fakes, and an HTTP API driver."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import pytest

from jobq import JobRegistry, JobType, RetryPolicy
from jobq.domain.models import Delivery, Job, JobMessage, JobStatus, new_job_id
from jobq.domain.redrive import Redriver
from jobq.domain.runner import JobRunner
from jobq.domain.service import JobService
from jobq.handlers.api import ApiDependencies, build_app
from jobq.handlers.http import treat_body_as_json
from jobq.jobs import build_registry
from jobq_local.events import LambdaContext, http_api_event, iam_authorizer
from tests.support.callers import ADMIN, ALICE, CALLER
from tests.support.fakes import (
    FakeClock,
    FakeDeadLetterQueue,
    FakeQueue,
    InMemoryIdempotencyStore,
    InMemoryJobRepository,
    RecordingEvents,
    run_inline,
)

MAX_ATTEMPTS = 3
MAX_RECEIVE_COUNT = 3
LIST_SHARDS = 4
MAX_BODY_BYTES = 4096


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo() -> InMemoryJobRepository:
    return InMemoryJobRepository()


@pytest.fixture
def queue() -> FakeQueue:
    return FakeQueue()


@pytest.fixture
def events() -> RecordingEvents:
    return RecordingEvents()


@pytest.fixture
def registry() -> JobRegistry:
    return build_registry()


@pytest.fixture
def idempotency() -> InMemoryIdempotencyStore:
    return InMemoryIdempotencyStore()


@pytest.fixture
def service(
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    registry: JobRegistry,
    clock: FakeClock,
    events: RecordingEvents,
    idempotency: InMemoryIdempotencyStore,
) -> JobService:
    return JobService(
        repository=repo,
        queue=queue,
        registry=registry,
        clock=clock,
        events=events,
        max_attempts=MAX_ATTEMPTS,
        idempotency=idempotency,
    )


@pytest.fixture
def put_job(repo: InMemoryJobRepository, clock: FakeClock) -> Callable[..., Job]:
    """Store a job directly (bypassing the service) with any fields overridden."""
    counter = iter(range(1, 1_000_000))

    def put(**fields: Any) -> Job:
        now = clock.now()
        defaults: dict[str, Any] = {
            # Distinct, time-ordered ids even when the clock does not move.
            "job_id": new_job_id(now + timedelta(milliseconds=next(counter))),
            "type": "echo",
            "owner": CALLER.principal,
            "status": JobStatus.QUEUED,
            "payload": {},
            "max_attempts": MAX_ATTEMPTS,
            "created_at": now,
            "updated_at": now,
            "available_at": now,
        }
        job = Job(**(defaults | fields))
        repo.jobs[job.job_id] = job
        return job

    return put


def delivery_for(job: Job, receive_count: int = 1, message_type: str | None = None) -> Delivery:
    return Delivery(message=JobMessage(job_id=job.job_id, type=message_type or job.type), receive_count=receive_count)


@pytest.fixture
def deliver() -> Callable[..., Delivery]:
    return delivery_for


@pytest.fixture
def make_runner(
    repo: InMemoryJobRepository, queue: FakeQueue, registry: JobRegistry, clock: FakeClock, events: RecordingEvents
) -> Callable[..., JobRunner]:
    def make(
        *,
        job_types: Iterable[JobType[Any]] | None = None,
        call_with_time_limit: Callable[[Callable[[], Any], float], Any] = run_inline,
        retry_policy: RetryPolicy | None = None,
        max_receive_count: int = MAX_RECEIVE_COUNT,
        seed: int = 7,
        progress_interval: float = 1.0,
    ) -> JobRunner:
        return JobRunner(
            repository=repo,
            queue=queue,
            registry=registry if job_types is None else JobRegistry(job_types),
            clock=clock,
            events=events,
            retry_policy=retry_policy or RetryPolicy(),
            max_receive_count=max_receive_count,
            call_with_time_limit=call_with_time_limit,
            rng=random.Random(seed),
            progress_interval=progress_interval,
        )

    return make


class ApiResponse:
    """A resolved API Gateway proxy response, body decoded."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.status: int = raw["statusCode"]
        self.headers: dict[str, str] = {str(k).lower(): v for k, v in (raw.get("headers") or {}).items()}
        body = raw.get("body")
        self.json: Any = json.loads(body) if body else None

    def __repr__(self) -> str:
        return f"ApiResponse({self.status}, {self.raw.get('body', '')[:300]!r})"


class ApiDriver:
    """Calls the API app with real HTTP API payload 2.0 events, like the Lambda entry point does.

    Requests come from ``caller`` (an IAM principal, as the AWS_IAM authorizer passes it; None: no
    authorizer context at all); ``ADMIN`` is the one admin.
    """

    def __init__(self, service: JobService, max_body_bytes: int) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes
        self.dead_letters = FakeDeadLetterQueue()
        self.app = build_app(
            ApiDependencies(
                service=lambda: self.service,
                redriver=lambda: Redriver(service=self.service, dead_letters=self.dead_letters),
                max_body_bytes=lambda: self.max_body_bytes,
                admins=lambda: frozenset({ADMIN}),
            )
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | str | None = None,
        json_body: Any = None,
        query: str = "",
        headers: dict[str, str] | None = None,
        caller: str | None = ALICE,
    ) -> ApiResponse:
        if json_body is not None:
            body = json.dumps(json_body)
        if headers is None:
            headers = {"content-type": "application/json"} if body else {}
        authorizer = None if caller is None else iam_authorizer(caller)
        event = http_api_event(method, path, query=query, headers=headers, body=body, authorizer=authorizer)
        raw = self.app.resolve(treat_body_as_json(event), LambdaContext("ApiFunction", timeout_seconds=15))
        response = ApiResponse(raw)
        assert response.status < 500 or response.status == 503, response
        return response

    def get(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> ApiResponse:
        return self.request("POST", path, **kwargs)


@pytest.fixture
def api(service: JobService) -> ApiDriver:
    return ApiDriver(service, MAX_BODY_BYTES)
