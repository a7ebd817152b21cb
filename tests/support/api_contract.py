"""The OpenAPI document the API publishes, used as a contract for fuzzing: routes, statuses, response schemas.

``ApiContract.violations(...)`` says what is wrong with one HTTP exchange (an empty list: nothing).
``gateway_wsgi_app(stack)`` puts the API function behind WSGI, the way schemathesis calls in-process apps,
with API Gateway's routing from ``tests.support.stack`` in front of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from jobq_local.events import find_route
from tests.support.callers import ADMIN
from tests.support.stack import Stack

DOCUMENT_URI = "urn:jobq:openapi"
DOCUMENT_PATH = "/openapi.json"
GATEWAY_NOT_FOUND = {"message": "Not Found"}
"""What API Gateway itself answers for a request that matches no route (the function never runs)."""

LOCATION_OPERATIONS = {"POST /jobs", "POST /jobs/{job_id}/retry"}
"""Operations whose 200/202 carry ``Location: /jobs/{job_id}``, equal to the body's ``status_url``."""

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class Operation:
    """One documented operation: ``POST /jobs/{job_id}/cancel``."""

    method: str
    template: str
    pattern: re.Pattern[str]
    spec: Mapping[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def statuses(self) -> set[int]:
        return {int(code) for code in self.spec.get("responses", {})}


def _pointer(*parts: str) -> str:
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


class ApiContract:
    """Routes, documented statuses and response body schemas of the published document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(dict(document), default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}
        self.operations: list[Operation] = []
        for template, item in document.get("paths", {}).items():
            regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            for method, spec in item.items():
                if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                    self.operations.append(Operation(method.upper(), template, re.compile(f"^{regex}$"), spec))
        # Exact paths before templated ones, as API Gateway picks routes.
        self.operations.sort(key=lambda op: op.template.count("{"))

    def labels(self) -> set[str]:
        return {op.label for op in self.operations}

    def find(self, method: str, path: str) -> Operation | None:
        """The documented operation a request lands on (``path`` as sent, percent-encoded)."""
        for op in self.operations:
            if op.method == method.upper() and op.pattern.match(path):
                return op
        return None

    def body_validator(self, op: Operation, status: int) -> Draft202012Validator | None:
        """A validator for the JSON body documented for ``status``; None when none is documented."""
        content = op.spec["responses"].get(str(status), {}).get("content", {})
        if "application/json" not in content or "schema" not in content["application/json"]:
            return None
        pointer = _pointer(
            "paths", op.template, op.method.lower(), "responses", str(status), "content", "application/json", "schema"
        )
        if pointer not in self._validators:
            schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$ref": f"{DOCUMENT_URI}#{pointer}"}
            self._validators[pointer] = Draft202012Validator(schema, registry=self._registry)
        return self._validators[pointer]

    def violations(self, exchange: Exchange) -> list[str]:
        """Everything about one response that breaks the published contract (and the README's "HTTP API" section)."""
        method, path, status, headers, body = (
            exchange.method,
            exchange.path,
            exchange.status,
            exchange.headers,
            exchange.body,
        )
        problems: list[str] = []
        if status >= 500:
            problems.append(f"server error {status} (no input may produce a 5xx; no dependency is down here)")
        op = self.find(method, path)
        if not exchange.routed:
            # API Gateway's own answer: the function never ran; the document does not describe it.
            if op is not None:
                problems.append(f"{op.label} is documented but API Gateway has no route for {method} {path}")
            if status != 404 or body != GATEWAY_NOT_FOUND:
                problems.append(f"unrouted request answered {status} {body!r}, not API Gateway's 404")
            return problems
        if op is None:
            if method.upper() == "GET" and path == DOCUMENT_PATH:
                if status != 200 or not isinstance(body, dict) or "openapi" not in body:
                    problems.append(f"GET {DOCUMENT_PATH} answered {status}, not the document")
                return problems
            problems.append(f"{method} {path} is routed but not documented (answered {status})")
            return problems
        if status not in op.statuses:
            problems.append(f"{op.label} answered {status}; documented: {sorted(op.statuses)}")
        content_type = str(headers.get("content-type", ""))
        if not content_type.startswith("application/json"):
            problems.append(f"{op.label} {status}: content-type {content_type!r} is not application/json")
        validator = self.body_validator(op, status)
        if validator is None:
            if status in op.statuses:
                problems.append(f"{op.label} {status}: no JSON schema documented for this status")
        else:
            error = best_match(validator.iter_errors(body))
            if error is not None:
                where = "/".join(str(part) for part in error.absolute_path) or "(root)"
                problems.append(f"{op.label} {status}: body at {where}: {error.message[:300]}")
        if status >= 400 and "Traceback" in json.dumps(body):
            problems.append(f"{op.label} {status}: the error body carries a stack trace")
        if op.label in LOCATION_OPERATIONS and status in {200, 202} and isinstance(body, dict):
            location, status_url = headers.get("location"), body.get("status_url")
            if location != status_url or status_url != f"/jobs/{body.get('job_id')}":
                problems.append(f"{op.label} {status}: Location {location!r}, status_url {status_url!r}")
        return problems


@dataclass(frozen=True)
class Exchange:
    """One request through API Gateway and the API function, and what came back."""

    method: str
    path: str
    query: str
    request_headers: Mapping[str, str]
    request_body: str | bytes | None
    routed: bool
    status: int
    headers: Mapping[str, Any]
    body: Any

    def describe(self) -> str:
        target = self.path + (f"?{self.query}" if self.query else "")
        body = self.request_body
        sent = repr(body) if body is None or len(body) < 400 else f"<{len(body)} bytes: {body[:80]!r}...{body[-20:]!r}>"
        request = f"{self.method} {target} headers={dict(self.request_headers)!r} body={sent}"
        return f"{request}\n  -> {self.status} {self.body!r}"


def send(
    stack: Stack,
    method: str,
    path: str,
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
    body: str | bytes | None = None,
    caller: str = ADMIN,
) -> Exchange:
    """``stack.api`` with a raw body, remembering whether API Gateway had a route for the request.

    The caller is an admin by default, so every documented route (the DLQ's too) can answer 2xx.
    """
    routed = find_route(stack.api_routes, method, path) is not None
    result = stack.api(method, path, query=query, headers=headers, raw_body=body, caller=caller)
    return Exchange(method, path, query, dict(headers or {}), body, routed, result.status, result.headers, result.body)


def fetch_contract(stack: Stack) -> ApiContract:
    """The document the API publishes at ``GET /openapi.json``, through the real handler."""
    published = stack.api("GET", DOCUMENT_PATH)
    assert published.status == 200, published.body
    return ApiContract(published.body)


def gateway_wsgi_app(stack: Stack, observe: Callable[[Exchange], None] | None = None) -> WsgiApp:
    """A WSGI app that hands each request to ``stack.api`` (API Gateway's routing, a payload 2.0 event).

    The path goes on percent-encoded, as API Gateway's ``rawPath``; ``observe`` sees every exchange.
    """

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = str(environ["REQUEST_METHOD"])
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if raw:  # werkzeug's test client: the path as given; the query may be in QUERY_STRING only
            path, _, query = str(raw).partition("?")
        else:
            path, query = quote(str(environ.get("PATH_INFO", "")).encode("latin-1"), safe="/:@!$&'()*+,;=-._~"), ""
        query = query or str(environ.get("QUERY_STRING", ""))
        headers = {
            name[5:].replace("_", "-").lower(): str(value)
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(name):
                headers[name.replace("_", "-").lower()] = str(environ[name])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        result = send(stack, method, path, query=query, headers=headers, body=body or None)
        if observe is not None:
            observe(result)
        payload = b"" if result.body is None else json.dumps(result.body).encode()
        response_headers = [(name, str(value)) for name, value in result.headers.items() if name != "content-length"]
        if not any(name == "content-type" for name, _ in response_headers):
            response_headers.append(("content-type", "application/json"))
        response_headers.append(("content-length", str(len(payload))))
        phrase = HTTPStatus(result.status).phrase if result.status in HTTPStatus._value2member_map_ else ""
        start_response(f"{result.status} {phrase}".strip(), response_headers)
        return [payload]

    return app
