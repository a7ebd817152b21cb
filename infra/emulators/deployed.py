"""A deployed jobq stack, read back and driven: what CloudFormation made of the template, the ApiFunction invoked
as API Gateway invokes it, and the event source mapping fix MiniStack needs.
"""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.request
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulators.processes import http_json
from jobq_local.events import Route, find_route, http_api_event, iam_authorizer
from jobq_local.template import PhysicalResource, Template

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class Endpoint:
    """boto3 clients of one emulator, made on first use (any key is accepted)."""

    url: str
    region: str
    clients: dict[str, Any] = field(default_factory=dict, repr=False)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            import boto3

            session = boto3.session.Session("test", "test", region_name=self.region)
            self.clients[service] = session.client(service, endpoint_url=self.url)  # type: ignore[call-overload]
        return self.clients[service]


@dataclass(frozen=True)
class Stack:
    """A stack as DescribeStacks and DescribeStackResources report it."""

    name: str
    status: str
    outputs: Mapping[str, str]
    physical: Mapping[str, str]
    """Logical id -> physical id (a queue's is its URL)."""

    @classmethod
    def read(cls, cloudformation: Any, name: str) -> Stack:
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        resources = cloudformation.describe_stack_resources(StackName=name)["StackResources"]
        return cls(
            name,
            stack["StackStatus"],
            {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])},
            {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources},
        )

    def expected(self, document: Mapping[str, Any], parameters: Mapping[str, str], account_id: str) -> Template:
        """The template resolved against this stack's resources: what its outputs and variables should be."""
        template = Template(document, parameters=parameters, account_id=account_id, stack_name=self.name)
        template.physical = {logical: PhysicalResource(ref) for logical, ref in self.physical.items()}
        return template


def expected_outputs(template: Template) -> dict[str, str]:
    return {name: str(template.resolve(output["Value"])) for name, output in template.document["Outputs"].items()}


def differences(expected: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    """``name: actual != expected`` for every expected name that ``actual`` lacks or differs in."""
    return [
        f"{name}: {actual.get(name, '(missing)')!r} != {value!r}"
        for name, value in expected.items()
        if actual.get(name) != value
    ]


def fix_max_concurrency(lambda_client: Any, endpoint: str, uuid: str) -> tuple[Any, Any]:
    """MiniStack stores an event source mapping's ``ScalingConfig.MaximumConcurrency`` that came from a Ref as
    a string, and its SQS poller then fails on every pass; set it to the number. (boto3 parses the string back
    into a number, so the stored value is read raw.) Returns the value as stored before and after."""
    url = f"{endpoint}/2015-03-31/event-source-mappings/{uuid}"
    before = (http_json(url)[1].get("ScalingConfig") or {}).get("MaximumConcurrency")
    if isinstance(before, str):
        lambda_client.update_event_source_mapping(UUID=uuid, ScalingConfig={"MaximumConcurrency": int(before)})
    after = (http_json(url)[1].get("ScalingConfig") or {}).get("MaximumConcurrency")
    return before, after


class InvokedApi:
    """The deployed ApiFunction invoked as API Gateway invokes it: a payload 2.0 event for the route the deployed
    API would pick, with the AWS_IAM authorizer context of ``caller``."""

    def __init__(self, lambda_client: Any, function_name: str, routes: Sequence[Route], caller: str) -> None:
        self._lambda = lambda_client
        self.function_name = function_name
        self.routes = list(routes)
        self.caller = caller

    @classmethod
    def routes_of(cls, keys: Sequence[str]) -> list[Route]:
        """Routes from the deployed API's route keys (``GET /jobs/{job_id}``)."""
        return [Route(*key.split(" ", 1)) for key in keys if " " in key]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Status and decoded body of one request."""
        found = find_route(self.routes, method, path)
        if found is None:
            raise LookupError(f"the deployed API has no route for {method} {path}")
        route, parameters = found
        event = http_api_event(
            method,
            path,
            headers={"content-type": "application/json", "host": "rehearsal.invalid"},
            body=None if body is None else json.dumps(body),
            route=route,
            path_parameters=parameters,
            authorizer=iam_authorizer(self.caller),
        )
        response = self._lambda.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
        raw = response["Payload"].read()
        if response.get("FunctionError"):
            raise RuntimeError(f"{self.function_name} failed ({response['FunctionError']}): {raw[:1000]!r}")
        answer = json.loads(raw)
        text = answer.get("body") or ""
        if answer.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        return int(answer["statusCode"]), json.loads(text) if text else None

    def expect(self, status: int, method: str, path: str, body: Any = None) -> Any:
        """The body of a request that must answer ``status``."""
        got, answer = self.call(method, path, body)
        if got != status:
            raise RuntimeError(f"{method} {path} answered {got} (wanted {status}): {answer}")
        return answer

    def wait(self, job_id: str, *, timeout: float, until: frozenset[str] = TERMINAL) -> dict[str, Any]:
        """The job once its status is in ``until``; TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        pause = 0.2
        while True:
            job: dict[str, Any] = self.expect(200, "GET", f"/jobs/{job_id}")
            if job["status"] in until:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f} s")
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)


def log_lines(logs: Any, group: str, since_ms: int) -> list[str]:
    """Messages of a log group since ``since_ms`` (every page)."""
    messages: list[str] = []
    options: dict[str, Any] = {"logGroupName": group, "startTime": since_ms}
    while True:
        page = logs.filter_log_events(**options)
        messages += [event["message"] for event in page.get("events", [])]
        if not page.get("nextToken") or not page.get("events"):
            return messages
        options["nextToken"] = page["nextToken"]


def deployed_bytecode(lambda_client: Any, function: str) -> tuple[int, int]:
    """``.py`` files and ``__pycache__`` pycs in the code package Lambda holds for ``function``."""
    location = lambda_client.get_function(FunctionName=function)["Code"]["Location"]
    with urllib.request.urlopen(location, timeout=60) as response:  # noqa: S310 - the emulator's own URL
        package = zipfile.ZipFile(io.BytesIO(response.read()))
    names = package.namelist()
    pycs = [name for name in names if name.endswith(".pyc") and "__pycache__" in name.split("/")]
    return sum(name.endswith(".py") for name in names), len(pycs)
