"""The local runtime: template.yaml's functions behind an HTTP API, SQS event source mappings and schedules.

Functions run in execution environments of their own (``isolated``: child processes, one per concurrent
invocation, each importing its handler once and keeping its module state between invocations, as Lambda's warm
starts do), with the environment variables the template gives them. This module assembles the parts:
provisioning, the functions, the HTTP API (``http_api``), the SQS event source mappings
(``event_source_mapping``) and the schedules (``schedules``).
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from jobq_local import LOGGER_NAME
from jobq_local.auth import LOCAL_ACCOUNT, Authorizer, JwtAuthorizer, NoAuthorizer, SigV4Authorizer
from jobq_local.endpoints import SERVICES, Endpoints, identify, variable
from jobq_local.event_source_mapping import SqsEventSourceMapping, sqs_mappings
from jobq_local.functions import Hosted
from jobq_local.http_api import HttpApiServer, api_routes, public_routes
from jobq_local.isolated import EnvironmentDiedError, IsolatedFunction
from jobq_local.process import die_with_parent
from jobq_local.schedules import Schedule, schedules
from jobq_local.template import FunctionSpec, Template, TemplateError

_log = logging.getLogger(LOGGER_NAME)

DEFAULT_POLLERS = 6
"""Concurrent pollers of each SQS event source mapping (Lambda starts with five)."""
DEFAULT_ENVIRONMENTS = 2
"""At most this many execution environments of a function invoked over HTTP or by a schedule (an SQS-fed
function has one per poller). Each concurrent submission is more work for the store, which serves every
function on one interpreter: on the 2-core machine, ``make bench`` with 2 API environments instead of 3 gave
the same throughput (57-61 jobs/s against 55-64, three alternating pairs) and the same POST waits, at a p50 of
37-40 ms instead of 46-59 and a p95 of 62-68 instead of 99-170."""
REQUEST_NICENESS = 8
"""CPU niceness of the environments of functions invoked over HTTP or by a schedule (the API, the sweeper),
above the queue-fed worker's and the store's: on Lambda each environment has CPU of its own, on a laptop all
share a few cores, and this way a job already in flight is served before a new request is taken in (under
load, the wait moves from the jobs to the clients' POSTs; an idle machine runs everything at once anyway)."""
DEFAULT_ADMIN = "admin"
"""The access key id of the local admin (SPEC section 10): ``jobq --local`` signs with it."""


def queue_fed(spec: FunctionSpec) -> bool:
    """Whether an SQS event source invokes the function (the worker)."""
    return any(event.type == "SQS" for event in spec.events)


def niceness(spec: FunctionSpec) -> int:
    """The CPU niceness of the function's environments: 0 for the queue-fed, REQUEST_NICENESS for the rest."""
    return 0 if queue_fed(spec) else REQUEST_NICENESS


class RequestCounter:
    """Counts AWS API calls by who made them (``ApiFunction:PutItem``, ``event-source:ReceiveMessage``): on the
    clients it is attached to (botocore ``before-call`` events), and as the functions' environments report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def attach(self, client: Any, prefix: str) -> None:
        def count(model: Any, **_: Any) -> None:
            with self._lock:
                self.calls[f"{prefix}:{model.name}"] += 1

        client.meta.events.register("before-call", count)

    def add(self, calls: Mapping[str, int]) -> None:
        """Calls counted elsewhere (in a function's own process)."""
        with self._lock:
            self.calls.update(calls)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)


def function_environments(template: Template) -> dict[str, dict[str, str]]:
    """Each function's environment from the template, resolved against the provisioned resources."""
    return {spec.logical_id: template.function_environment(spec.logical_id) for spec in template.functions()}


def merged_environment(environments: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The variables of all functions, which share this process; a variable two functions set differently fails."""
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for function, variables in environments.items():
        for name, value in variables.items():
            if name in merged and merged[name] != value:
                raise TemplateError(
                    f"{function} and {owner[name]} set {name} differently; the local runtime runs both in one process"
                )
            merged[name] = value
            owner[name] = function
    return merged


def free_port_error(host: str, port: int, option: str) -> str | None:
    """None if ``port`` can be bound on ``host``, else a one-line error that says how to choose another."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return f"port {port} on {host} is in use; choose another with: make run ARGS='{option} {port + 1}'"
    return None


class LocalRuntime:
    """Provision the template's resources, then serve its functions' events until stopped."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, str] | None = None,
        stack_name: str = "jobq",
        api_port: int = 3000,
        emulator_port: int | None = 4566,
        endpoints: Endpoints | None = None,
        pollers: int = DEFAULT_POLLERS,
        environments: int = DEFAULT_ENVIRONMENTS,
        schedules_every: float | None = None,
        host: str = "127.0.0.1",
        admins: Sequence[str] = (DEFAULT_ADMIN,),
        no_auth: bool = False,
        jwks: Mapping[str, Any] | None = None,
        raw_logs: bool = False,
    ) -> None:
        self.parameters = dict(parameters or {})
        self.admins = list(admins)
        self.no_auth = no_auth
        self.jwks = jwks
        self.raw_logs = raw_logs
        self._isolated: list[IsolatedFunction] = []
        self.stack_name = stack_name
        self.api_port = api_port
        self.emulator_port = emulator_port
        self.external = endpoints or Endpoints()
        """The endpoints given (boto3's variables); none: the embedded store serves every service."""
        self.emulator: str | None = None
        """What the endpoint is, when it says (``LocalStack 4.7.0``, ``MiniStack 1.5.33``)."""
        self.pollers = pollers
        self.environments = environments
        self.schedules_every = schedules_every
        self.host = host
        self.counter = RequestCounter()
        self.template: Template | None = None
        self._store: subprocess.Popen[bytes] | None = None
        self._api: HttpApiServer | None = None
        self._mappings: list[SqsEventSourceMapping] = []
        self._schedules: list[Schedule] = []
        self._started = False

    @property
    def emulator_url(self) -> str:
        """The endpoint outside tools use (``aws --endpoint-url``); SQS's when the services have their own."""
        if not self.external.given:
            return f"http://{self.host}:{self.emulator_port}"
        return str(self.external.default or self.external.url("sqs"))

    @property
    def service_endpoints(self) -> dict[str, str]:
        """Each of jobq's services and where it is."""
        if not self.external.given:
            return dict.fromkeys(SERVICES, self.emulator_url)
        return {service: str(self.external.url(service)) for service in SERVICES}

    def start(self) -> None:
        """Emulator, resources, functions, then the event sources."""
        import os

        import boto3

        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            os.environ.setdefault(name, value)
        region = os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
        os.environ.setdefault("AWS_REGION", region)
        if not self.external.given:
            self._start_embedded_emulator()
        elif self.external.missing():
            missing = " and ".join(variable(service) for service in self.external.missing())
            raise TemplateError(
                f"{missing} not set: with per-service endpoints, each of jobq's services needs one "
                "(or set AWS_ENDPOINT_URL for all of them)"
            )
        else:
            self.emulator = identify(self.emulator_url)
        from botocore.config import Config

        from jobq_local.provision import provision

        session = boto3.session.Session()
        # No endpoint_url: botocore resolves AWS_ENDPOINT_URL_<SERVICE>, then AWS_ENDPOINT_URL, for these clients
        # exactly as for the functions' own, so provisioning and the functions always meet at the same endpoints.
        sqs = session.client("sqs")
        dynamodb = session.client("dynamodb")
        account_id = self._account_id(session)
        self.template = Template(
            parameters=self._with_admins(self.parameters),
            region=region,
            account_id=account_id,
            stack_name=self.stack_name,
        )
        provision(self.template, dynamodb=dynamodb, sqs=sqs)
        environments = function_environments(self.template)
        os.environ.update(merged_environment(environments))
        # Every function runs in execution environments of its own (child processes, one per concurrent
        # invocation): a handler that kills its process takes one environment down, never the runtime, the
        # other functions or the store, and concurrent invocations run on every core.
        child_environment = dict(os.environ) | {"JOBQ_LOCAL_RAW_LOGS": "1" if self.raw_logs else "0"}
        functions: dict[str, Hosted] = {}
        for spec in self.template.functions():
            isolated = IsolatedFunction(
                spec,
                region,
                account_id,
                child_environment,
                on_calls=self.counter.add,
                # an SQS-fed function is invoked by its pollers, at most one batch each at a time
                max_environments=self.pollers if queue_fed(spec) else self.environments,
                nice=niceness(spec),
            )
            self._isolated.append(isolated)
            functions[spec.logical_id] = isolated
        for isolated in self._isolated:  # a broken handler fails the start, not the first request
            try:
                isolated.warm()
            except EnvironmentDiedError as exc:
                raise TemplateError(f"{exc}; its log above says why") from None
        self._api = HttpApiServer(
            api_routes(self.template, functions),
            self.host,
            self.api_port,
            authorizer=self._authorizer(region),
            public=public_routes(self.template),
        )
        # Lambda's pollers are not Python; this one's requests are built by its own code, so botocore's
        # walk of every parameter against the model is CPU the functions on the same cores go without.
        esm_client = session.client("sqs", config=Config(parameter_validation=False))
        self.counter.attach(esm_client, "event-source")
        self._mappings = [
            SqsEventSourceMapping(function, config, esm_client, pollers=self.pollers)
            for function, config in sqs_mappings(self.template, functions)
        ]
        self._schedules = schedules(self.template, functions, every=self.schedules_every)
        self._api.start()
        for mapping in self._mappings:
            mapping.start()
        for schedule in self._schedules:
            schedule.start()
        self._started = True

    def _with_admins(self, parameters: Mapping[str, str]) -> dict[str, str]:
        """``AdminPrincipals`` plus the ``--admin`` access keys' principals (and without auth, the anonymous one)."""
        given = [part.strip() for part in parameters.get("AdminPrincipals", "").split(",") if part.strip()]
        local = [f"arn:aws:iam::{LOCAL_ACCOUNT}:user/{key}" for key in self.admins]
        if self.no_auth:
            local.append(NoAuthorizer().principal)
        return dict(parameters) | {"AdminPrincipals": ",".join(dict.fromkeys(given + local))}

    def _authorizer(self, region: str) -> Authorizer:
        """What stands in front of the routes: the template's AuthMode, as API Gateway would run it."""
        assert self.template is not None
        if self.no_auth:
            _log.warning(
                "--no-auth: the HTTP API is OPEN; every request acts as %s (demos only)", NoAuthorizer().principal
            )
            return NoAuthorizer()
        if self.template.parameters.get("AuthMode", "iam") == "jwt":
            if self.jwks is None:
                raise TemplateError("AuthMode=jwt needs the issuer's keys: pass --jwks FILE (a JWKS document)")
            audiences = [part.strip() for part in self.template.parameters.get("JwtAudience", "").split(",")]
            return JwtAuthorizer(self.template.parameters.get("JwtIssuer", ""), [a for a in audiences if a], self.jwks)
        return SigV4Authorizer(region)

    def _start_embedded_emulator(self) -> None:
        """moto's server in a process of its own: the store outlives any function's death and works on its own core.

        Every function and every outside tool (the AWS CLI, awslocal, boto3) reaches it at ``emulator_url``.
        """
        import os
        import socket
        import subprocess
        import sys
        import time

        assert self.emulator_port is not None
        self._store = subprocess.Popen(  # noqa: S603 - moto's own server module, on 127.0.0.1
            [sys.executable, "-m", "jobq_local.store", "--host", self.host, "--port", str(self.emulator_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only sets a signal, before exec
        )
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as probe:
                if probe.connect_ex((self.host, self.emulator_port)) == 0:
                    break
            if self._store.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded moto server did not start on port {self.emulator_port}")
            time.sleep(0.05)
        os.environ["AWS_ENDPOINT_URL"] = self.emulator_url  # what the functions' clients use

    def _account_id(self, session: Any) -> str:
        """The account the endpoint says (STS), or moto's default where there is no STS endpoint."""
        if self.external.given and self.external.url("sts") is None:
            return "123456789012"  # per-service endpoints without one for STS: not AWS's own STS
        try:
            return str(session.client("sts").get_caller_identity()["Account"])
        except Exception:  # noqa: BLE001 - emulators without STS get moto's default account
            return "123456789012"

    def stop(self) -> None:
        """Event sources first (in-flight batches finish), then the API, then the emulator."""
        for schedule in self._schedules:
            schedule.stop()
        for mapping in self._mappings:
            mapping.stop()
        for function in self._isolated:
            function.stop()
        if self._api is not None:
            self._api.stop()
        if self._store is not None:
            self._store.terminate()
            try:
                self._store.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._store.kill()
                self._store.wait()

    def endpoints(self) -> dict[str, Any]:
        """URLs and resource names (for the banner, the tests and the benchmark)."""
        assert self.template is not None
        assert self._api is not None
        resources = {logical_id: physical.ref for logical_id, physical in self.template.physical.items()}
        return {
            "api_url": self._api.url,
            "emulator_url": self.emulator_url,
            "service_endpoints": self.service_endpoints,
            "region": self.template.region,
            "resources": resources,
        }

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment from the template (resolved against what was provisioned)."""
        assert self.template is not None
        return self.template.function_environment(logical_id)

    @property
    def api(self) -> HttpApiServer:
        """The HTTP API server (once started)."""
        assert self._api is not None
        return self._api

    @property
    def mappings(self) -> list[SqsEventSourceMapping]:
        return list(self._mappings)

    @property
    def schedules(self) -> list[Schedule]:
        return list(self._schedules)

    def banner(self) -> str:
        """What ``make run`` prints once everything is up."""
        from jobq_local.banner import banner

        return banner(self)

    def stats(self) -> dict[str, Any]:
        """AWS requests made so far, by caller and operation, and worker invocations."""
        return {
            "requests": self.counter.snapshot(),
            "invocations": {m.function.name: m.invocations for m in self._mappings},
            "api_invocations": dict(self._api.invocations) if self._api else {},
            "route_invocations": dict(self._api.route_invocations) if self._api else {},
            "route_seconds": dict(self._api.route_seconds) if self._api else {},
            "invoke_seconds": {m.function.name: m.invoke_seconds for m in self._mappings}
            | (dict(self._api.invoke_seconds) if self._api else {}),
        }
