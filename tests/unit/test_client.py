"""jobq.Client without a network: error mapping, retries, waiting, batch submit, from_stack (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobq import Client
from jobq.client import (
    ApiError,
    Conflict,
    InvalidState,
    JobNotFound,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
    WaitTimeout,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def job(status: str = "queued", *, updated: int = 0, progress: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "job_id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
        "type": "count",
        "owner": "alice",
        "status": status,
        "payload": {},
        "attempts": 1,
        "max_attempts": 3,
        "created_at": T0.isoformat(),
        "updated_at": (T0 + timedelta(seconds=updated)).isoformat(),
        "status_url": "/jobs/01JAAAAAAAAAAAAAAAAAAAAAAA",
        "progress": progress,
    }


class Scripted(Client):
    """A Client whose HTTP answers come from a script; it records what it was asked."""

    def __init__(self, *answers: tuple[int, Any]) -> None:
        super().__init__("https://api.example", region="eu-west-1", token="t")
        self.answers = list(answers)
        self.asked: list[tuple[str, str, Any, dict[str, str]]] = []

    def _send(self, method: str, url: str, data: bytes | None, headers: Any) -> tuple[int, Any]:
        self.asked.append((method, url, None if data is None else json.loads(data), dict(headers)))
        return self.answers.pop(0)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr("jobq.client.time.sleep", slept.append)
    return slept


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (401, "unauthenticated", Unauthorized),
        (403, "forbidden", Unauthorized),
        (404, "job_not_found", JobNotFound),
        (409, "invalid_state", InvalidState),
        (409, "idempotency_key_reused", Conflict),
        (400, "invalid_request", ValidationFailed),
        (413, "payload_too_large", ValidationFailed),
        (422, "invalid_payload", ValidationFailed),
        (418, "teapot", ApiError),
    ],
)
def test_api_errors_become_typed_exceptions_with_code_and_details(status: int, code: str, kind: type) -> None:
    client = Scripted((status, {"error": {"code": code, "message": "nope", "details": {"at": 1}}}))
    with pytest.raises(kind) as caught:
        client.get("01JAAAAAAAAAAAAAAAAAAAAAAA")
    assert (caught.value.status, caught.value.code, caught.value.message) == (status, code, "nope")
    assert caught.value.details == {"at": 1}
    assert len(client.asked) == 1  # not retried


def test_api_gateways_own_answers_are_mapped_too() -> None:
    with pytest.raises(Unauthorized) as caught:
        Scripted((403, {"message": "Forbidden"})).types()
    assert caught.value.code == "forbidden"


def test_503_and_throttling_are_retried_with_backoff_then_raised(sleeps: list[float]) -> None:
    client = Scripted((503, {"error": {"code": "service_unavailable", "message": "down"}}), (429, {}), (200, job()))
    assert client.get("01JAAAAAAAAAAAAAAAAAAAAAAA").status.value == "queued"
    assert sleeps == [0.2, 0.4]
    client = Scripted(*[(503, {"error": {"code": "service_unavailable", "message": "down"}})] * Client.RETRIES)
    with pytest.raises(ServiceUnavailable):
        client.get("01JAAAAAAAAAAAAAAAAAAAAAAA")
    assert len(client.asked) == Client.RETRIES


def test_submit_sends_the_body_and_idempotency_key() -> None:
    client = Scripted((202, job()))
    client.submit("count", {"to": 3}, idempotency_key="k-1", delay_seconds=5)
    method, url, body, headers = client.asked[0]
    assert (method, url) == ("POST", "https://api.example/jobs")
    assert body == {"type": "count", "payload": {"to": 3}, "delay_seconds": 5}
    assert headers == {"Idempotency-Key": "k-1"}


def test_submit_many_sends_batches_of_25_with_a_key_each_and_refuses_unknown_fields() -> None:
    client = Scripted((202, {"items": [job()] * 25}), (202, {"items": [job()] * 5}))
    jobs = client.submit_many([{"type": "echo", "payload": {"n": n}} for n in range(30)], idempotency_key="k")
    assert len(jobs) == 30
    assert [(method, url) for method, url, _, _ in client.asked] == [("POST", "https://api.example/jobs/batch")] * 2
    assert [len(body["jobs"]) for _, _, body, _ in client.asked] == [25, 5]
    assert client.asked[1][2]["jobs"][0] == {"type": "echo", "payload": {"n": 25}, "delay_seconds": 0}
    assert [headers for _, _, _, headers in client.asked] == [{"Idempotency-Key": "k.0"}, {"Idempotency-Key": "k.1"}]
    with pytest.raises(TypeError, match="a job to submit is"):
        client.submit_many([{"type": "echo", "colour": "red"}])


def test_iter_jobs_follows_every_cursor() -> None:
    client = Scripted(
        (200, {"items": [job(), job()], "next_cursor": "c1"}),
        (200, {"items": [job()], "next_cursor": None}),
    )
    assert len(list(client.iter_jobs(status="failed"))) == 3
    assert "status=failed" in client.asked[0][1]
    assert "cursor=c1" in client.asked[1][1]


def test_wait_polls_with_capped_backoff_reports_progress_and_returns_the_final_job(sleeps: list[float]) -> None:
    answers = [(200, job("queued"))] * 6 + [
        (200, job("running", updated=1, progress={"done": 1, "total": 2, "updated_at": T0.isoformat()})),
        (200, job("succeeded", updated=2)),
    ]
    client = Scripted(*answers)
    seen: list[str] = []
    final = client.wait("01JAAAAAAAAAAAAAAAAAAAAAAA", timeout=None, on_progress=lambda j: seen.append(j.status.value))
    assert final.status.value == "succeeded"
    assert seen == ["queued"] * 6 + ["running", "succeeded"]
    assert sleeps == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 0.25]  # doubles while nothing changes, capped; resets


def test_wait_gives_up_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    now = iter(float(n) for n in range(100))
    monkeypatch.setattr("jobq.client.time.monotonic", lambda: next(now))
    monkeypatch.setattr("jobq.client.time.sleep", lambda seconds: None)
    client = Scripted(*[(200, job("running"))] * 10)
    with pytest.raises(WaitTimeout) as caught:
        client.wait("01JAAAAAAAAAAAAAAAAAAAAAAA", timeout=3)
    assert caught.value.job.status.value == "running"
    assert str(caught.value) == "job 01JAAAAAAAAAAAAAAAAAAAAAAA is still running after 3 s"


@pytest.fixture
def cloudformation() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("cloudformation", region_name="eu-west-1")


def test_from_stack_finds_the_api_url_in_the_stacks_outputs(cloudformation: Any) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"ApiUrl": {"Value": "https://abc123.execute-api.eu-west-1.amazonaws.com"}},
    }
    cloudformation.create_stack(StackName="jobq-prod", TemplateBody=json.dumps(template))
    client = Client.from_stack("jobq-prod", region="eu-west-1")
    assert client.url == "https://abc123.execute-api.eu-west-1.amazonaws.com"
    assert client.region == "eu-west-1"


def test_from_stack_without_an_api_url_says_so(cloudformation: Any) -> None:
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    cloudformation.create_stack(StackName="other", TemplateBody=json.dumps(template))
    with pytest.raises(LookupError, match="stack other has no ApiUrl output"):
        Client.from_stack("other", region="eu-west-1")
