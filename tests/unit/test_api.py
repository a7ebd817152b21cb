"""The API function's HTTP surface (README, "HTTP API"), driven with real HTTP API payload 2.0 events."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobq.domain.models import Job, JobMessage, JobStatus, Progress, new_job_id
from jobq.handlers.http import treat_body_as_json
from jobq.jobs import build_registry
from jobq_local.events import LambdaContext, http_api_event, iam_authorizer
from tests.support.callers import ALICE
from tests.support.fakes import FakeClock, FakeQueue, InMemoryJobRepository

from .conftest import MAX_ATTEMPTS, MAX_BODY_BYTES, ApiDriver, ApiResponse

DOCUMENT_FIELDS = {
    "job_id",
    "type",
    "owner",
    "status",
    "payload",
    "result",
    "error",
    "attempts",
    "max_attempts",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "status_url",
    "history",
    "history_dropped",
    "progress",
    "cancel_requested",
}
ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
PutJob = Callable[..., Job]


def assert_error(response: ApiResponse, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status == status, response
    assert response.headers.get("content-type", "").startswith("application/json")
    assert isinstance(response.json, dict)
    assert set(response.json) == {"error"}, response.json
    error = response.json["error"]
    assert isinstance(error["code"], str)
    assert error["code"]
    assert isinstance(error["message"], str)
    assert error["message"]
    assert set(error) <= {"code", "message", "details"}
    assert "Traceback" not in json.dumps(response.json)
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_job_document(document: dict[str, Any]) -> None:
    assert set(document) == DOCUMENT_FIELDS
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", document["job_id"])
    assert document["status_url"] == f"/jobs/{document['job_id']}"
    for name in ("created_at", "updated_at"):
        assert ISO_UTC.match(document[name]), document[name]
    for name in ("started_at", "finished_at"):
        assert document[name] is None or ISO_UTC.match(document[name])
    assert document["error"] is None or set(document["error"]) == {"type", "message", "retryable"}


def submit(api: ApiDriver, job_type: str = "echo", payload: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": job_type}
    if payload is not None:
        body["payload"] = payload
    response = api.post("/jobs", json_body=body)
    assert response.status == 202, response
    return response.json


# -- POST /jobs -----------------------------------------------------------------------------------


def test_submit_returns_202_with_the_job_and_location(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    response = api.post("/jobs", json_body={"type": "echo", "payload": {"hello": "world", "n": [1, 2]}})
    assert response.status == 202, response
    assert response.headers["content-type"].startswith("application/json")
    document = response.json
    assert_job_document(document)
    assert response.headers["location"] == f"/jobs/{document['job_id']}" == document["status_url"]
    assert document["type"] == "echo"
    assert document["status"] == "queued"
    assert document["payload"] == {"hello": "world", "n": [1, 2]}
    assert document["result"] is None
    assert document["error"] is None
    assert document["history"] == []
    assert document["attempts"] == 0
    assert document["max_attempts"] == MAX_ATTEMPTS
    assert document["created_at"] == "2026-01-01T12:00:00.000Z"
    assert document["updated_at"] == "2026-01-01T12:00:00.000Z"
    assert document["started_at"] is None
    assert document["finished_at"] is None
    assert repo.jobs[document["job_id"]].status is JobStatus.QUEUED
    assert queue.sent == [(JobMessage(job_id=document["job_id"], type="echo"), 0)]


def test_submit_defaults_payload_and_delay(api: ApiDriver, queue: FakeQueue) -> None:
    document = submit(api)
    assert document["payload"] == {}
    assert queue.sent[0][1] == 0


def test_submit_with_delay(api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue, clock: FakeClock) -> None:
    response = api.post("/jobs", json_body={"type": "echo", "delay_seconds": 900})
    assert response.status == 202, response
    job_id = response.json["job_id"]
    assert queue.sent == [(JobMessage(job_id=job_id, type="echo"), 900)]
    assert repo.jobs[job_id].available_at == clock.now() + timedelta(seconds=900)


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/x-www-form-urlencoded"},  # what curl -d sends
        {"content-type": "text/plain"},
        {},
        {"Content-Type": "application/json; charset=utf-8"},
    ],
    ids=["form", "text", "none", "json-charset"],
)
def test_body_is_json_whatever_the_content_type(api: ApiDriver, queue: FakeQueue, headers: dict[str, str]) -> None:
    response = api.post("/jobs", body='{"type": "echo", "payload": {"via": "curl"}}', headers=headers)
    assert response.status == 202, response
    assert response.json["payload"] == {"via": "curl"}
    assert len(queue.sent) == 1


def test_base64_encoded_body_is_decoded(api: ApiDriver) -> None:
    event = http_api_event(
        "POST", "/jobs", headers={"content-type": "application/json"}, body="{}", authorizer=iam_authorizer(ALICE)
    )
    event["body"] = base64.b64encode(b'{"type": "echo", "payload": {"b64": true}}').decode()
    event["isBase64Encoded"] = True
    response = ApiResponse(api.app.resolve(treat_body_as_json(event), LambdaContext("ApiFunction", timeout_seconds=15)))
    assert response.status == 202, response
    assert response.json["payload"] == {"b64": True}


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "{",
        '{"type": "echo",}',
        "[]",
        '[{"type": "echo"}]',
        '"echo"',
        "42",
        "null",
        "true",
        "   ",
        '{"type": "echo", "payload": {"x": NaN}}',
        '{"type": "echo", "payload": {"x": Infinity}}',
        '{"type": "echo", "payload": {"x": -Infinity}}',
        '{"type": "echo", "payload": ' + '{"a": ' * 100 + "1" + "}" * 100 + "}",
        '{"type": "echo", "payload": {"a": ' + "[" * 100 + "]" * 100 + "}}",
        b'{"type": "echo", "payload": {"x": "\xff\xfe"}}',
    ],
    ids=[
        "text",
        "truncated",
        "trailing-comma",
        "empty-array",
        "array",
        "string",
        "number",
        "null",
        "true",
        "whitespace",
        "nan",
        "infinity",
        "minus-infinity",
        "deep-objects",
        "deep-arrays",
        "not-utf8",
    ],
)
def test_body_that_is_not_a_json_object_is_400(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue, body: str | bytes
) -> None:
    response = api.post("/jobs", body=body, headers={"content-type": "application/json"})
    assert_error(response, 400)
    assert repo.jobs == {}
    assert queue.sent == []


def test_empty_body_is_400(api: ApiDriver, repo: InMemoryJobRepository) -> None:
    # README "HTTP API": 400 when the body is not JSON; an empty body is not JSON (nor a missing field).
    response = api.post("/jobs", body="", headers={"content-type": "application/json"})
    assert_error(response, 400)
    assert repo.jobs == {}


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1E999"])
def test_number_that_overflows_to_infinity_is_rejected(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue, number: str
) -> None:
    # Like NaN and Infinity, a number JSON cannot carry back is refused, not stored (the table's codec
    # cannot encode it, so a real deployment would fail later with a 500).
    response = api.post("/jobs", body='{"type": "echo", "payload": {"x": ' + number + "}}")
    assert_error(response, response.status)
    assert response.status in {400, 422}
    assert repo.jobs == {}
    assert queue.sent == []


def test_nesting_within_the_limit_is_accepted(api: ApiDriver) -> None:
    body = '{"type": "echo", "payload": ' + '{"a": ' * 30 + "1" + "}" * 30 + "}"
    assert api.post("/jobs", body=body).status == 202


def _body_of_size(size: int, char: str = "x") -> str:
    prefix, suffix = '{"type": "echo", "payload": {"pad": "', '"}}'
    room = size - len((prefix + suffix).encode())
    body = prefix + char * (room // len(char.encode())) + suffix
    assert len(body.encode()) == size
    return body


def test_body_over_the_limit_is_413(api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue) -> None:
    response = api.post("/jobs", body=_body_of_size(MAX_BODY_BYTES + 1))
    error = assert_error(response, 413, "payload_too_large")
    assert str(MAX_BODY_BYTES) in error["message"]
    assert repo.jobs == {}
    assert queue.sent == []


def test_body_at_the_limit_is_accepted(api: ApiDriver) -> None:
    assert api.post("/jobs", body=_body_of_size(MAX_BODY_BYTES)).status == 202


def test_body_limit_counts_bytes_not_characters(api: ApiDriver) -> None:
    body = _body_of_size(MAX_BODY_BYTES + 2, char="\u00e9")  # two bytes per character in UTF-8
    assert len(body) < MAX_BODY_BYTES
    assert_error(api.post("/jobs", body=body), 413, "payload_too_large")


def test_body_limit_is_read_from_the_settings_callable(api: ApiDriver) -> None:
    api.max_body_bytes = 64
    assert_error(api.post("/jobs", json_body={"type": "echo", "payload": {"pad": "x" * 64}}), 413)
    assert api.post("/jobs", json_body={"type": "echo"}).status == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "type"),
        ({"payload": {}}, "type"),
        ({"type": "echo", "extra": 1}, "extra"),
        ({"type": "echo", "delay_seconds": 901}, "delay_seconds"),
        ({"type": "echo", "delay_seconds": -1}, "delay_seconds"),
        ({"type": "echo", "delay_seconds": 1.5}, "delay_seconds"),
        ({"type": "echo", "delay_seconds": "soon"}, "delay_seconds"),
        ({"type": None}, "type"),
        ({"type": 5}, "type"),
        ({"type": ""}, "type"),
        ({"type": "x" * 65}, "type"),
        ({"type": "echo", "payload": None}, "payload"),
        ({"type": "echo", "payload": [1]}, "payload"),
        ({"type": "echo", "payload": "text"}, "payload"),
    ],
)
def test_invalid_fields_are_422(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue, body: dict[str, Any], field: str
) -> None:
    error = assert_error(api.post("/jobs", json_body=body), 422)
    assert field in json.dumps(error)
    assert repo.jobs == {}
    assert queue.sent == []


def test_unknown_type_is_422_listing_known_types(api: ApiDriver, repo: InMemoryJobRepository) -> None:
    error = assert_error(api.post("/jobs", json_body={"type": "nope"}), 422, "unknown_job_type")
    for name in build_registry().names:  # the built-in types and any a deployment adds
        assert name in error["message"]
    assert error["details"] == {"known_types": build_registry().names}
    assert repo.jobs == {}


@pytest.mark.parametrize(
    ("job_type", "payload", "loc"),
    [
        ("sleep", {"seconds": 61}, ["seconds"]),
        ("sleep", {}, ["seconds"]),
        ("sleep", {"seconds": 1, "more": 2}, ["more"]),
        ("fail", {"times": "often"}, ["times"]),
    ],
)
def test_payload_invalid_for_the_type_is_422(
    api: ApiDriver,
    repo: InMemoryJobRepository,
    queue: FakeQueue,
    job_type: str,
    payload: dict[str, Any],
    loc: list[str],
) -> None:
    error = assert_error(api.post("/jobs", json_body={"type": job_type, "payload": payload}), 422, "invalid_payload")
    assert job_type in error["message"]
    assert [item["loc"] for item in error["details"]] == [loc]
    assert repo.jobs == {}
    assert queue.sent == []


def test_queue_unavailable_is_503_and_leaves_no_job(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    queue.unavailable = True
    error = assert_error(api.post("/jobs", json_body={"type": "echo"}), 503, "service_unavailable")
    assert "fake" not in error["message"]  # no internals leak
    assert repo.jobs == {}
    queue.unavailable = False
    assert api.get("/jobs").json["items"] == []


def test_table_unavailable_is_503(api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue) -> None:
    repo.unavailable = True
    assert_error(api.post("/jobs", json_body={"type": "echo"}), 503, "service_unavailable")
    assert_error(api.get(f"/jobs/{new_job_id()}"), 503, "service_unavailable")
    assert_error(api.get("/jobs"), 503, "service_unavailable")
    for action in ("cancel", "retry"):
        assert_error(api.post(f"/jobs/{new_job_id()}/{action}"), 503, "service_unavailable")
    assert queue.sent == []


# -- Idempotency-Key (README "HTTP API") ------------------------------------------------------


def test_repeated_submit_with_the_same_idempotency_key_returns_the_same_job(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    body = '{"type": "echo", "payload": {"order": 17}}'
    headers = {"content-type": "application/json", "idempotency-key": "order-17"}
    first = api.post("/jobs", body=body, headers=headers)
    second = api.post("/jobs", body=body, headers=headers)
    assert first.status == 202, first
    assert second.status in {200, 202}, second
    assert second.json["job_id"] == first.json["job_id"]
    assert len(repo.jobs) == 1
    assert len(queue.sent) == 1


def test_idempotency_key_reused_with_a_different_body_is_409(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    headers = {"content-type": "application/json", "idempotency-key": "order-18"}
    first = api.post("/jobs", body='{"type": "echo", "payload": {"order": 18}}', headers=headers)
    assert first.status == 202, first
    assert_error(api.post("/jobs", body='{"type": "echo", "payload": {"order": 19}}', headers=headers), 409)
    assert len(repo.jobs) == 1
    assert len(queue.sent) == 1


def test_different_idempotency_keys_make_different_jobs(api: ApiDriver, queue: FakeQueue) -> None:
    body = '{"type": "echo"}'
    first = api.post("/jobs", body=body, headers={"content-type": "application/json", "idempotency-key": "a"})
    second = api.post("/jobs", body=body, headers={"content-type": "application/json", "idempotency-key": "b"})
    assert first.json["job_id"] != second.json["job_id"]
    assert len(queue.sent) == 2


def test_idempotent_replay_returns_200_with_the_current_job(api: ApiDriver, queue: FakeQueue) -> None:
    headers = {"content-type": "application/json", "idempotency-key": "replay-1"}
    first = api.post("/jobs", body='{"type": "echo"}', headers=headers)
    second = api.post("/jobs", body='{"type": "echo"}', headers=headers)
    assert (first.status, second.status) == (202, 200)
    assert second.headers["location"] == first.headers["location"]
    assert len(queue.sent) == 1


def test_a_failed_enqueue_does_not_consume_the_idempotency_key(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue
) -> None:
    headers = {"content-type": "application/json", "idempotency-key": "retry-after-503"}
    queue.unavailable = True
    assert_error(api.post("/jobs", body='{"type": "echo"}', headers=headers), 503)
    queue.unavailable = False
    again = api.post("/jobs", body='{"type": "echo"}', headers=headers)
    assert again.status == 202
    assert len(repo.jobs) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "has space"])
def test_invalid_idempotency_keys_are_400(api: ApiDriver, repo: InMemoryJobRepository, key: str) -> None:
    response = api.post(
        "/jobs", body='{"type": "echo"}', headers={"content-type": "application/json", "idempotency-key": key}
    )
    assert_error(response, 400)
    assert repo.jobs == {}


# -- GET /jobs/{job_id} ---------------------------------------------------------------------------


def test_get_returns_the_job(api: ApiDriver) -> None:
    submitted = submit(api, payload={"k": "v"})
    response = api.get(submitted["status_url"])
    assert response.status == 200, response
    assert_job_document(response.json)
    assert response.json == submitted


def test_get_shows_result_error_and_history(api: ApiDriver, put_job: PutJob, clock: FakeClock) -> None:
    from jobq.domain.models import AttemptFailure, JobError

    failure = AttemptFailure(type="RuntimeError", message="first", retryable=True, attempt=1, at=clock.now())
    job = put_job(
        status=JobStatus.SUCCEEDED,
        attempts=2,
        result={"out": [1, 2]},
        error=None,
        history=(failure,),
        started_at=clock.now(),
        finished_at=clock.now() + timedelta(seconds=1),
    )
    document = api.get(f"/jobs/{job.job_id}").json
    assert_job_document(document)
    assert document["result"] == {"out": [1, 2]}
    assert document["history"] == [
        {"type": "RuntimeError", "message": "first", "retryable": True, "attempt": 1, "at": "2026-01-01T12:00:00.000Z"}
    ]
    assert document["finished_at"] == "2026-01-01T12:00:01.000Z"
    failed = put_job(status=JobStatus.FAILED, error=JobError(type="X", message="m", retryable=False))
    assert api.get(f"/jobs/{failed.job_id}").json["error"] == {"type": "X", "message": "m", "retryable": False}


MALFORMED_IDS = ["nope", "01KDWPVNG0YE3JFY1T7HT7YKR", "01kdwpvng0ye3jfy1t7ht7ykrz", "01KDWPVNG0YE3JFY1T7HT7YKRU", "%20"]


@pytest.mark.parametrize("job_id", [new_job_id(), *MALFORMED_IDS])
@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", "/cancel"), ("POST", "/retry")])
def test_unknown_or_malformed_id_is_404(api: ApiDriver, job_id: str, method: str, suffix: str) -> None:
    assert_error(api.request(method, f"/jobs/{job_id}{suffix}"), 404, "job_not_found")


# -- cancel and retry -----------------------------------------------------------------------------


def test_cancel_a_queued_job(api: ApiDriver, repo: InMemoryJobRepository, clock: FakeClock) -> None:
    submitted = submit(api)
    clock.advance(2)
    response = api.post(f"/jobs/{submitted['job_id']}/cancel")
    assert response.status == 200, response
    assert_job_document(response.json)
    assert response.json["status"] == "cancelled"
    assert response.json["finished_at"] == "2026-01-01T12:00:02.000Z"
    assert repo.jobs[submitted["job_id"]].status is JobStatus.CANCELLED


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED])
def test_cancel_a_finished_job_is_409(
    api: ApiDriver, repo: InMemoryJobRepository, put_job: PutJob, status: JobStatus
) -> None:
    job = put_job(status=status)
    error = assert_error(api.post(f"/jobs/{job.job_id}/cancel"), 409, "invalid_state")
    assert error["details"] == {"status": status.value}
    assert repo.jobs[job.job_id] == job


def test_cancel_a_running_job_records_the_request_and_answers_202(
    api: ApiDriver, repo: InMemoryJobRepository, put_job: PutJob
) -> None:
    job = put_job(status=JobStatus.RUNNING, lease_id="lease-1", attempts=1)
    response = api.post(f"/jobs/{job.job_id}/cancel")
    assert response.status == 202, response
    assert_job_document(response.json)
    assert response.json["status"] == "running"
    assert response.json["cancel_requested"] is True
    stored = repo.jobs[job.job_id]
    assert (stored.status, stored.cancel_requested, stored.lease_id) == (JobStatus.RUNNING, True, "lease-1")
    again = api.post(f"/jobs/{job.job_id}/cancel")
    assert (again.status, again.json["cancel_requested"]) == (202, True)


def test_retry_of_a_job_cancelled_while_running_clears_the_request_and_progress(
    api: ApiDriver, repo: InMemoryJobRepository, put_job: PutJob
) -> None:
    progress = Progress(done=3, total=10, message="three", updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    job = put_job(status=JobStatus.CANCELLED, cancel_requested=True, progress=progress)
    response = api.post(f"/jobs/{job.job_id}/retry")
    assert response.status == 202, response
    assert (response.json["status"], response.json["cancel_requested"], response.json["progress"]) == (
        "queued",
        False,
        None,
    )
    assert repo.jobs[job.job_id].cancel_requested is False


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_retry_a_failed_or_cancelled_job(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue, put_job: PutJob, status: JobStatus
) -> None:
    job = put_job(status=status, attempts=3)
    response = api.post(f"/jobs/{job.job_id}/retry")
    assert response.status == 202, response
    assert_job_document(response.json)
    assert response.json["status"] == "queued"
    assert response.json["attempts"] == 0
    assert response.headers["location"] == f"/jobs/{job.job_id}"
    assert queue.sent == [(JobMessage(job_id=job.job_id, type="echo", generation=1), 0)]  # its first retry


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED])
def test_retry_a_job_that_is_not_failed_or_cancelled_is_409(
    api: ApiDriver, queue: FakeQueue, put_job: PutJob, status: JobStatus
) -> None:
    job = put_job(status=status)
    error = assert_error(api.post(f"/jobs/{job.job_id}/retry"), 409, "invalid_state")
    assert error["details"] == {"status": status.value}
    assert queue.sent == []


def test_retry_of_a_just_submitted_job_is_409(api: ApiDriver, queue: FakeQueue) -> None:
    submitted = submit(api)
    assert_error(api.post(f"/jobs/{submitted['job_id']}/retry"), 409, "invalid_state")
    assert len(queue.sent) == 1


def test_retry_with_the_queue_down_is_503_and_keeps_the_job_failed(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue, put_job: PutJob
) -> None:
    job = put_job(status=JobStatus.FAILED, attempts=3)
    queue.unavailable = True
    assert_error(api.post(f"/jobs/{job.job_id}/retry"), 503, "service_unavailable")
    assert repo.jobs[job.job_id].status is JobStatus.FAILED
    assert repo.jobs[job.job_id].attempts == 3


# -- GET /jobs ------------------------------------------------------------------------------------


@pytest.fixture
def populated(api: ApiDriver, clock: FakeClock) -> list[dict[str, Any]]:
    """Seven jobs, oldest first: echo and sleep, two of them cancelled."""
    documents = []
    for index in range(7):
        job_type = "sleep" if index % 3 == 0 else "echo"
        documents.append(submit(api, job_type, {"seconds": 1} if job_type == "sleep" else {"i": index}))
        clock.advance(1)
    for index in (1, 3):
        assert api.post(f"/jobs/{documents[index]['job_id']}/cancel").status == 200
    return documents


def listed_ids(response: ApiResponse) -> list[str]:
    assert response.status == 200, response
    assert set(response.json) == {"items", "next_cursor"}
    for item in response.json["items"]:
        assert_job_document(item)
    return [item["job_id"] for item in response.json["items"]]


def test_list_is_newest_first(api: ApiDriver, populated: list[dict[str, Any]]) -> None:
    response = api.get("/jobs")
    assert listed_ids(response) == [document["job_id"] for document in reversed(populated)]
    assert response.json["next_cursor"] is None


def test_list_empty(api: ApiDriver) -> None:
    response = api.get("/jobs")
    assert listed_ids(response) == []
    assert response.json["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=cancelled", [3, 1]),
        ("status=queued", [6, 5, 4, 2, 0]),
        ("type=sleep", [6, 3, 0]),
        ("type=echo", [5, 4, 2, 1]),
        ("status=queued&type=sleep", [6, 0]),
        ("status=succeeded", []),
        ("type=unknown", []),
    ],
)
def test_list_filters_by_status_and_type(
    api: ApiDriver, populated: list[dict[str, Any]], query: str, expected: list[int]
) -> None:
    assert listed_ids(api.get("/jobs", query=query)) == [populated[index]["job_id"] for index in expected]


def test_list_pages_through_everything_with_next_cursor(api: ApiDriver, populated: list[dict[str, Any]]) -> None:
    seen: list[str] = []
    query = "limit=2"
    pages = 0
    while True:
        response = api.get("/jobs", query=query)
        ids = listed_ids(response)
        assert 1 <= len(ids) <= 2
        seen.extend(ids)
        pages += 1
        cursor = response.json["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
        query = f"limit=2&cursor={cursor}"
        assert pages < 10
    assert seen == [document["job_id"] for document in reversed(populated)]
    assert pages == 4


def test_list_pages_with_a_filter(api: ApiDriver, populated: list[dict[str, Any]]) -> None:
    first = api.get("/jobs", query="status=queued&limit=3")
    assert len(listed_ids(first)) == 3
    cursor = first.json["next_cursor"]
    assert cursor
    second = api.get("/jobs", query=f"status=queued&limit=3&cursor={cursor}")
    assert listed_ids(first) + listed_ids(second) == [populated[index]["job_id"] for index in (6, 5, 4, 2, 0)]
    assert second.json["next_cursor"] is None


@pytest.mark.parametrize("limit", [1, 100])
def test_list_limit_bounds_are_accepted(api: ApiDriver, populated: list[dict[str, Any]], limit: int) -> None:
    assert len(listed_ids(api.get("/jobs", query=f"limit={limit}"))) == min(limit, len(populated))


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=-1", "limit=abc", "limit=1.5", "status=bogus", "status=QUEUED", "type=" + "x" * 65],
)
def test_list_with_bad_query_parameters_is_400(api: ApiDriver, query: str) -> None:
    error = assert_error(api.get("/jobs", query=query), 400)
    assert query.split("=", maxsplit=1)[0] in json.dumps(error)


@pytest.mark.parametrize("cursor", ["garbage", "Z2FyYmFnZQ", "a", "x" * 5000])
def test_list_with_a_garbage_cursor_is_400(api: ApiDriver, populated: list[dict[str, Any]], cursor: str) -> None:
    assert_error(api.get("/jobs", query=f"cursor={cursor}"), 400)


# -- other routes ---------------------------------------------------------------------------------


def test_openapi_document_describes_the_jobs_paths(api: ApiDriver) -> None:
    response = api.get("/openapi.json")
    assert response.status == 200, response
    document = response.json
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/cancel", "/jobs/{job_id}/retry"} <= set(paths)
    assert {"get", "post"} <= set(paths["/jobs"])
    assert "get" in paths["/jobs/{job_id}"]
    assert "post" in paths["/jobs/{job_id}/cancel"]
    assert "post" in paths["/jobs/{job_id}/retry"]
    assert "202" in paths["/jobs"]["post"]["responses"]
    assert "/openapi.json" not in paths


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/"), ("GET", "/nope"), ("DELETE", "/jobs"), ("PUT", f"/jobs/{new_job_id()}"), ("GET", "/jobs/a/b/c")],
)
def test_unknown_route_is_404_json(api: ApiDriver, method: str, path: str) -> None:
    assert_error(api.request(method, path), 404)


# -- never a 5xx ----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.text(max_size=200), st.binary(max_size=200), json_values.map(json.dumps)))
def test_no_body_produces_a_5xx(api: ApiDriver, body: str | bytes) -> None:
    response = api.post("/jobs", body=body, headers={"content-type": "application/json"})
    assert response.status in {202, 400, 413, 422}, response
    if response.status != 202:
        assert_error(response, response.status)


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    job_type=st.sampled_from(["echo", "sleep", "fail", "nope"]) | st.text(max_size=10),
    payload=json_values,
    delay=st.integers(min_value=-10, max_value=1000) | st.none(),
)
def test_no_submission_produces_a_5xx(api: ApiDriver, job_type: str, payload: Any, delay: int | None) -> None:
    body: dict[str, Any] = {"type": job_type, "payload": payload}
    if delay is not None:
        body["delay_seconds"] = delay
    response = api.post("/jobs", json_body=body)
    assert response.status in {202, 422}, response


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=60), job_id=st.text(max_size=40))
def test_no_query_or_id_produces_a_5xx(api: ApiDriver, query: str, job_id: str) -> None:
    from urllib.parse import quote

    listing = api.get("/jobs", query=query)
    assert listing.status in {200, 400}, listing
    path = "/jobs/" + quote(job_id, safe="")
    for method, suffix in (("GET", ""), ("POST", "/cancel"), ("POST", "/retry")):
        response = api.request(method, path + suffix)
        assert response.status in {404}, response


# -- job types and docs ------------------------------------------------------------------------------


def test_types_lists_every_registered_type_with_its_payload_schema(api: ApiDriver) -> None:
    response = api.get("/types")
    assert response.status == 200, response
    items = {item["type"]: item for item in response.json["items"]}
    assert set(items) == set(build_registry().names)
    sleep = items["sleep"]
    assert sleep["payload_schema"]["properties"]["seconds"]["maximum"] == 60
    assert sleep["payload_schema"]["required"] == ["seconds"]
    assert sleep["timeout_seconds"] == build_registry().require("sleep").timeout_seconds
    assert all(1 <= item["max_attempts"] <= 3 for item in items.values())  # capped by MaxAttempts (3 here)


def test_types_needs_a_caller(api: ApiDriver) -> None:
    assert api.get("/types", caller=None).status == 401


def test_docs_serve_swagger_ui_over_the_same_document(api: ApiDriver) -> None:
    event = http_api_event("GET", "/docs")  # public: no authorizer context
    page = api.app.resolve(treat_body_as_json(event), LambdaContext("ApiFunction", timeout_seconds=15))
    assert page["statusCode"] == 200
    assert "swagger-ui" in page["body"]
    spec = api.app.resolve(
        treat_body_as_json(http_api_event("GET", "/docs", query="format=json")),
        LambdaContext("ApiFunction", timeout_seconds=15),
    )
    assert "/types" in json.loads(spec["body"])["paths"]
