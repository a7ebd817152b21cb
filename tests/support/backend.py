"""The AWS backend the e2e tests run against (``python -m emulators test BACKEND`` sets it; default: the
embedded moto), and AWS clients of it built the way its own users build them."""

from __future__ import annotations

import os
from typing import Any

import boto3

BACKEND = os.environ.get("JOBQ_E2E_BACKEND", "moto")
"""moto, localstack, dynamodb-local or ministack (see infra/emulators/backends.py)."""
BACKEND_VERSION = os.environ.get("JOBQ_E2E_BACKEND_VERSION", BACKEND)
"""What it is, with its version (``LocalStack 4.7.0 ...``): what a skip or xfail about its gaps names."""


def aws_client(runtime: Any, service: str) -> Any:
    """A client of ``service`` where ``runtime`` has it. Against LocalStack the session comes from
    localstack-client (as LocalStack's users make theirs: it finds LocalStack from AWS_ENDPOINT_URL or
    LOCALSTACK_HOST); against a deployed stack, your AWS session; elsewhere plain boto3 at the runtime's
    endpoint for the service."""
    if runtime.endpoint(service) is None:  # a stack on AWS (tests.support.deployment.DeployedStack)
        return runtime.session.client(service)
    if BACKEND == "localstack":
        from localstack_client.session import Session

        session = Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
        client = session.client(service)
        assert client.meta.endpoint_url.rstrip("/") == runtime.endpoint(service).rstrip("/")
        return client
    return boto3.client(
        service,
        endpoint_url=runtime.endpoint(service),
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
