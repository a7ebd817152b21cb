"""Lambda events and contexts built from the SAM CLI's sample events in ``infra/events/``.

The samples were generated with ``sam local generate-event`` (``make events``); every event the tests
and the local runtime hand to a function starts from one of them, so the shapes are the real ones.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"


@cache
def _sample(name: str) -> dict[str, Any]:
    with (EVENTS_DIR / name).open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def sample(name: str) -> dict[str, Any]:
    """A fresh copy of a sample event (``http-api-proxy.json``, ``sqs-receive-message.json``, ...)."""
    return copy.deepcopy(_sample(name))


@dataclass(frozen=True)
class Route:
    """An HttpApi route of a function: ``GET /jobs/{job_id}``."""

    method: str
    path: str
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters if this route takes the request, else None."""
        if self.method not in {method.upper(), "ANY"}:
            return None
        found = self.pattern.match(path)
        return None if found is None else found.groupdict()


def find_route(routes: Iterable[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway would pick: exact paths before templated ones."""
    candidates = sorted(routes, key=lambda route: route.path.count("{"))
    for route in candidates:
        parameters = route.match(method, path)
        if parameters is not None:
            return route, parameters
    return None


def http_api_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    body: bytes | str | None = None,
    route: Route | None = None,
    path_parameters: Mapping[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    now: datetime | None = None,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event, as API Gateway builds it for a Lambda proxy route.

    ``authorizer`` is the route authorizer's context (``iam_authorizer(...)``, or ``{"jwt": ...}``); without one
    the event has none, as for a route without an authorizer.
    """
    event = sample("http-api-proxy.json")
    moment = now or datetime.now(UTC)
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    cookies = lowered.pop("cookie", None)
    parameters: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        parameters.setdefault(name, []).append(value)
    event["routeKey"] = route.key if route else "$default"
    event["rawPath"] = path
    event["rawQueryString"] = query
    event["headers"] = lowered
    if cookies:
        event["cookies"] = [part.strip() for part in cookies.split(";") if part.strip()]
    else:
        event.pop("cookies", None)
    if parameters:
        event["queryStringParameters"] = {name: ",".join(values) for name, values in parameters.items()}
    else:
        event.pop("queryStringParameters", None)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    else:
        event.pop("pathParameters", None)
    event.pop("stageVariables", None)
    context = event["requestContext"]
    context.pop("authentication", None)
    context.pop("authorizer", None)
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    context["http"].update(
        {"method": method.upper(), "path": path, "sourceIp": source_ip, "userAgent": lowered.get("user-agent", "")}
    )
    context["requestId"] = uuid.uuid4().hex[:16]
    context["routeKey"] = event["routeKey"]
    context["time"] = moment.strftime("%d/%b/%Y:%H:%M:%S +0000")
    context["timeEpoch"] = int(moment.timestamp() * 1000)
    context["domainName"] = lowered.get("host", context["domainName"])
    if body is None or body in {b"", ""}:
        event.pop("body", None)
        event["isBase64Encoded"] = False
    elif isinstance(body, bytes):
        try:
            event["body"] = body.decode("utf-8")
            event["isBase64Encoded"] = False
        except UnicodeDecodeError:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    else:
        event["body"] = body
        event["isBase64Encoded"] = False
    return event


def iam_authorizer(user_arn: str, access_key: str = "ASIAEXAMPLE") -> dict[str, Any]:
    """The context an AWS_IAM route puts in ``requestContext.authorizer`` (payload 2.0) for a signed caller."""
    account = user_arn.split(":")[4] if user_arn.count(":") >= 5 else ""
    return {
        "iam": {
            "accessKey": access_key,
            "accountId": account,
            "callerId": access_key,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": user_arn,
            "userId": access_key,
        }
    }


@dataclass(frozen=True)
class QueueMessage:
    """An SQS message as ReceiveMessage returns it (with ``AttributeNames=["All"]``)."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: Mapping[str, str] = field(default_factory=dict)
    message_attributes: Mapping[str, Any] = field(default_factory=dict)
    md5_of_body: str | None = None

    @classmethod
    def from_receive(cls, message: Mapping[str, Any]) -> QueueMessage:
        """From one entry of a ReceiveMessage response."""
        return cls(
            message_id=str(message["MessageId"]),
            receipt_handle=str(message["ReceiptHandle"]),
            body=str(message.get("Body", "")),
            attributes=dict(message.get("Attributes", {})),
            message_attributes=dict(message.get("MessageAttributes", {})),
            md5_of_body=message.get("MD5OfBody"),
        )


def sqs_event(messages: Sequence[QueueMessage], *, queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping hands the function for a batch of messages."""
    template = sample("sqs-receive-message.json")["Records"][0]
    records = []
    for message in messages:
        record = copy.deepcopy(template)
        now_ms = str(int(time.time() * 1000))
        attributes = {
            "ApproximateReceiveCount": message.attributes.get("ApproximateReceiveCount", "1"),
            "SentTimestamp": message.attributes.get("SentTimestamp", now_ms),
            "SenderId": message.attributes.get("SenderId", record["attributes"]["SenderId"]),
            "ApproximateFirstReceiveTimestamp": message.attributes.get("ApproximateFirstReceiveTimestamp", now_ms),
        }
        record.update(
            {
                "messageId": message.message_id,
                "receiptHandle": message.receipt_handle,
                "body": message.body,
                "attributes": attributes,
                "messageAttributes": _lambda_message_attributes(message.message_attributes),
                "md5OfBody": message.md5_of_body or hashlib.md5(message.body.encode()).hexdigest(),  # noqa: S324
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
        records.append(record)
    return {"Records": records}


def _lambda_message_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """ReceiveMessage's ``StringValue``/``DataType`` become Lambda's ``stringValue``/``dataType``."""
    converted: dict[str, Any] = {}
    for name, value in attributes.items():
        converted[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
    return converted


def scheduled_event(rule_arn: str, *, region: str, account_id: str, now: datetime | None = None) -> dict[str, Any]:
    """The EventBridge event a Schedule event source delivers."""
    event = sample("scheduled-event.json")
    moment = now or datetime.now(UTC)
    event.update(
        {
            "id": str(uuid.uuid4()),
            "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region,
            "account": account_id,
            "resources": [rule_arn],
        }
    )
    return event


class LambdaContext:
    """The context object Lambda passes a handler; remaining time counts down from the function's Timeout."""

    def __init__(
        self,
        function_name: str,
        *,
        timeout_seconds: float,
        memory_limit_in_mb: int = 128,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        clock: Any = time.monotonic,
    ) -> None:
        self._clock = clock
        self._deadline = clock() + timeout_seconds
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds before Lambda would stop this invocation."""
        return max(0, int((self._deadline - self._clock()) * 1000))
