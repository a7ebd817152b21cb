"""The whole jobq stack on moto in-process: resources from template.yaml, the real handlers, real event shapes."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3
from moto import mock_aws

from jobq import wiring
from jobq.client import Client
from jobq_local.events import (
    LambdaContext,
    QueueMessage,
    Route,
    find_route,
    http_api_event,
    iam_authorizer,
    scheduled_event,
    sqs_event,
)
from jobq_local.http_api import template_routes
from jobq_local.provision import Provisioned, provision
from jobq_local.template import Template
from tests.support.callers import ALICE

REGION = "us-east-1"
AWS_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass
class HttpResult:
    """What the API function answered."""

    status: int
    headers: Mapping[str, str]
    body: Any
    response_bytes: int = 0
    """The function's whole response as Lambda returns it (JSON): what Lambda's 6 MB limit applies to."""

    @property
    def error_code(self) -> str | None:
        return self.body.get("error", {}).get("code") if isinstance(self.body, dict) else None


@dataclass
class Stack:
    """Provisioned resources plus helpers that invoke the functions the way Lambda would."""

    template: Template
    provisioned: Provisioned
    environment: dict[str, str]
    sqs: Any
    dynamodb: Any
    api_routes: list[Route] = field(default_factory=list)

    @property
    def queue_url(self) -> str:
        return self.provisioned.ref("JobsQueue")

    @property
    def dlq_url(self) -> str:
        return self.provisioned.ref("JobsDeadLetterQueue")

    @property
    def table_name(self) -> str:
        return self.provisioned.ref("JobsTable")

    # -- API function ---------------------------------------------------------------------------

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: str = "",
        headers: Mapping[str, str] | None = None,
        raw_body: str | bytes | None = None,
        caller: str = ALICE,
    ) -> HttpResult:
        """One HTTP request through the API function (payload 2.0 event, as API Gateway sends it), signed
        by ``caller`` as far as the AWS_IAM authorizer's context goes."""
        from jobq.handlers import api

        found = find_route(self.api_routes, method, path)
        if found is None:  # API Gateway itself answers unknown routes
            return HttpResult(404, {}, {"message": "Not Found"})
        route, parameters = found
        text = raw_body if raw_body is not None else (None if body is None else json.dumps(body))
        all_headers = {"content-type": "application/json", "host": "api.local"} | dict(headers or {})
        event = http_api_event(
            method,
            path,
            query=query,
            headers=all_headers,
            body=text,
            route=route,
            path_parameters=parameters,
            authorizer=iam_authorizer(caller),
        )
        spec = self.template.function("ApiFunction")
        response = api.lambda_handler(event, LambdaContext("ApiFunction", timeout_seconds=spec.timeout))
        payload = response.get("body")
        return HttpResult(
            status=int(response["statusCode"]),
            headers={k.lower(): v for k, v in (response.get("headers") or {}).items()},
            body=json.loads(payload) if payload else None,
            response_bytes=len(json.dumps(response)),
        )

    def submit(self, job_type: str, payload: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        result = self.api("POST", "/jobs", {"type": job_type, "payload": dict(payload or {}), **fields})
        assert result.status == 202, result.body
        document: dict[str, Any] = result.body
        return document

    def job(self, job_id: str) -> dict[str, Any]:
        result = self.api("GET", f"/jobs/{job_id}")
        assert result.status == 200, result.body
        document: dict[str, Any] = result.body
        return document

    # -- queue and worker -----------------------------------------------------------------------

    def receive(self, *, queue_url: str | None = None, max_messages: int = 10) -> list[QueueMessage]:
        """Messages visible now (no long polling), with all attributes, as the event source mapping gets them."""
        response = self.sqs.receive_message(
            QueueUrl=queue_url or self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return [QueueMessage.from_receive(message) for message in response.get("Messages", [])]

    def worker(self, messages: Sequence[QueueMessage], *, remaining_seconds: float | None = None) -> dict[str, Any]:
        """Invoke the worker function with a batch; delete the records it did not report as failures."""
        from jobq.handlers import worker

        spec = self.template.function("WorkerFunction")
        event = sqs_event(messages, queue_arn=self.provisioned.resources["JobsQueue"].attributes["Arn"], region=REGION)
        timeout = spec.timeout if remaining_seconds is None else remaining_seconds
        response: dict[str, Any] = worker.lambda_handler(
            event, LambdaContext("WorkerFunction", timeout_seconds=timeout)
        )
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        for message in messages:
            if message.message_id not in failed:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message.receipt_handle)
        return response

    def sweep(self) -> dict[str, Any]:
        """Invoke the sweeper function with the scheduled event its Schedule sends."""
        from jobq.handlers import sweeper

        spec = self.template.function("SweeperFunction")
        event = scheduled_event(
            "arn:aws:events:us-east-1:123456789012:rule/sweep", region=REGION, account_id="123456789012"
        )
        result: dict[str, Any] = sweeper.lambda_handler(
            event, LambdaContext("SweeperFunction", timeout_seconds=spec.timeout)
        )
        return result

    def drain(self, *, timeout: float = 30.0, settle: float = 0.0) -> int:
        """Receive and run until the queue stays empty for ``settle`` seconds; returns invocations made."""
        deadline = time.monotonic() + timeout
        invocations = 0
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            messages = self.receive()
            if messages:
                quiet_since = None
                self.worker(messages)
                invocations += 1
                continue
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since >= settle:
                return invocations
            time.sleep(0.05)
        raise AssertionError(f"queue did not drain within {timeout} s")

    def queue_depth(self, queue_url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@contextmanager
def serialised_dynamodb_writes() -> Iterator[None]:
    """DynamoDB applies each conditional write atomically; moto in-process does not lock, so emulate that."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals = {name: getattr(DynamoDBBackend, name) for name in ("update_item", "put_item", "delete_item")}

    def locked(original: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return original(self, *args, **kwargs)

        return call

    for name, original in originals.items():
        setattr(DynamoDBBackend, name, locked(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(DynamoDBBackend, name, original)


@contextmanager
def moto_partiql_updates() -> Iterator[None]:
    """The PartiQL UPDATEs the worker sends, which the store runs (``jobq_local.partiql``), in-process too."""
    from jobq_local import partiql

    restore = partiql.install()
    try:
        yield
    finally:
        restore()


@contextmanager
def moto_stack(parameters: Mapping[str, str] | None = None) -> Iterator[Stack]:
    """Provision template.yaml on moto and point the functions' environment at it, for one test."""
    saved = dict(os.environ)
    os.environ.update(AWS_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws(), serialised_dynamodb_writes(), moto_partiql_updates():
            template = Template(parameters=parameters, region=REGION)
            sqs = boto3.client("sqs", region_name=REGION)
            dynamodb = boto3.client("dynamodb", region_name=REGION)
            provisioned = provision(template, dynamodb=dynamodb, sqs=sqs)
            environment: dict[str, str] = {}
            for function in [spec.logical_id for spec in template.functions()]:
                for name, value in template.function_environment(function).items():
                    assert environment.get(name, value) == value, f"{name} differs between functions"
                    environment[name] = value
            os.environ.update(environment)
            wiring.clear_caches()
            routes = [spec.route for spec in template_routes(template) if spec.function == "ApiFunction"]
            yield Stack(template, provisioned, environment, sqs, dynamodb, routes)
    finally:
        wiring.clear_caches()
        os.environ.clear()
        os.environ.update(saved)


class StackClient(Client):
    """The real ``jobq.Client``, its HTTP hop replaced by a call of the stack's API function as ``caller``."""

    def __init__(self, stack: Stack, caller: str) -> None:
        super().__init__("https://api.local", region=REGION, token="unused")
        self.stack = stack
        self.caller = caller

    def _send(self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]) -> tuple[int, Any]:
        parts = urlsplit(url)
        result = self.stack.api(
            method, parts.path, query=parts.query, raw_body=data, caller=self.caller, headers=dict(headers)
        )
        return result.status, result.body
