"""Where the local runtime finds the AWS services: boto3's endpoint variables, as botocore reads them."""

from __future__ import annotations

import logging

import boto3
import pytest
from botocore.stub import Stubber

from jobq_local.endpoints import Endpoints, variable
from jobq_local.process import runtime_environment
from jobq_local.provision import enable_point_in_time_recovery
from jobq_local.runtime import LocalRuntime
from jobq_local.template import TemplateError


def test_no_endpoint_variable_means_aws_itself_or_the_embedded_store() -> None:
    endpoints = Endpoints.from_environment({"AWS_REGION": "us-east-1"})
    assert not endpoints.given
    assert endpoints.missing() == ["sqs", "dynamodb"]
    assert endpoints.environment() == {}


def test_a_per_service_endpoint_wins_over_the_general_one() -> None:
    endpoints = Endpoints.from_environment(
        {"AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"}
    )
    assert endpoints.url("sqs") == "http://127.0.0.1:4566"
    assert endpoints.url("dynamodb") == "http://127.0.0.1:8000"
    assert endpoints.url("sts") == "http://127.0.0.1:4566"
    assert endpoints.missing() == []
    assert endpoints.describe() == "sqs http://127.0.0.1:4566, dynamodb http://127.0.0.1:8000"
    assert endpoints.environment() == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000",
    }


def test_per_service_endpoints_alone_leave_the_others_to_aws() -> None:
    endpoints = Endpoints.from_environment({variable("sqs"): "http://127.0.0.1:9324"})
    assert endpoints.given
    assert endpoints.missing() == ["dynamodb"]
    assert endpoints.url("sts") is None


def test_the_variable_is_botocores() -> None:
    assert variable("sqs") == "AWS_ENDPOINT_URL_SQS"
    assert variable("dynamodb") == "AWS_ENDPOINT_URL_DYNAMODB"


def test_a_runtime_gets_the_endpoints_but_not_the_callers_credentials() -> None:
    environment = runtime_environment(
        {
            "AWS_ENDPOINT_URL": "http://e",
            "AWS_ENDPOINT_URL_SQS": "http://s",
            "AWS_ACCESS_KEY_ID": "caller",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_PROFILE": "prod",
            "PATH": "/usr/bin",
        }
    )
    assert environment == {"AWS_ENDPOINT_URL": "http://e", "AWS_ENDPOINT_URL_SQS": "http://s", "PATH": "/usr/bin"}


def test_the_runtime_refuses_endpoints_that_leave_one_of_its_services_to_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    runtime = LocalRuntime(endpoints=Endpoints(services={"sqs": "http://127.0.0.1:9324"}), emulator_port=None)
    with pytest.raises(TemplateError, match="AWS_ENDPOINT_URL_DYNAMODB not set"):
        runtime.start()


def _dynamodb() -> object:
    return boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")


def test_pitr_where_the_endpoint_has_none_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    client = _dynamodb()
    with Stubber(client) as stub:  # what DynamoDB Local answers
        stub.add_client_error(
            "update_continuous_backups", "UnknownOperationException", "An unknown operation was requested."
        )
        with caplog.at_level(logging.WARNING):
            assert enable_point_in_time_recovery(client, "jobs") is False  # type: ignore[arg-type]
    assert "jobs: this endpoint has no point-in-time recovery (UnknownOperationException)" in caplog.text


def test_pitr_failing_for_another_reason_fails_provisioning() -> None:
    client = _dynamodb()
    with Stubber(client) as stub:
        stub.add_client_error("update_continuous_backups", "ResourceNotFoundException", "no such table")
        with pytest.raises(Exception, match="ResourceNotFoundException"):
            enable_point_in_time_recovery(client, "jobs")  # type: ignore[arg-type]
