"""AWS clients (botocore) and the translation of SDK failures into domain errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from jobq.caching import per_process
from jobq.domain.errors import DependencyUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

# Fail fast enough that the API answers 503 well inside API Gateway's 30 s, with boto3's standard
# retry mode (exponential backoff, throttling and transient errors retried). No client-side parameter
# validation: every request is built by the adapters' code, DynamoDB and SQS validate it anyway, and the
# walk of each parameter against the service model was a fifth of an UpdateItem's CPU in the client
# (1.96 -> 1.55 ms a call); a malformed request still fails, as a ValidationException from the service.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
    parameter_validation=False,
)


SERVICES = ("dynamodb", "sqs")
"""The services the functions' own session makes clients for."""

BOTOCORE_DATA = Path(__file__).with_name("botocore_data")
"""botocore's endpoints.json with only ``SERVICES``' entries (``make botocore-data`` writes it from the
pinned botocore). Searched before botocore's own data, it spares each cold start the parse of the whole
1.2 MB file; any other service resolves by its partition's defaults and its endpoint rules, as before."""


@per_process
def aws_session() -> botocore.session.Session:
    """The process's botocore session: its clients share one loader (service models read once).

    botocore, not boto3: the functions use no boto3 resource, and importing boto3 (and s3transfer
    with it) costs a cold start about 100 ms for nothing.
    """
    session = botocore.session.get_session()
    extra = session.get_config_variable("data_path")  # AWS_DATA_PATH: the caller's models still win
    session.set_config_variable("data_path", os.pathsep.join(filter(None, [extra, str(BOTOCORE_DATA)])))
    return session


@per_process
def dynamodb_client() -> DynamoDBClient:
    """The process's DynamoDB client (region and endpoint from the standard AWS variables)."""
    return cast("DynamoDBClient", aws_session().create_client("dynamodb", config=CLIENT_CONFIG))


@per_process
def sqs_client() -> SQSClient:
    """The process's SQS client (region and endpoint from the standard AWS variables)."""
    return cast("SQSClient", aws_session().create_client("sqs", config=CLIENT_CONFIG))


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
