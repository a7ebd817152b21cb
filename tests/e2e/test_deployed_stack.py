"""The real-AWS tier's driver (tests.support.deployment.DeployedStack), pointed at the local runtime: a stack's
outputs, signed requests with the session's credentials, parameters checked, what it cannot do skipped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.credentials import Credentials

from jobq_local.process import RuntimeProcess
from tests.support.backend import aws_client
from tests.support.deployment import DeployedStack, cli_target, requires_local

pytestmark = pytest.mark.e2e


class FakeSession:
    """What DeployedStack asks of a boto3 session: CloudFormation's describe_stacks, credentials, a region."""

    region_name = "us-east-1"

    def __init__(self, runtime: RuntimeProcess) -> None:
        self.runtime = runtime

    def client(self, service: str) -> Any:
        runtime = self.runtime

        class CloudFormation:
            def describe_stacks(self, StackName: str) -> dict[str, Any]:
                resources = runtime.endpoints["resources"]
                outputs = {
                    "ApiUrl": runtime.api_url + "/",
                    "JobsTableName": resources["JobsTable"],
                    "JobsQueueUrl": resources["JobsQueue"],
                    "JobsDeadLetterQueueUrl": resources["JobsDeadLetterQueue"],
                }
                return {
                    "Stacks": [
                        {
                            "StackName": StackName,
                            "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                            "Parameters": [{"ParameterKey": "MaxAttempts", "ParameterValue": "3"}],
                        }
                    ]
                }

        return CloudFormation() if service == "cloudformation" else ("a plain client of", service)

    def get_credentials(self) -> Credentials:
        return Credentials("deployer", "test")  # the local authorizer's secret: any key id signs as itself


@pytest.fixture(scope="module")
def stack() -> Iterator[DeployedStack]:
    with RuntimeProcess({"MaxAttempts": "3"}) as runtime:
        yield DeployedStack("jobq-prod", FakeSession(runtime))


def test_it_reads_the_stacks_outputs_and_signs_as_the_sessions_caller(stack: DeployedStack) -> None:
    assert stack.endpoints["resources"]["JobsTable"].endswith("JobsTable")
    status, job = stack.request("POST", "/jobs", {"type": "echo", "payload": {"on": "aws"}})
    assert status == 202, job
    assert job["owner"] == "arn:aws:iam::000000000000:user/deployer"
    assert stack.wait_for(job["job_id"])["result"] == {"on": "aws"}
    assert stack.request("GET", f"/jobs/{job['job_id']}", caller=None)[0] == 403
    assert stack.request("GET", f"/jobs/{job['job_id']}", secret="wrong")[0] == 403


def test_what_a_deployed_stack_cannot_do_is_skipped_with_the_reason(stack: DeployedStack) -> None:
    stack.require({"MaxAttempts": "3"})  # as deployed: goes on
    with pytest.raises(pytest.skip.Exception, match="needs MaxAttempts=5"):
        stack.require({"MaxAttempts": "5"})
    with pytest.raises(pytest.skip.Exception, match="JOBQ_AWS_CALLERS=alice=<profile>"):
        stack.request("GET", "/jobs", caller="alice")
    with pytest.raises(pytest.skip.Exception, match="local runtime only: a test-only job type"):
        requires_local(stack, "a test-only job type")
    with pytest.raises(pytest.skip.Exception, match="CloudWatch Logs"):
        stack.log()
    assert cli_target(stack)[0] == ["--stack", "jobq-prod"]
    assert stack.endpoint("sqs") is None
    assert aws_client(stack, "sqs") == ("a plain client of", "sqs")  # the session's own, at AWS's endpoints
