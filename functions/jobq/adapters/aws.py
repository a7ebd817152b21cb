"""boto3 clients and the translation of SDK failures into domain errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from jobq.caching import per_process
from jobq.domain.errors import DependencyUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

# Fail fast enough that the API answers 503 well inside API Gateway's 30 s, with boto3's standard
# retry mode (exponential backoff, throttling and transient errors retried).
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
)


@per_process
def dynamodb_client() -> DynamoDBClient:
    """The process's DynamoDB client (region and endpoint from the standard AWS variables)."""
    return boto3.session.Session().client("dynamodb", config=CLIENT_CONFIG)


@per_process
def sqs_client() -> SQSClient:
    """The process's SQS client (region and endpoint from the standard AWS variables)."""
    return boto3.session.Session().client("sqs", config=CLIENT_CONFIG)


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


@contextmanager
def unavailable_on_failure(service: str, operation: str) -> Iterator[None]:
    """Turn SDK failures (after boto3's own retries) into DependencyUnavailableError."""
    try:
        yield
    except ClientError as exc:
        raise DependencyUnavailableError(f"{service} {operation} failed: {error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise DependencyUnavailableError(f"{service} {operation} failed: {type(exc).__name__}") from exc
