"""The published OpenAPI document is exact: each route lists the statuses it sends and no other, and
``POST /jobs`` describes every registered type's payload."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from jobq.domain.errors import DependencyUnavailableError
from jobq.domain.models import Job, JobMessage, JobStatus
from jobq.jobs import build_registry
from tests.support.callers import ADMIN
from tests.support.fakes import FakeQueue, InMemoryJobRepository

from .conftest import MAX_BODY_BYTES, ApiDriver

PutJob = Callable[..., Job]
GATEWAY_ONLY = {403}
"""Statuses API Gateway's authorizer sends for every signed route before the function runs (bad signature)."""


def document(api: ApiDriver) -> dict[str, Any]:
    response = api.get("/openapi.json", caller=None)
    assert response.status == 200
    return dict(response.json)


def test_every_documented_status_is_one_the_route_sends_and_every_sent_one_is_documented(
    api: ApiDriver, repo: InMemoryJobRepository, queue: FakeQueue, put_job: PutJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: dict[str, set[int]] = defaultdict(set)

    def call(label: str, *, caller: str | None = "alice", **request: Any) -> None:
        method, template = label.split(" ", 1)
        path = template.replace("{job_id}", request.pop("job_id", ""))
        options = {"caller": request.pop("as_caller")} if "as_caller" in request else {}
        if caller is None:
            options["caller"] = None
        sent[label].add(api.request(method, path, **options, **request).status)

    queued, running = put_job(), put_job(status=JobStatus.RUNNING, lease_id="l")
    failed, finished = put_job(status=JobStatus.FAILED), put_job(status=JobStatus.SUCCEEDED)
    unknown = "01JAAAAAAAAAAAAAAAAAAAAAAA"
    echo = {"type": "echo", "payload": {"a": 1}}
    key = {"content-type": "application/json", "idempotency-key": "k1"}

    call("POST /jobs", json_body=echo)  # 202
    call("POST /jobs", json_body=echo, headers=key)  # 202
    call("POST /jobs", json_body=echo, headers=key)  # 200: the same request again
    call("POST /jobs", json_body={"type": "echo", "payload": {"a": 2}}, headers=key)  # 409
    call("POST /jobs", body="[1]")  # 400
    call("POST /jobs", body=json.dumps({"type": "echo", "payload": {"x": "y" * MAX_BODY_BYTES}}))  # 413
    call("POST /jobs", json_body={"type": "nosuch"})  # 422
    batch = {"jobs": [echo]}
    batch_key = {"content-type": "application/json", "idempotency-key": "b1"}
    call("POST /jobs/batch", json_body=batch)  # 202
    call("POST /jobs/batch", json_body=batch, headers=batch_key)  # 202
    call("POST /jobs/batch", json_body=batch, headers=batch_key)  # 200: the same request again
    call("POST /jobs/batch", json_body={"jobs": [echo, echo]}, headers=batch_key)  # 409
    call("POST /jobs/batch", body="[1]")  # 400
    call(
        "POST /jobs/batch", body=json.dumps({"jobs": [{"type": "echo", "payload": {"x": "y" * MAX_BODY_BYTES}}]})
    )  # 413
    call("POST /jobs/batch", json_body={"jobs": [{"type": "nosuch"}]})  # 422
    call("GET /jobs")  # 200
    call("GET /jobs", query="limit=0")  # 400
    call("GET /jobs/{job_id}", job_id=queued.job_id)  # 200
    call("GET /jobs/{job_id}", job_id=unknown)  # 404
    call("POST /jobs/{job_id}/cancel", job_id=queued.job_id)  # 200
    call("POST /jobs/{job_id}/cancel", job_id=running.job_id)  # 202
    call("POST /jobs/{job_id}/cancel", job_id=finished.job_id)  # 409
    call("POST /jobs/{job_id}/cancel", job_id=unknown)  # 404
    call("POST /jobs/{job_id}/retry", job_id=failed.job_id)  # 202
    call("POST /jobs/{job_id}/retry", job_id=finished.job_id)  # 409
    call("POST /jobs/{job_id}/retry", job_id=unknown)  # 404
    call("GET /types")  # 200
    api.dead_letters.add(JobMessage(job_id=failed.job_id, type="echo").model_dump_json())
    call("GET /dlq", as_caller=ADMIN)  # 200
    call("GET /dlq")  # 403: not an admin
    call("POST /dlq/redrive", as_caller=ADMIN, json_body={})  # 200
    call("POST /dlq/redrive", as_caller=ADMIN, body="[]")  # 400
    call("POST /dlq/redrive", as_caller=ADMIN, body=json.dumps({"x": "y" * MAX_BODY_BYTES}))  # 413
    call("POST /dlq/redrive", as_caller=ADMIN, json_body={"job_id": 5})  # 422
    call("POST /dlq/redrive", json_body={})  # 403
    for label in list(sent):
        body = echo if label == "POST /jobs" else {"jobs": [echo]} if label == "POST /jobs/batch" else {}
        call(label, caller=None, json_body=body, job_id=queued.job_id)  # 401: no authenticated caller
    repo.unavailable = queue.unavailable = True

    def down(*args: Any, **kwargs: Any) -> Any:
        raise DependencyUnavailableError("SQS is down (fake)")

    monkeypatch.setattr(api.dead_letters, "receive", down)
    for label in ("POST /jobs", "GET /jobs", "GET /jobs/{job_id}", "POST /jobs/{job_id}/cancel"):
        call(label, json_body=echo, job_id=queued.job_id)  # 503
    call("POST /jobs/batch", json_body={"jobs": [echo]})  # 503
    call("POST /jobs/{job_id}/retry", job_id=failed.job_id)  # 503
    call("GET /dlq", as_caller=ADMIN)  # 503
    call("POST /dlq/redrive", as_caller=ADMIN, json_body={})  # 503

    documented = {
        f"{method.upper()} {path}": {int(status) for status in operation["responses"]}
        for path, operations in document(api)["paths"].items()
        for method, operation in operations.items()
    }
    assert set(sent) == set(documented)
    for label, statuses in documented.items():
        assert statuses == sent[label] | GATEWAY_ONLY, label


def test_submit_is_a_union_of_every_registered_type_with_its_payload_schema(api: ApiDriver) -> None:
    doc = document(api)
    schema = doc["paths"]["/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    mapping = schema["discriminator"]["mapping"]
    registry = build_registry()
    assert schema["discriminator"]["propertyName"] == "type"
    assert sorted(mapping) == registry.names
    assert [variant["$ref"] for variant in schema["oneOf"]] == [mapping[name] for name in registry.names]
    components = doc["components"]["schemas"]
    for name in registry.names:
        variant = components[mapping[name].rsplit("/", 1)[1]]
        assert variant["properties"]["type"] == {"type": "string", "const": name}
        payload = components[variant["properties"]["payload"]["$ref"].rsplit("/", 1)[1]]
        expected = registry.require(name).model.model_json_schema()
        assert payload["properties"] == expected.get("properties", {})
    sleep = components["SleepJobPayload"]
    assert sleep["required"] == ["seconds"]
    assert sleep["properties"]["seconds"]["maximum"] == 60
