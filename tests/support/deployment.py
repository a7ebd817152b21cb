"""What the e2e scenarios run against: the local runtime (a RuntimeProcess on the chosen emulator), or, with
``JOBQ_E2E_BACKEND=aws`` (``JOBQ_STACK=name make test-aws``), a stack deployed to AWS, driven the same way.
Every scenario module asks for ``SCENARIO_PARAMETERS``, so that one stack deployed with them serves them all.

A deployed stack has one caller (your AWS credentials) and the parameters it was deployed with: a scenario
that needs a second caller, an admin, other parameters, the runtime's logs or a test-only job type is skipped
there, with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from jobq import Client
from jobq_local.process import DEFAULT_CALLER, TERMINAL, RuntimeProcess, json_request, wait_for_job
from tests.support.backend import BACKEND

SCENARIO_PARAMETERS = {"RetryBaseSeconds": "1", "RetryMaxSeconds": "2", "MaxAttempts": "3"}
"""Short backoff, three attempts: what the scenarios expect (deploy the test-aws stack with them)."""
AWS_WAIT_SCALE = 4.0
"""How much longer a wait may take on AWS than locally (cold starts, the event source's polling)."""


@contextmanager
def deployment(
    parameters: Mapping[str, str] | None = None,
    *,
    extra_args: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
    local_only: str | None = None,
) -> Iterator[Any]:
    """A RuntimeProcess started with these settings, or the deployed stack when the backend is ``aws`` (whose
    parameters must match ``parameters``). ``local_only``: why this module cannot run against AWS at all."""
    if BACKEND != "aws":
        with RuntimeProcess(parameters, extra_args=extra_args, environment=environment) as process:
            yield process
        return
    if local_only:
        pytest.skip(f"local runtime only: {local_only}")
    stack = DeployedStack.from_environment()
    stack.require(parameters or {})
    yield stack


def requires_local(runtime: Any, reason: str) -> None:
    """Skip the calling test when it runs against AWS (``reason``: what it needs of the local runtime)."""
    if isinstance(runtime, DeployedStack):
        pytest.skip(f"local runtime only: {reason}")


def cli_target(runtime: Any) -> tuple[list[str], dict[str, str]]:
    """How the ``jobq`` command reaches ``runtime``: its target options and environment."""
    if isinstance(runtime, DeployedStack):
        return ["--stack", runtime.stack_name], dict(os.environ)
    return ["--local"], {"JOBQ_LOCAL_STATE": str(runtime.state_file), "PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}


def client_of(runtime: Any) -> Client:
    """``jobq.Client`` of ``runtime`` as its users build one."""
    if isinstance(runtime, DeployedStack):
        return Client.from_stack(runtime.stack_name)
    return Client.local(state_file=runtime.state_file)


class DeployedStack:
    """A jobq stack on AWS: its outputs, and requests to its API signed with your standard AWS credentials."""

    def __init__(self, stack_name: str, session: Any) -> None:
        self.stack_name = stack_name
        self.session = session
        stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        self.parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        self.api_url = outputs["ApiUrl"].rstrip("/")
        resources = {
            "JobsTable": outputs.get("JobsTableName"),
            "JobsQueue": outputs.get("JobsQueueUrl"),
            "JobsDeadLetterQueue": outputs.get("JobsDeadLetterQueueUrl"),
            "IdempotencyTable": outputs.get("IdempotencyTableName"),
        }
        self.endpoints = {"api_url": self.api_url, "region": session.region_name, "resources": resources}
        self.callers = dict(
            item.split("=", 1) for item in os.environ.get("JOBQ_AWS_CALLERS", "").split(",") if "=" in item
        )
        """``alice=profile,admin=profile``: the AWS profiles other callers of a scenario sign as."""

    @classmethod
    def from_environment(cls) -> DeployedStack:
        """The stack ``JOBQ_STACK`` names, with the default credentials; skipped without either."""
        import boto3

        name = os.environ.get("JOBQ_STACK")
        if not name:
            pytest.skip("JOBQ_STACK is not set: name the deployed stack to test (JOBQ_STACK=name make test-aws)")
        session = boto3.session.Session()
        if session.get_credentials() is None:
            pytest.skip("no AWS credentials (the standard chain: environment, profile, SSO, instance role)")
        return cls(name, session)

    def require(self, parameters: Mapping[str, str]) -> None:
        """Skip unless the stack was deployed with these parameter values."""
        different = {k: v for k, v in parameters.items() if self.parameters.get(k) != v}
        if different:
            wanted = " ".join(f"{k}={v}" for k, v in different.items())
            pytest.skip(f"{self.stack_name} was deployed with other parameters; this needs {wanted}")

    def endpoint(self, service: str) -> None:
        """AWS itself (``tests.support.backend.aws_client`` then builds a plain client)."""
        return

    def log(self) -> str:
        pytest.skip("the functions' logs are in CloudWatch Logs, not read by the scenarios")

    def _credentials(self, caller: str) -> Any:
        if caller == DEFAULT_CALLER:
            return self.session.get_credentials().get_frozen_credentials()
        if caller not in self.callers:
            pytest.skip(f"needs a caller {caller!r} of its own: set JOBQ_AWS_CALLERS={caller}=<profile>,...")
        import boto3

        return boto3.session.Session(profile_name=self.callers[caller]).get_credentials().get_frozen_credentials()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float = 30.0,
        caller: str | None = DEFAULT_CALLER,
        secret: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request to the deployed API, signed as ``caller`` (None: unsigned; ``secret``: a wrong one)."""
        signer = None
        if caller is not None:
            found = self._credentials(caller)
            signer = (found.access_key, secret or found.secret_key, found.token)
        url, region = self.api_url + path, self.session.region_name
        return json_request(method, url, body, headers, signer, region, timeout=timeout)

    def wait_for(
        self,
        job_id: str,
        statuses: frozenset[str] = TERMINAL,
        *,
        timeout: float = 30.0,
        caller: str | None = DEFAULT_CALLER,
    ) -> dict[str, Any]:
        scaled = timeout * AWS_WAIT_SCALE
        return wait_for_job(self.request, job_id, statuses, timeout=scaled, caller=caller, interval=0.5)
