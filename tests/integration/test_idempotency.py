"""Idempotency-Key on POST /jobs with Powertools idempotency on the template's IdempotencyTable (moto)."""

from __future__ import annotations

import time
from typing import Any

from jobq_local.template import Template
from tests.support.stack import Stack

KEY = {"idempotency-key": "order-4711"}


def test_same_key_and_body_returns_the_same_job_and_sends_nothing_new(aws_stack: Stack) -> None:
    body = {"type": "echo", "payload": {"order": 4711}}
    first = aws_stack.api("POST", "/jobs", body, headers=KEY)
    second = aws_stack.api("POST", "/jobs", body, headers=KEY)

    assert first.status == 202
    assert second.status == 200
    assert second.body["job_id"] == first.body["job_id"]
    assert second.headers["location"] == f"/jobs/{first.body['job_id']}"
    assert len(aws_stack.receive()) == 1
    assert aws_stack.dynamodb.scan(TableName=aws_stack.table_name)["Count"] == 1


def test_replay_after_the_job_ran_returns_its_current_state(aws_stack: Stack) -> None:
    body = {"type": "echo", "payload": {"n": 1}}
    first = aws_stack.api("POST", "/jobs", body, headers=KEY)
    aws_stack.drain()
    again = aws_stack.api("POST", "/jobs", body, headers=KEY)
    assert again.status == 200
    assert again.body["job_id"] == first.body["job_id"]
    assert again.body["status"] == "succeeded"
    assert aws_stack.receive() == []


def test_same_key_with_a_different_body_is_409(aws_stack: Stack) -> None:
    assert aws_stack.api("POST", "/jobs", {"type": "echo", "payload": {"n": 1}}, headers=KEY).status == 202
    conflict = aws_stack.api("POST", "/jobs", {"type": "echo", "payload": {"n": 2}}, headers=KEY)
    assert conflict.status == 409
    assert conflict.error_code == "idempotency_key_reused"
    assert len(aws_stack.receive()) == 1


def test_a_503_leaves_the_key_free_for_the_retry(aws_stack: Stack) -> None:
    from jobq.adapters import aws

    def refuse(**_: Any) -> Any:
        raise aws_stack.sqs.exceptions.QueueDoesNotExist(
            {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}}, "SendMessage"
        )

    client = aws.sqs_client()
    client.meta.events.register("before-call.sqs.SendMessage", refuse, unique_id="refuse")
    body = {"type": "echo", "payload": {}}
    failed = aws_stack.api("POST", "/jobs", body, headers=KEY)
    client.meta.events.unregister("before-call.sqs.SendMessage", unique_id="refuse")
    assert failed.status == 503
    assert aws_stack.dynamodb.scan(TableName=aws_stack.table_name)["Count"] == 0

    retried = aws_stack.api("POST", "/jobs", body, headers=KEY)
    assert retried.status == 202
    assert len(aws_stack.receive()) == 1


def test_keys_outlive_queue_retention_plus_dlq_retention(aws_stack: Stack) -> None:
    aws_stack.api("POST", "/jobs", {"type": "echo"}, headers=KEY)
    (record,) = aws_stack.dynamodb.scan(TableName=aws_stack.provisioned.ref("IdempotencyTable"))["Items"]
    lifetime = int(record["expiration"]["N"]) - time.time()

    template = Template()
    queue = template.resource("JobsQueue")["Properties"]["MessageRetentionPeriod"]
    dlq = template.resource("JobsDeadLetterQueue")["Properties"]["MessageRetentionPeriod"]
    assert lifetime > int(queue) + int(dlq)
    minimum_ttl_days = template.document["Parameters"]["JobTtlDays"]["MinValue"]
    assert minimum_ttl_days * 86400 >= int(queue) + int(dlq)
    ttl = aws_stack.dynamodb.describe_time_to_live(TableName=aws_stack.provisioned.ref("IdempotencyTable"))
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expiration"
