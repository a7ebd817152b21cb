"""Records stay within DynamoDB's limits on moto too, and a failed job keeps one dead-letter message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from jobq import JobContext, JobRegistry, JobType, wiring
from jobq.domain.models import MAX_RECORD_BYTES
from tests.support.callers import ADMIN
from tests.support.stack import Stack


class Size(BaseModel):
    """How many bytes of result to return."""

    size: int


def _sized(payload: Size, ctx: JobContext) -> dict[str, str]:
    return {"blob": "r" * payload.size}


@pytest.fixture
def sized_stack(aws_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    from jobq.jobs import build_registry

    monkeypatch.setattr(
        wiring,
        "build_registry",
        lambda: JobRegistry([*build_registry()._types.values(), JobType("sized", Size, _sized)]),
    )
    wiring.clear_caches()
    yield aws_stack
    wiring.clear_caches()


@pytest.mark.parametrize(("size", "status"), [(300_000, "succeeded"), (MAX_RECORD_BYTES, "failed")])
def test_a_result_over_the_item_limit_fails_the_job_on_moto_without_storing_part_of_it(
    sized_stack: Stack, size: int, status: str
) -> None:
    job = sized_stack.submit("sized", {"size": size})
    sized_stack.drain()
    done = sized_stack.job(job["job_id"])
    assert done["status"] == status
    if status == "failed":
        assert done["result"] is None  # moto would have applied the oversized update in part
        assert done["error"]["type"] == "ResultTooLargeError"
        assert sized_stack.queue_depth(sized_stack.dlq_url) == 1
    else:
        assert len(done["result"]["blob"]) == size


def test_a_job_retried_and_failed_again_keeps_one_dead_letter_message(aws_stack: Stack) -> None:
    job = aws_stack.submit("fail", {"retryable": False, "message": "broken"})
    aws_stack.drain()
    assert aws_stack.queue_depth(aws_stack.dlq_url) == 1

    assert aws_stack.api("POST", f"/jobs/{job['job_id']}/retry").status == 202
    aws_stack.drain()
    again = aws_stack.job(job["job_id"])
    assert again["status"] == "failed"
    assert [entry["message"] for entry in again["history"]] == ["broken", "broken"]

    listed = aws_stack.api("GET", "/dlq", caller=ADMIN).body["items"]
    assert [item["job"]["job_id"] for item in listed] == [job["job_id"]]  # listed once
    assert '"generation":1' in listed[0]["body"]  # the latest failure's message (generation 0 is left out)

    report = aws_stack.sweep()
    assert report["stale_dead_letters"] == 1
    assert aws_stack.queue_depth(aws_stack.dlq_url) == 1
    bodies = [message.body for message in aws_stack.receive(queue_url=aws_stack.dlq_url)]
    assert len(bodies) == 1
    assert '"generation":1' in bodies[0]


def test_an_oversized_insert_is_refused_before_it_is_sent(aws_stack: Stack) -> None:
    from jobq.domain.ports import RecordTooLargeError
    from jobq.settings import get_settings
    from tests.integration.test_repository_contract import a_job

    settings = get_settings()
    from jobq.adapters.dynamodb import DynamoDBJobRepository

    repo = DynamoDBJobRepository(wiring.jobs_table(settings), ttl_days=30)
    calls: list[Any] = []
    repo._client.meta.events.register("before-call.dynamodb.PutItem", lambda **kw: calls.append(kw))
    with pytest.raises(RecordTooLargeError):
        repo.insert(a_job(payload={"blob": "p" * MAX_RECORD_BYTES}))
    assert calls == []
    repo.insert(a_job(payload={"blob": "p" * 300_000}))
    assert len(calls) == 1
