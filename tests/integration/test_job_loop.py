"""The whole job loop on moto: API handler -> table + queue -> worker handler -> API, with real event shapes."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.stack import Stack


def test_echo_job_runs_end_to_end(aws_stack: Stack) -> None:
    job = aws_stack.submit("echo", {"hello": "world"})
    assert job["status"] == "queued"

    messages = aws_stack.receive()
    assert len(messages) == 1
    response = aws_stack.worker(messages)

    assert response == {"batchItemFailures": []}
    done = aws_stack.job(job["job_id"])
    assert done["status"] == "succeeded"
    assert done["result"] == {"hello": "world"}
    assert done["attempts"] == 1
    assert done["started_at"] is not None
    assert done["finished_at"] is not None
    assert aws_stack.queue_depth(aws_stack.queue_url) == 0


def test_submit_writes_one_item_and_one_small_message(aws_stack: Stack) -> None:
    job = aws_stack.submit("echo", {"blob": "x" * 1000})

    messages = aws_stack.receive()
    assert [m.body for m in messages] == [f'{{"job_id":"{job["job_id"]}","type":"echo"}}']
    items = aws_stack.dynamodb.scan(TableName=aws_stack.table_name)["Items"]
    assert len(items) == 1
    assert items[0]["status"] == {"S": "queued"}


def test_retry_path_counts_the_attempt_and_applies_backoff(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(RetryBaseSeconds="5", RetryMaxSeconds="600")
    visibility: list[int] = []
    stack.sqs.meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibilityBatch",
        lambda params, **_: visibility.extend(entry["VisibilityTimeout"] for entry in params["Entries"]),
    )
    from jobq.adapters import aws

    aws.sqs_client().meta.events.register(
        "provide-client-params.sqs.ChangeMessageVisibilityBatch",
        lambda params, **_: visibility.extend(entry["VisibilityTimeout"] for entry in params["Entries"]),
    )
    job = stack.submit("fail", {"times": 2, "message": "flaky"})

    response = stack.worker(stack.receive())

    assert len(response["batchItemFailures"]) == 1
    assert len(visibility) == 1
    assert 4 <= visibility[0] <= 6  # 5 s +/- 20 % jitter
    after = stack.job(job["job_id"])
    assert after["status"] == "queued"
    assert after["attempts"] == 1
    assert after["error"] == {"type": "RequestedFailureError", "message": "flaky", "retryable": True}
    assert [entry["attempt"] for entry in after["history"]] == [1]
    assert stack.receive() == []  # invisible until the backoff passes


def test_backoff_doubles_and_the_job_succeeds_after_retries(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(RetryBaseSeconds="1", RetryMaxSeconds="2")
    job = stack.submit("fail", {"times": 1})

    first = stack.worker(stack.receive())
    assert len(first["batchItemFailures"]) == 1
    assert stack.receive() == []
    time.sleep(1.4)  # 1 s backoff, +/- 20 % jitter rounded to whole seconds
    messages = stack.receive()
    assert len(messages) == 1
    assert messages[0].attributes["ApproximateReceiveCount"] == "2"
    assert stack.worker(messages) == {"batchItemFailures": []}

    done = stack.job(job["job_id"])
    assert done["status"] == "succeeded"
    assert done["result"] == {"attempts": 2}
    assert done["attempts"] == 2
    assert done["error"] is None
    assert len(done["history"]) == 1


def test_exhaustion_fails_the_job_and_moto_redrive_moves_the_message_to_the_dlq(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(MaxAttempts="3", RetryBaseSeconds="0", RetryMaxSeconds="1")
    job = stack.submit("fail", {"message": "always"})
    assert job["max_attempts"] == 3

    invocations = stack.drain()

    assert invocations == 3
    failed = stack.job(job["job_id"])
    assert failed["status"] == "failed"
    assert failed["attempts"] == 3
    assert failed["error"]["message"] == "always"
    assert [entry["attempt"] for entry in failed["history"]] == [1, 2, 3]
    dead = stack.receive(queue_url=stack.dlq_url)
    assert [m.body for m in dead] == [f'{{"job_id":"{job["job_id"]}","type":"fail"}}']
    assert stack.queue_depth(stack.queue_url) == 0


def test_non_retryable_failure_fails_at_once_and_reaches_the_dlq(aws_stack: Stack) -> None:
    job = aws_stack.submit("fail", {"retryable": False, "message": "bad input"})

    response = aws_stack.worker(aws_stack.receive())

    assert response == {"batchItemFailures": []}
    failed = aws_stack.job(job["job_id"])
    assert failed["status"] == "failed"
    assert failed["attempts"] == 1
    assert failed["error"] == {"type": "NonRetryableError", "message": "bad input", "retryable": False}
    assert len(aws_stack.receive(queue_url=aws_stack.dlq_url)) == 1
    assert aws_stack.queue_depth(aws_stack.queue_url) == 0


def test_duplicate_delivery_of_a_finished_job_is_acknowledged_and_not_rerun(aws_stack: Stack) -> None:
    job = aws_stack.submit("echo", {"n": 1})
    messages = aws_stack.receive()
    aws_stack.worker(messages)
    first = aws_stack.job(job["job_id"])

    aws_stack.sqs.send_message(QueueUrl=aws_stack.queue_url, MessageBody=messages[0].body)
    response = aws_stack.worker(aws_stack.receive())

    assert response == {"batchItemFailures": []}
    again = aws_stack.job(job["job_id"])
    assert again["attempts"] == 1
    assert again["updated_at"] == first["updated_at"]
    assert aws_stack.queue_depth(aws_stack.queue_url) == 0


def test_two_workers_racing_for_one_job_run_it_exactly_once(aws_stack: Stack) -> None:
    from jobq.jobs import builtin

    runs: list[str] = []
    original = builtin.sleep

    def counting_sleep(payload: Any, ctx: Any) -> Any:
        runs.append(ctx.job_id)
        return original(payload, ctx)

    job = aws_stack.submit("sleep", {"seconds": 0.3})
    message = aws_stack.receive()[0]
    aws_stack.sqs.send_message(QueueUrl=aws_stack.queue_url, MessageBody=message.body)
    duplicate = aws_stack.receive()[0]
    from jobq import wiring

    registry = wiring.get_registry()
    sleep_type = registry.get("sleep")
    object.__setattr__(sleep_type, "handler", counting_sleep)

    barrier = threading.Barrier(2)
    responses: list[dict[str, Any]] = []

    def run(batch: Any) -> None:
        barrier.wait()
        responses.append(aws_stack.worker([batch]))

    threads = [threading.Thread(target=run, args=(m,)) for m in (message, duplicate)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert runs == [job["job_id"]]
    done = aws_stack.job(job["job_id"])
    assert done["status"] == "succeeded"
    assert done["attempts"] == 1
    # The loser either saw the job running (message returned) or already finished (acknowledged).
    assert sorted(len(r["batchItemFailures"]) for r in responses) in ([0, 0], [0, 1])


def test_worker_near_its_deadline_returns_unstarted_records_without_using_attempts(aws_stack: Stack) -> None:
    jobs = [aws_stack.submit("sleep", {"seconds": 0.2}) for _ in range(3)]
    messages = aws_stack.receive()
    assert len(messages) == 3

    response = aws_stack.worker(messages, remaining_seconds=3.0)

    returned = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert len(returned) == 2
    statuses = sorted((aws_stack.job(j["job_id"])["status"], aws_stack.job(j["job_id"])["attempts"]) for j in jobs)
    assert statuses == [("queued", 0), ("queued", 0), ("succeeded", 1)]
    again = aws_stack.receive()  # returned with visibility 0: at once available to the next invocation
    assert {m.message_id for m in again} == returned


def test_garbage_missing_job_and_unknown_type_do_not_fail_the_rest_of_the_batch(aws_stack: Stack) -> None:
    good = aws_stack.submit("echo", {"ok": True})
    url = aws_stack.queue_url
    aws_stack.sqs.send_message(QueueUrl=url, MessageBody="this is not json")
    aws_stack.sqs.send_message(QueueUrl=url, MessageBody='{"job_id":"01JAAAAAAAAAAAAAAAAAAAAAAA","type":"echo"}')
    aws_stack.sqs.send_message(QueueUrl=url, MessageBody='{"job_id":"01JBBBBBBBBBBBBBBBBBBBBBBB","type":"nope"}')
    messages = aws_stack.receive()
    assert len(messages) == 4
    by_body = {m.body: m.message_id for m in messages}

    response = aws_stack.worker(messages)

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == [by_body["this is not json"]]
    assert aws_stack.job(good["job_id"])["status"] == "succeeded"


def test_cancelled_job_is_not_run(aws_stack: Stack) -> None:
    job = aws_stack.submit("echo", {}, delay_seconds=0)
    cancelled = aws_stack.api("POST", f"/jobs/{job['job_id']}/cancel")
    assert cancelled.status == 200
    assert cancelled.body["status"] == "cancelled"

    response = aws_stack.worker(aws_stack.receive())

    assert response == {"batchItemFailures": []}
    assert aws_stack.job(job["job_id"])["status"] == "cancelled"


def test_retry_of_a_failed_job_runs_it_again_and_keeps_history(aws_stack: Stack) -> None:
    job = aws_stack.submit("fail", {"retryable": False, "message": "first"})
    aws_stack.drain()
    assert aws_stack.job(job["job_id"])["status"] == "failed"

    retried = aws_stack.api("POST", f"/jobs/{job['job_id']}/retry")
    assert retried.status == 202
    assert retried.body["status"] == "queued"
    assert retried.body["attempts"] == 0
    aws_stack.drain()

    after = aws_stack.job(job["job_id"])
    assert after["status"] == "failed"
    assert [entry["message"] for entry in after["history"]] == ["first", "first"]


def test_delayed_job_is_not_run_early(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    job = stack.submit("echo", {}, delay_seconds=2)
    assert stack.receive() == []  # SQS DelaySeconds hides it
    listed = stack.api("GET", "/jobs", query="status=queued")
    assert [item["job_id"] for item in listed.body["items"]] == [job["job_id"]]


@pytest.mark.parametrize("count", [45])
def test_listing_pages_newest_first_across_shards(aws_stack: Stack, count: int) -> None:
    submitted = [aws_stack.submit("echo", {"i": i})["job_id"] for i in range(count)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = "limit=10" + (f"&cursor={cursor}" if cursor else "")
        page = aws_stack.api("GET", "/jobs", query=query)
        assert page.status == 200
        seen.extend(item["job_id"] for item in page.body["items"])
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(submitted, reverse=True)


def test_listing_filters_by_status_and_type(aws_stack: Stack) -> None:
    echo = aws_stack.submit("echo", {})
    fail = aws_stack.submit("fail", {"retryable": False})
    aws_stack.drain()
    queued = aws_stack.submit("sleep", {"seconds": 1})

    def ids(query: str) -> list[str]:
        result = aws_stack.api("GET", "/jobs", query=query)
        assert result.status == 200
        return [item["job_id"] for item in result.body["items"]]

    assert ids("status=succeeded") == [echo["job_id"]]
    assert ids("status=failed") == [fail["job_id"]]
    assert ids("status=queued") == [queued["job_id"]]
    assert ids("type=fail") == [fail["job_id"]]
    assert ids("type=echo&status=failed") == []
    assert aws_stack.api("GET", "/jobs", query="status=bogus").status == 400


def test_a_batch_runs_like_single_jobs(aws_stack: Stack) -> None:
    jobs = [{"type": "echo", "payload": {"n": n}} for n in range(25)]
    response = aws_stack.api("POST", "/jobs/batch", {"jobs": jobs})
    assert response.status == 202, response.body
    ids = [job["job_id"] for job in response.body["items"]]
    assert len(set(ids)) == 25
    aws_stack.drain()
    done = [aws_stack.job(job_id) for job_id in ids]
    assert [job["status"] for job in done] == ["succeeded"] * 25
    assert [job["result"] for job in done] == [{"n": n} for n in range(25)]


def test_a_batchs_first_attempts_are_claimed_in_one_request_and_a_duplicate_alone(aws_stack: Stack) -> None:
    from jobq.adapters import aws

    response = aws_stack.api("POST", "/jobs/batch", {"jobs": [{"type": "echo", "payload": {"n": n}} for n in range(4)]})
    assert response.status == 202, response.body
    ids = [job["job_id"] for job in response.body["items"]]
    duplicate = json.dumps({"job_id": ids[0], "type": "echo"})
    aws_stack.sqs.send_message(QueueUrl=aws_stack.queue_url, MessageBody=duplicate)
    messages = aws_stack.receive()
    assert len(messages) == 5
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    client = aws.dynamodb_client()
    client.meta.events.register("before-call", count)
    try:
        response_ = aws_stack.worker(messages)
    finally:
        client.meta.events.unregister("before-call", count)
    assert response_ == {"batchItemFailures": []}
    # One request claims the four jobs; the duplicate's own claim finds its job taken; four completions.
    assert calls == {"BatchExecuteStatement": 1, "UpdateItem": 5}
    done = [aws_stack.job(job_id) for job_id in ids]
    assert [(job["status"], job["attempts"]) for job in done] == [("succeeded", 1)] * 4
    assert [job["result"] for job in done] == [{"n": n} for n in range(4)]
