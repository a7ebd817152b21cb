"""The template's HttpApi routes on 127.0.0.1: each request becomes a payload 2.0 event for its function."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from jobq_local import LOGGER_NAME
from jobq_local.auth import Authorizer, Rejection, Request
from jobq_local.events import Route, find_route, http_api_event
from jobq_local.functions import Hosted
from jobq_local.template import Template, TemplateError

_log = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class RouteSpec:
    """One ``AWS::ApiGatewayV2::Route`` of the template: its key, the function behind it, its authorization."""

    route: Route
    function: str
    authorization: str
    """``AWS_IAM``, ``JWT`` or ``NONE`` (public), with the template's conditions applied."""


_INTEGRATION_TARGET = re.compile(r"^integrations/\$\{(?P<integration>[A-Za-z0-9]+)\}$")


def template_routes(template: Template) -> list[RouteSpec]:
    """Every route of the template's HTTP API, with the function its Lambda proxy integration invokes."""
    integrations: dict[str, str] = {}
    for logical_id, resource in template.resources("AWS::ApiGatewayV2::Integration"):
        function = template.invoked_function(resource.get("Properties", {}).get("IntegrationUri"))
        if function is not None:
            integrations[logical_id] = function
    specs = []
    for logical_id, resource in template.resources("AWS::ApiGatewayV2::Route"):
        properties = resource.get("Properties", {})
        method, _, path = str(template.resolve(properties["RouteKey"])).partition(" ")
        target = properties.get("Target", {})
        found = _INTEGRATION_TARGET.match(str(target.get("Fn::Sub", "")) if isinstance(target, dict) else "")
        if found is None or found["integration"] not in integrations:
            raise TemplateError(f"{logical_id}: the local runtime serves Lambda proxy integrations only")
        authorization = str(template.resolve(properties.get("AuthorizationType", "NONE")))
        specs.append(RouteSpec(Route(method.upper(), path), integrations[found["integration"]], authorization))
    return specs


def api_routes(template: Template, functions: Mapping[str, Hosted]) -> dict[Route, Hosted]:
    """Every route of the template's HTTP API and the function it invokes."""
    return {spec.route: functions[spec.function] for spec in template_routes(template)}


def public_routes(template: Template) -> set[Route]:
    """Routes without an authorizer (``AuthorizationType: NONE``)."""
    return {spec.route for spec in template_routes(template) if spec.authorization == "NONE"}


class HttpApiServer:
    """Serves the template's HttpApi routes on 127.0.0.1, one payload 2.0 event per request.

    Every route but the ``public`` ones goes through ``authorizer`` first, as API Gateway's default
    authorizer does: a refused request gets API Gateway's answer and never reaches the function.
    """

    def __init__(
        self,
        routes: Mapping[Route, Hosted],
        host: str,
        port: int,
        *,
        authorizer: Authorizer,
        public: set[Route] | None = None,
    ) -> None:
        self.routes = dict(routes)
        self.authorizer = authorizer
        self.public = set(public or ())
        # Lambda never runs two invocations in one environment: a function hosted in one environment (in this
        # process) takes one request at a time; one with an environment per invocation takes them all at once.
        self._environments = {function.name: threading.Lock() for function in self.routes.values()}
        self.invocations: Counter[str] = Counter()
        self.invoke_seconds: dict[str, float] = dict.fromkeys(self._environments, 0.0)
        """Invocations and their time, per function (benchmarks read them)."""
        self.route_invocations: Counter[str] = Counter()
        self.route_seconds: dict[str, float] = {}
        """The same per route (``POST /jobs``): what a benchmark's own reads cost is told apart from its jobs'."""
        self._server = _Server((host, port), self._handler_class())
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
        context = None
        if route not in self.public:
            decision = self.authorizer.authorize(Request(method, parts.path, parts.query, headers, body))
            if isinstance(decision, Rejection):
                return decision.status, {"content-type": "application/json"}, decision.body
            context = decision
        event = http_api_event(
            method,
            parts.path,
            query=parts.query,
            headers=headers,
            body=body,
            route=route,
            path_parameters=parameters,
            authorizer=context,
        )
        try:
            with nullcontext() if function.concurrent else self._environments[function.name]:
                started = time.monotonic()
                try:
                    response = function.invoke(event)
                finally:
                    spent = time.monotonic() - started
                    self.invocations[function.name] += 1
                    self.invoke_seconds[function.name] += spent
                    self.route_invocations[route.key] += 1
                    self.route_seconds[route.key] = self.route_seconds.get(route.key, 0.0) + spent
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
                # The target as sent: http.server rewrites a leading "//" before we see self.path.
                sent_target = self.requestline.split(" ")[1] if self.requestline.count(" ") >= 2 else self.path
                refused = _refusal(sent_target, self.headers.get("content-length"))
                if refused is not None:
                    self.close_connection = True  # the rest of the stream cannot be trusted
                    status, response_headers, payload = refused
                else:
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


MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
_JSON = {"content-type": "application/json"}


class _Server(ThreadingHTTPServer):
    """Threads per connection, and a listen backlog fit for bursts of clients (socketserver's default is 5)."""

    request_queue_size = 256
    daemon_threads = True


def _refusal(target: str, content_length: str | None) -> tuple[int, dict[str, Any], bytes] | None:
    """API Gateway's answer to a request it would not route: not origin-form, or a bad Content-Length."""
    if not target.startswith("/") or target.startswith("//"):
        return 400, _JSON, b'{"message":"Bad Request"}'
    if content_length is not None:
        if not content_length.strip().isdigit():
            return 400, _JSON, b'{"message":"Bad Request"}'
        if int(content_length) > MAX_BODY_BYTES:
            return 413, _JSON, b'{"message":"Request Entity Too Large"}'
    return None


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
