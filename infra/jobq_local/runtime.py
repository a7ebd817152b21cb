"""The local runtime: template.yaml's functions behind an HTTP API, SQS event source mappings and schedules.

Functions run in this process, each as one Lambda "environment" that imports its handler once and keeps its
module state between invocations (warm starts), with the environment variables the template gives it.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from jobq_local.events import LambdaContext, QueueMessage, Route, find_route, http_api_event, scheduled_event, sqs_event
from jobq_local.template import FunctionSpec, Template, TemplateError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_log = logging.getLogger("jobq_local")
Handler = Callable[[Mapping[str, Any], Any], Any]


class RequestCounter:
    """Counts AWS API calls made through the clients it is attached to (botocore ``before-call`` events)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()

    def attach(self, client: Any, prefix: str) -> None:
        def count(model: Any, **_: Any) -> None:
            with self._lock:
                self.calls[f"{prefix}:{model.name}"] += 1

        client.meta.events.register("before-call", count)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.calls)


@dataclass
class LocalFunction:
    """One function of the template, loaded once and invoked like Lambda would."""

    spec: FunctionSpec
    environment: Mapping[str, str]
    region: str
    account_id: str
    _handler: Handler | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.logical_id

    def handler(self) -> Handler:
        """The handler function named in the template (``module.function``), imported on first use."""
        with self._lock:
            if self._handler is None:
                module_name, _, attribute = self.spec.handler.rpartition(".")
                module = importlib.import_module(module_name)
                self._handler = cast("Handler", getattr(module, attribute))
            return self._handler

    def invoke(self, event: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        """Call the handler with a context whose remaining time counts down from the function's Timeout."""
        context = LambdaContext(
            self.name,
            timeout_seconds=self.spec.timeout if timeout is None else timeout,
            memory_limit_in_mb=self.spec.memory_size,
            region=self.region,
            account_id=self.account_id,
        )
        return self.handler()(event, context)


# -- HTTP API ---------------------------------------------------------------------------------------


class HttpApiServer:
    """Serves the template's HttpApi routes on 127.0.0.1, one payload 2.0 event per request."""

    def __init__(self, routes: Mapping[Route, LocalFunction], host: str, port: int) -> None:
        self.routes = dict(routes)
        # One execution environment per function: Lambda never runs two invocations in one environment.
        self._environments = {function.name: threading.Lock() for function in self.routes.values()}
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-api", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> tuple[int, Any, bytes]:
        """Status, headers and body for one request, as API Gateway would answer it."""
        parts = urlsplit(target)
        found = find_route(self.routes, method, parts.path)
        if found is None:
            return 404, {"content-type": "application/json"}, b'{"message":"Not Found"}'
        route, parameters = found
        function = self.routes[route]
        event = http_api_event(
            method, parts.path, query=parts.query, headers=headers, body=body, route=route, path_parameters=parameters
        )
        try:
            with self._environments[function.name]:
                response = function.invoke(event)
        except Exception:  # noqa: BLE001 - a function error is API Gateway's 500, as in AWS
            _log.exception("%s raised; API Gateway answers 500", function.name)
            return 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
        return _proxy_response(response)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "jobq-local"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                status, response_headers, payload = api.dispatch(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in response_headers.items():
                    if isinstance(value, list):
                        for item in value:
                            self.send_header(name, item)
                    else:
                        self.send_header(name, str(value))
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                _log.debug("http: " + format, *args)

        return RequestHandler


def _proxy_response(response: Any) -> tuple[int, dict[str, Any], bytes]:
    """Lambda's payload 2.0 response to HTTP, including API Gateway's rules for a bare return value."""
    import base64

    if not isinstance(response, dict) or "statusCode" not in response:
        body = json.dumps(response).encode()
        return 200, {"content-type": "application/json"}, body
    headers: dict[str, Any] = {str(k).lower(): v for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[str(name).lower()] = values
    if response.get("cookies"):
        headers["set-cookie"] = list(response["cookies"])
    raw = response.get("body") or ""
    payload = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode()
    return int(response["statusCode"]), headers, payload


# -- SQS event source mapping -------------------------------------------------------------------------


@dataclass(frozen=True)
class SqsMappingConfig:
    """The SQS event's properties that shape polling and batching."""

    queue_url: str
    queue_arn: str
    batch_size: int
    batching_window: float
    report_batch_item_failures: bool
    max_concurrency: int


class SqsEventSourceMapping:
    """Lambda's SQS poller: long polling, batching, partial batch responses, deletes only what succeeded.

    Records the function reports as failed (or a whole batch, when it raises or returns an invalid
    response) are left alone: they come back when their visibility timeout ends, and the queue's redrive
    policy moves them to the dead-letter queue after maxReceiveCount receives.
    """

    LONG_POLL_SECONDS = 2  # SQS long polling; short enough that Ctrl-C stops the pollers at once

    def __init__(self, function: LocalFunction, config: SqsMappingConfig, client: SQSClient, *, pollers: int) -> None:
        self.function = function
        self.config = config
        self._client = client
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, name=f"esm-{function.name}-{n}", daemon=True)
            for n in range(max(1, min(pollers, config.max_concurrency)))
        ]
        self.invocations = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.LONG_POLL_SECONDS + self.function.spec.timeout)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._receive_batch()
                if batch:
                    self.process(batch)
            except Exception:  # noqa: BLE001 - the poller survives emulator hiccups, as Lambda's does
                _log.exception("event source mapping of %s failed; retrying in 1 s", self.function.name)
                self._stop.wait(1)

    def _receive_batch(self) -> list[QueueMessage]:
        batch: list[QueueMessage] = []
        window_ends = time.monotonic() + self.config.batching_window
        while not self._stop.is_set() and len(batch) < self.config.batch_size:
            wait = self.LONG_POLL_SECONDS if not batch else max(0.0, window_ends - time.monotonic())
            response = self._client.receive_message(
                QueueUrl=self.config.queue_url,
                MaxNumberOfMessages=min(10, self.config.batch_size - len(batch)),
                WaitTimeSeconds=int(wait),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch.extend(QueueMessage.from_receive(message) for message in response.get("Messages", []))
            if batch and time.monotonic() >= window_ends:
                break
            if not batch:
                window_ends = time.monotonic() + self.config.batching_window
        return batch

    def process(self, batch: list[QueueMessage]) -> None:
        """Invoke the function with one batch and settle its messages as Lambda does."""
        event = sqs_event(batch, queue_arn=self.config.queue_arn, region=self.function.region)
        with self._lock:
            self.invocations += 1
        try:
            response = self.function.invoke(event)
        except Exception:  # noqa: BLE001 - a function error fails the whole batch, as in Lambda
            _log.exception("%s raised: the whole batch of %d returns to the queue", self.function.name, len(batch))
            return
        failed = self.failed_ids(response, batch)
        if failed is None:
            _log.error("%s returned an invalid batch response: the whole batch fails", self.function.name)
            return
        done = [message for message in batch if message.message_id not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            result = self._client.delete_message_batch(
                QueueUrl=self.config.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m.receipt_handle} for n, m in enumerate(chunk)],
            )
            if result.get("Failed"):
                _log.warning("could not delete %d messages", len(result["Failed"]))

    def failed_ids(self, response: Any, batch: list[QueueMessage]) -> set[str] | None:
        """Message ids the response reports as failed; None when the response fails the whole batch."""
        if not self.config.report_batch_item_failures or response is None or response == "":
            return set()
        if not isinstance(response, dict):
            return set()
        items = response.get("batchItemFailures")
        if items is None:
            return set()
        if not isinstance(items, list):
            return None
        known = {message.message_id for message in batch}
        failed: set[str] = set()
        for item in items:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in known:
                return None
            failed.add(identifier)
        return failed


# -- schedules -----------------------------------------------------------------------------------------

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """Seconds between runs of an EventBridge ``rate(...)`` expression."""
    match = _RATE.match(expression.strip())
    if not match:
        raise TemplateError(f"the local runtime runs rate(...) schedules only, not {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class Schedule:
    """Invokes a function with an EventBridge scheduled event at a fixed rate."""

    def __init__(self, function: LocalFunction, name: str, interval: float, rule_arn: str) -> None:
        self.function = function
        self.name = name
        self.interval = interval
        self.rule_arn = rule_arn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.function.spec.timeout + 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            event = scheduled_event(self.rule_arn, region=self.function.region, account_id=self.function.account_id)
            try:
                self.function.invoke(event)
            except Exception:  # noqa: BLE001 - a failed run does not stop the schedule
                _log.exception("scheduled run of %s failed", self.function.name)


# -- assembly -------------------------------------------------------------------------------------------


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


def api_routes(template: Template, functions: Mapping[str, LocalFunction]) -> dict[Route, LocalFunction]:
    """Every HttpApi event of every function."""
    routes: dict[Route, LocalFunction] = {}
    for spec in template.functions():
        for event in spec.events:
            if event.type == "HttpApi":
                method = template.resolve(event.properties.get("Method", "ANY"))
                route = Route(str(method).upper(), str(template.resolve(event.properties.get("Path", "/"))))
                routes[route] = functions[spec.logical_id]
    return routes


def sqs_mappings(
    template: Template, functions: Mapping[str, LocalFunction]
) -> list[tuple[LocalFunction, SqsMappingConfig]]:
    """Every SQS event of every function, with the template's batching settings (SAM's defaults otherwise)."""
    mappings = []
    for spec in template.functions():
        for event in spec.events:
            if event.type != "SQS":
                continue
            properties = {key: template.resolve(value) for key, value in event.properties.items() if key != "Enabled"}
            queue_arn = str(properties["Queue"])
            queue_url = _queue_url_for_arn(template, queue_arn)
            config = SqsMappingConfig(
                queue_url=queue_url,
                queue_arn=queue_arn,
                batch_size=int(properties.get("BatchSize", 10)),
                batching_window=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                max_concurrency=int(properties.get("ScalingConfig", {}).get("MaximumConcurrency", 1000)),
            )
            mappings.append((functions[spec.logical_id], config))
    return mappings


def schedules(template: Template, functions: Mapping[str, LocalFunction]) -> list[Schedule]:
    """Every Schedule / ScheduleV2 event whose state is enabled."""
    found = []
    for spec in template.functions():
        for event in spec.events:
            if event.type not in {"Schedule", "ScheduleV2"}:
                continue
            properties = template.resolve(dict(event.properties))
            if properties.get("Enabled") is False or str(properties.get("State", "ENABLED")).upper() == "DISABLED":
                continue
            expression = str(properties.get("Schedule") or properties.get("ScheduleExpression"))
            rule_arn = f"arn:aws:events:{template.region}:{template.account_id}:rule/{spec.logical_id}{event.name}"
            found.append(Schedule(functions[spec.logical_id], event.name, rate_seconds(expression), rule_arn))
    return found


def _queue_url_for_arn(template: Template, arn: str) -> str:
    for physical in template.physical.values():
        if physical.attributes.get("Arn") == arn and "QueueUrl" in physical.attributes:
            return physical.attributes["QueueUrl"]
    raise TemplateError(f"no provisioned queue has the ARN {arn}")


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
        endpoint_url: str | None = None,
        pollers: int = 4,
        host: str = "127.0.0.1",
    ) -> None:
        self.parameters = dict(parameters or {})
        self.stack_name = stack_name
        self.api_port = api_port
        self.emulator_port = emulator_port
        self.endpoint_url = endpoint_url
        self.pollers = pollers
        self.host = host
        self.counter = RequestCounter()
        self.template: Template | None = None
        self._mock: Any = None
        self._moto_server: Any = None
        self._api: HttpApiServer | None = None
        self._mappings: list[SqsEventSourceMapping] = []
        self._schedules: list[Schedule] = []
        self._started = False

    @property
    def emulator_url(self) -> str:
        return self.endpoint_url or f"http://{self.host}:{self.emulator_port}"

    def start(self) -> None:
        """Emulator, resources, functions, then the event sources."""
        import os

        import boto3

        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            os.environ.setdefault(name, value)
        region = os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))
        os.environ.setdefault("AWS_REGION", region)
        if self.endpoint_url is None:
            self._start_embedded_emulator()
        from jobq_local.provision import provision

        session = boto3.session.Session()
        sqs = session.client("sqs", endpoint_url=self.endpoint_url)
        dynamodb = session.client("dynamodb", endpoint_url=self.endpoint_url)
        account_id = self._account_id(session)
        self.template = Template(
            parameters=self.parameters, region=region, account_id=account_id, stack_name=self.stack_name
        )
        provision(self.template, dynamodb=dynamodb, sqs=sqs)
        environments = function_environments(self.template)
        os.environ.update(merged_environment(environments))
        functions = {
            spec.logical_id: LocalFunction(spec, environments[spec.logical_id], region, account_id)
            for spec in self.template.functions()
        }
        for function in functions.values():
            function.handler()  # import now: a broken handler fails the start, not the first request
        self._count_function_clients()
        self._api = HttpApiServer(api_routes(self.template, functions), self.host, self.api_port)
        esm_client = session.client("sqs", endpoint_url=self.endpoint_url)
        self.counter.attach(esm_client, "event-source")
        self._mappings = [
            SqsEventSourceMapping(function, config, esm_client, pollers=self.pollers)
            for function, config in sqs_mappings(self.template, functions)
        ]
        self._schedules = schedules(self.template, functions)
        self._api.start()
        for mapping in self._mappings:
            mapping.start()
        for schedule in self._schedules:
            schedule.start()
        self._started = True

    def _start_embedded_emulator(self) -> None:
        from moto import mock_aws
        from moto.server import ThreadedMotoServer

        # In-process moto for the functions (fast), and a moto server sharing its state for outside tools.
        self._mock = mock_aws()
        self._mock.start()
        assert self.emulator_port is not None
        self._moto_server = ThreadedMotoServer(ip_address=self.host, port=self.emulator_port, verbose=False)
        self._moto_server.start()

    @staticmethod
    def _account_id(session: Any) -> str:
        try:
            return str(session.client("sts").get_caller_identity()["Account"])
        except Exception:  # noqa: BLE001 - emulators without STS get moto's default account
            return "123456789012"

    def _count_function_clients(self) -> None:
        """Count what the functions send to AWS, on the clients they cache (jobq.adapters.aws)."""
        try:
            from jobq.adapters import aws
        except ImportError:
            return
        self.counter.attach(aws.dynamodb_client(), "function")
        self.counter.attach(aws.sqs_client(), "function")

    def stop(self) -> None:
        """Event sources first (in-flight batches finish), then the API, then the emulator."""
        for schedule in self._schedules:
            schedule.stop()
        for mapping in self._mappings:
            mapping.stop()
        if self._api is not None:
            self._api.stop()
        if self._moto_server is not None:
            self._moto_server.stop()
        if self._mock is not None:
            self._mock.stop()

    def endpoints(self) -> dict[str, Any]:
        """URLs and resource names (for the banner, the tests and the benchmark)."""
        assert self.template is not None
        assert self._api is not None
        resources = {logical_id: physical.ref for logical_id, physical in self.template.physical.items()}
        return {
            "api_url": self._api.url,
            "emulator_url": self.emulator_url,
            "region": self.template.region,
            "resources": resources,
        }

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment from the template (resolved against what was provisioned)."""
        assert self.template is not None
        return self.template.function_environment(logical_id)

    def stats(self) -> dict[str, Any]:
        """AWS requests made so far, by caller and operation, and worker invocations."""
        return {
            "requests": self.counter.snapshot(),
            "invocations": {m.function.name: m.invocations for m in self._mappings},
        }

    def banner(self) -> str:
        info = self.endpoints()
        assert self._api is not None
        width = max(len(name) for name in info["resources"]) if info["resources"] else 10
        lines = [
            "",
            "jobq is running locally" + ("" if self.endpoint_url else " (embedded AWS emulator: moto)"),
            f"  HTTP API        {info['api_url']}",
            f"  AWS endpoint    {info['emulator_url']}"
            + ("" if self.endpoint_url else "  (aws --endpoint-url / awslocal)"),
            "  resources:",
            *(f"    {name:<{width}}  {ref}" for name, ref in info["resources"].items()),
            "  functions:",
            *(f"    {route.key:<28} -> {function.name}" for route, function in self._api.routes.items()),
            *(
                f"    SQS {m.config.queue_url.rsplit('/', 1)[-1]} (batch {m.config.batch_size}) -> {m.function.name}"
                for m in self._mappings
            ),
            *(f"    every {s.interval:g} s -> {s.function.name}" for s in self._schedules),
            "  try:",
            f"    curl -s -X POST {info['api_url']}/jobs -H 'content-type: application/json' "
            '-d \'{"type": "echo", "payload": {"hello": "world"}}\'',
            f"    curl -s {info['api_url']}/jobs/<job_id>",
            "  Ctrl-C stops everything.",
            "",
        ]
        return "\n".join(lines)
