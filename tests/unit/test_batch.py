"""POST /jobs/batch: up to 25 jobs, validated each, stored and enqueued all or none."""

from __future__ import annotations

from typing import Any

import pytest

from jobq.domain.documents import SubmitJobRequest
from jobq.domain.errors import InvalidBatchError
from jobq.domain.models import JobStatus
from jobq.domain.service import JobService
from tests.support.callers import CALLER
from tests.support.fakes import FakeQueue, InMemoryJobRepository, RecordingEvents

from .conftest import ApiDriver


def echo(n: int, **fields: Any) -> dict[str, Any]:
    return {"type": "echo", "payload": {"n": n}, **fields}


def test_a_batch_is_stored_and_enqueued_in_request_order(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue, events: RecordingEvents
) -> None:
    response = api.post(
        "/jobs/batch",
        json_body={"jobs": [echo(1), echo(2, delay_seconds=30), {"type": "sleep", "payload": {"seconds": 1}}]},
    )
    assert response.status == 202, response
    items = response.json["items"]
    assert [(job["type"], job["payload"]) for job in items] == [
        ("echo", {"n": 1}),
        ("echo", {"n": 2}),
        ("sleep", {"seconds": 1}),
    ]
    assert all(job["status"] == "queued" for job in items)
    assert [message.job_id for message, _ in queue.sent] == [job["job_id"] for job in items]
    assert [delay for _, delay in queue.sent] == [0, 30, 0]
    assert set(repo.jobs) == {job["job_id"] for job in items}
    assert events.names().count("submitted") == 3


def test_one_invalid_job_rejects_the_batch_naming_each_by_index(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    body = {"jobs": [echo(1), {"type": "nosuch"}, echo(3), {"type": "sleep", "payload": {"seconds": 99}}]}
    response = api.post("/jobs/batch", json_body=body)
    assert response.status == 422, response
    error = response.json["error"]
    assert error["code"] == "invalid_batch"
    assert error["message"] == "2 of 4 jobs are invalid; none was submitted"
    assert [(item["index"], item["code"]) for item in error["details"]] == [
        (1, "unknown_job_type"),
        (3, "invalid_payload"),
    ]
    assert error["details"][1]["details"][0]["loc"] == ["seconds"]
    assert repo.jobs == {}
    assert queue.sent == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"jobs": []}, 422),
        ({"jobs": [echo(n) for n in range(26)]}, 422),
        ({"jobs": [echo(1)], "extra": 1}, 422),
        ({}, 422),
    ],
)
def test_the_batch_itself_must_hold_1_to_25_jobs(
    api: ApiDriver, repo: InMemoryJobRepository, body: Any, status: int
) -> None:
    response = api.post("/jobs/batch", json_body=body)
    assert response.status == status, response
    assert repo.jobs == {}


def test_when_the_queue_is_down_no_job_of_the_batch_is_left_behind(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    queue.unavailable = True
    response = api.post("/jobs/batch", json_body={"jobs": [echo(1), echo(2)]})
    assert response.status == 503
    assert repo.jobs == {}


def test_a_repeated_idempotency_key_returns_the_same_jobs_and_sends_nothing(api: ApiDriver, queue: FakeQueue) -> None:
    headers = {"content-type": "application/json", "idempotency-key": "batch-7"}
    first = api.post("/jobs/batch", json_body={"jobs": [echo(1), echo(2)]}, headers=headers)
    again = api.post("/jobs/batch", json_body={"jobs": [echo(1), echo(2)]}, headers=headers)
    assert (first.status, again.status) == (202, 200)
    assert [job["job_id"] for job in again.json["items"]] == [job["job_id"] for job in first.json["items"]]
    assert len(queue.sent) == 2
    other = api.post("/jobs/batch", json_body={"jobs": [echo(3)]}, headers=headers)
    assert (other.status, other.json["error"]["code"]) == (409, "idempotency_key_reused")


def test_the_service_refuses_a_job_too_large_for_the_store_before_writing_any(
    service: JobService, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    from jobq.domain.errors import PayloadTooLargeError

    big = SubmitJobRequest(type="echo", payload={"x": "y" * 420_000})
    with pytest.raises(PayloadTooLargeError):
        service.submit_batch([SubmitJobRequest(type="echo"), big], CALLER)
    assert repo.jobs == {}
    assert queue.sent == []
    with pytest.raises(InvalidBatchError):
        service.submit_batch([SubmitJobRequest(type="nosuch")], CALLER)
    assert {job.status for job in service.submit_batch([SubmitJobRequest(type="echo")], CALLER)} == {JobStatus.QUEUED}
