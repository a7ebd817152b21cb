"""Hostile input: fuzz the HTTP API against the OpenAPI document it publishes (README, "HTTP API").

Two sources of requests, both sent through API Gateway's routing and the real API Lambda handler on moto:

- schemathesis reads ``GET /openapi.json`` and generates schema-driven requests for every operation
  (valid data for all, invalid data where something can be invalid);
- hand-written hypothesis strategies send what a schema does not describe: garbage and non-object JSON,
  huge and deeply nested bodies, odd numbers and unicode, other encodings and content types, bad ids,
  bad query strings and cursors, odd headers and Idempotency-Keys, unknown routes and methods.

Every response must be one the document declares for that route and status code, with a body that
validates against the declared schema (``tests/support/api_contract.py``); nothing may answer 5xx, since
no dependency is down here. Requests API Gateway has no route for get its own 404.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from jobq.jobs import build_registry
from tests.support.api_contract import ApiContract, Exchange, fetch_contract, gateway_wsgi_app, send
from tests.support.stack import Stack

MAX_BODY_BYTES = 262_144  # JOBQ_MAX_BODY_BYTES in template.yaml (the world fixture checks it)
LIST_SHARDS = 16  # JOBQ_LIST_SHARDS: a well-formed cursor has one position per shard
KNOWN_TYPES = tuple(build_registry().names)  # the built-in types and any a deployment adds
WITHOUT_INPUT = {"GET /dlq", "GET /types"}
DOCUMENTED = {
    "GET /jobs",
    "POST /jobs",
    "POST /jobs/batch",
    "GET /jobs/{job_id}",
    "POST /jobs/{job_id}/cancel",
    "POST /jobs/{job_id}/retry",
    "GET /dlq",
    "POST /dlq/redrive",
    "GET /types",
}

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one moto stack per test, shared by its examples on purpose
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

# schemathesis: the checks that hold for this API. Disabled: `unsupported_method` (API Gateway, not the
# function, answers a method without a route: 404, not 405), the stateful and auth checks (no links, no auth).
SCHEMATHESIS_CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "not_a_server_error": {"enabled": True},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            "negative_data_rejection": {"enabled": True},
            # Schema-valid data may still name an unknown job type, or a job in another state, or no job.
            "positive_data_acceptance": {"enabled": True, "expected-statuses": ["2xx", "404", "409", "422"]},
            "missing_required_header": {"enabled": True},
            "unsupported_method": {"enabled": False},
            "allow_header_conformance": {"enabled": False},
            "use_after_free": {"enabled": False},
            "ensure_resource_availability": {"enabled": False},
            "ignored_auth": {"enabled": False},
            "object_level_authorization": {"enabled": False},
        },
    }
)


# -- the world every fuzz test starts from ----------------------------------------------------------


@dataclass
class World:
    """A stack with a job in each reachable status, and the contract the API publishes."""

    stack: Stack
    contract: ApiContract
    jobs: dict[str, str]  # status -> job id
    cursor: str  # a next_cursor the API issued for an unfiltered listing with limit=1
    exchanges: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def __repr__(self) -> str:  # the stack's repr would bury a falsifying example
        return f"World(jobs={self.jobs!r})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # what Hypothesis prints
        printer.text(repr(self))

    def check(self, exchange: Exchange) -> None:
        self.exchanges += 1
        self.statuses[exchange.status] = self.statuses.get(exchange.status, 0) + 1
        problems = self.contract.violations(exchange)
        assert not problems, "\n".join([exchange.describe(), *problems])


@pytest.fixture
def world(aws_stack: Stack) -> World:
    stack = aws_stack
    assert stack.environment["JOBQ_MAX_BODY_BYTES"] == str(MAX_BODY_BYTES)
    assert stack.environment["JOBQ_LIST_SHARDS"] == str(LIST_SHARDS)
    succeeded = stack.submit("echo", {"n": 1})["job_id"]
    failed = stack.submit("fail", {"retryable": False})["job_id"]
    stack.drain()
    queued = stack.submit("echo", {"text": "é中😀"})["job_id"]
    cancelled = stack.submit("echo")["job_id"]
    assert stack.api("POST", f"/jobs/{cancelled}/cancel").status == 200
    jobs = {"succeeded": succeeded, "failed": failed, "queued": queued, "cancelled": cancelled}
    assert {status: stack.job(job_id)["status"] for status, job_id in jobs.items()} == {s: s for s in jobs}
    page = stack.api("GET", "/jobs", query="limit=1")
    assert page.status == 200
    assert page.body["next_cursor"]
    return World(stack, fetch_contract(stack), jobs, page.body["next_cursor"])


def test_the_published_document_describes_every_route(world: World) -> None:
    assert world.contract.labels() == DOCUMENTED
    routes = {route.key for route in world.stack.api_routes} - {"GET /openapi.json", "GET /docs"}
    assert routes == DOCUMENTED


# -- schemathesis, from the published document ---------------------------------------------------------


@pytest.fixture
def hypothesis_left_as_found() -> Iterator[None]:
    """Undo what schemathesis does to Hypothesis process-wide when it first generates data.

    ``schemathesis.generation.hypothesis.setup()`` swaps Hypothesis' example printer for one that prints
    nothing and enlarges its buffer, for every later test in the session. (Its pytest plugin would do so at
    start-up, which is why pyproject.toml runs pytest with ``-p no:schemathesis``.)
    """
    from hypothesis import core as hypothesis_core
    from hypothesis.internal import entropy
    from hypothesis.internal.conjecture import engine
    from hypothesis.strategies._internal import collections, core
    from schemathesis.generation import hypothesis as schemathesis_hypothesis

    patched = [
        (hypothesis_core, "RepresentationPrinter"),
        (hypothesis_core, "BUFFER_SIZE"),
        (engine, "BUFFER_SIZE"),
        (collections, "BUFFER_SIZE"),
        (entropy, "register_random"),
        (core, "is_first_param_referenced_in_function"),
    ]
    missing = object()
    saved = [(owner, name, getattr(owner, name, missing)) for owner, name in patched]
    was_patched = getattr(schemathesis_hypothesis.setup, "_is_patched", False)
    try:
        yield
    finally:
        for owner, name, value in saved:
            if value is missing:
                if hasattr(owner, name):
                    delattr(owner, name)
            else:
                setattr(owner, name, value)
        schemathesis_hypothesis.setup._is_patched = was_patched  # type: ignore[attr-defined]


SCHEMATHESIS_RUNS = [
    pytest.param(label, mode, id=f"{label}-{mode.value}")
    for label in sorted(DOCUMENTED)
    for mode in GenerationMode
    # A path parameter of type string cannot be made schema-invalid once it is in a URL, and an operation
    # without any input has no invalid form at all.
    if mode is GenerationMode.POSITIVE or ("{job_id}" not in label and label not in WITHOUT_INPUT)
]


@pytest.mark.parametrize(("label", "mode"), SCHEMATHESIS_RUNS)
@pytest.mark.usefixtures("hypothesis_left_as_found")
def test_schemathesis_finds_no_server_error_and_no_undocumented_response(
    world: World, label: str, mode: GenerationMode
) -> None:
    seen: list[Exchange] = []
    app = gateway_wsgi_app(world.stack, seen.append)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=SCHEMATHESIS_CONFIG)
    method, path = label.split(" ")
    operation = schema[path][method]
    cases = operation.as_strategy(generation_mode=mode)
    if "{job_id}" in path:  # also the seeded jobs, so that 200/202/409 are reached, not only 404
        cases = st.one_of(
            cases,
            *(
                operation.as_strategy(generation_mode=mode, path_parameters={"job_id": job_id})
                for job_id in world.jobs.values()
            ),
        )
    job_types = st.sampled_from((None, *KNOWN_TYPES))  # POST /jobs: a known type now and then, to reach 202

    @settings(FUZZ, max_examples=100)
    @given(case=cases, job_type=job_types)
    def run(case: Any, job_type: str | None) -> None:
        if job_type is not None and label == "POST /jobs" and isinstance(case.body, dict):
            case.body = {**case.body, "type": job_type}
        seen.clear()
        response = case.call()
        for exchange in seen:
            world.check(exchange)
        # A cursor the API did not issue is a 400 even though any string is schema-valid (README, "HTTP API").
        issued_elsewhere = label == "GET /jobs" and "cursor" in (case.query or {})
        case.validate_response(response, excluded_checks=[positive_data_acceptance] if issued_elsewhere else None)

    run()
    assert world.exchanges > 0


# -- hand-made hostile requests ------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
# Any code point, lone surrogates, controls and private use included.
odd_text = st.text(st.characters(exclude_categories=()), max_size=40)
odd_header_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x2FF, exclude_categories=()), max_size=40)

JSON_LITERALS = (
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "1e-999",
    "-0",
    "01",
    "+1",
    ".5",
    "0x10",
    "1" + "0" * 5000,
    "9" * 4300,
    "1.0",
    "true",
    "null",
    '"7"',
    "[]",
    "{}",
)
FILLERS = ("a", "é", "中", "😀", "\\n", "\\u00e9", "\\ud83d\\ude00", "\\u0000")
CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=utf-16",
    "APPLICATION/JSON",
    "application/jsonx",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "application/octet-stream",
    "",
)


def _encode(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


job_type_values = st.one_of(
    st.sampled_from(KNOWN_TYPES),
    st.sampled_from(("ECHO", "echo ", " echo", "echo\x00", "", "e" * 64, "e" * 65, "$ref", "__proto__")),
    odd_text,
    json_values,
)
payload_values = st.one_of(
    st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    st.fixed_dictionaries({}, optional={"seconds": json_scalars}),
    st.fixed_dictionaries({}, optional={"times": json_scalars, "retryable": json_scalars, "message": json_values}),
    json_values,
)
delay_values = st.one_of(
    st.integers(min_value=-5, max_value=905),
    st.sampled_from((-(2**63), 2**63, 10**30, 1.0, 1.5, 900.0, 1e308, "5", "", True, False, None, [], {})),
)
submissions = st.builds(
    lambda known, unknown: {**unknown, **known},
    st.fixed_dictionaries(
        {},
        optional={
            "type": job_type_values,
            "payload": payload_values,
            "delay_seconds": delay_values,
            "extra": json_values,
        },
    ),
    st.dictionaries(odd_text, json_scalars, max_size=2),
)


@st.composite
def nested_bodies(draw: st.DrawFn) -> bytes:
    depth = draw(st.one_of(st.integers(1, 80), st.integers(80, 5000), st.just(100_000)))
    opener, closer = draw(st.sampled_from((("[", "]"), ('{"a":', "}"))))
    inner = opener * depth + "1" + closer * depth
    where = draw(st.sampled_from(("payload", "delay", "type", "root")))
    if where == "root":
        return inner.encode()
    return {
        "payload": f'{{"type":"echo","payload":{{"x":{inner}}}}}',
        "delay": f'{{"type":"echo","delay_seconds":{inner}}}',
        "type": f'{{"type":{inner}}}',
    }[where].encode()


@st.composite
def large_bodies(draw: st.DrawFn) -> bytes:
    """Bodies near the size limit, in characters that take one to twelve bytes each on the wire or in storage."""
    target = draw(st.integers(MAX_BODY_BYTES - 2048, MAX_BODY_BYTES + 2048))
    filler = draw(st.sampled_from(FILLERS))
    job_type = draw(st.sampled_from(("echo", "fail", "nope")))
    head, tail = f'{{"type":"{job_type}","payload":{{"s":"'.encode(), b'"}}'
    unit = filler.encode()
    count = max(0, (target - len(head) - len(tail)) // len(unit))
    return head + unit * count + tail


@st.composite
def literal_bodies(draw: st.DrawFn) -> bytes:
    literal = draw(st.sampled_from(JSON_LITERALS))
    template = draw(
        st.sampled_from(
            (
                '{{"type":"echo","payload":{{"n":{}}}}}',
                '{{"type":"echo","delay_seconds":{}}}',
                '{{"type":"sleep","payload":{{"seconds":{}}}}}',
                '{{"type":"fail","payload":{{"times":{}}}}}',
                '{{"type":{}}}',
                "{}",
            )
        )
    )
    return template.format(literal).encode()


request_bodies = st.one_of(
    st.builds(_encode, submissions, st.booleans()),
    st.builds(_encode, json_values, st.booleans()),
    nested_bodies(),
    large_bodies(),
    literal_bodies(),
    st.binary(max_size=64),
    odd_text.map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        (
            b"",
            b" ",
            b"\n\t",
            b"{",
            b"}",
            b"{}",
            b"[]",
            b'{"type":"echo","type":"nope"}',
            b'{"type":"echo",}',
            b"{'type':'echo'}",
            b'\xef\xbb\xbf{"type":"echo"}',
            '{"type":"echo"}'.encode("utf-16"),
            '{"type":"echo","payload":{"s":"é"}}'.encode("latin-1"),
            b'{"type":"echo","payload":{"s":"\xed\xa0\x80"}}',
            b'{"type":"echo"}\x00',
            b'{"type":"echo"} {"type":"echo"}',
            b"type=echo&payload=%7B%7D",
        )
    ),
)
idempotency_keys = st.one_of(
    st.none(),
    st.sampled_from(("order-4711", "k", "x" * 255, "x" * 256, "", " ", "a b", "ключ", "key\t", "!~")),
    odd_header_text,
)
extra_headers = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(("accept", "accept-encoding", "content-encoding", "x-forwarded-for", "cookie", "origin")),
            st.sampled_from(("gzip", "br", "*/*", "text/html", "application/xml", "a=b; c", "null", "")),
        ),
        st.tuples(st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20), odd_header_text),
    ),
    max_size=3,
)


@st.composite
def request_headers(draw: st.DrawFn, *, key: bool) -> tuple[tuple[str, str], ...]:
    headers: dict[str, str] = dict(draw(extra_headers))
    content_type = draw(st.sampled_from(CONTENT_TYPES))
    headers["content-type"] = content_type
    if key:
        value = draw(idempotency_keys)
        if value is not None:
            headers[draw(st.sampled_from(("idempotency-key", "Idempotency-Key", "IDEMPOTENCY-KEY")))] = value
    return tuple(headers.items())


def _resolve_headers(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    # The event carries lower-case names (API Gateway lower-cases them); the last of equal names wins.
    return {name.lower(): value for name, value in headers}


@settings(FUZZ)
@given(body=request_bodies, headers=request_headers(key=True))
def test_hostile_submissions(world: World, body: bytes, headers: tuple[tuple[str, str], ...]) -> None:
    world.check(send(world.stack, "POST", "/jobs", headers=_resolve_headers(headers), body=body))


@pytest.mark.parametrize("filler", FILLERS)
@settings(FUZZ, max_examples=6)
@given(
    size=st.integers(MAX_BODY_BYTES - 4096, MAX_BODY_BYTES + 1024),
    job_type=st.sampled_from(("echo", "fail")),
    key=st.sampled_from((None, "near-the-limit")),
)
def test_bodies_near_the_size_limit(world: World, filler: str, size: int, job_type: str, key: str | None) -> None:
    """Up to the limit a body is accepted or rejected (422), never a 5xx, whatever its characters cost to store."""
    head, tail = f'{{"type":"{job_type}","payload":{{"s":"'.encode(), b'"}}'
    unit = filler.encode()
    body = head + unit * ((size - len(head) - len(tail)) // len(unit)) + tail
    headers = {} if key is None else {"idempotency-key": f"{key}-{filler.encode().hex()}-{size}"}
    world.check(send(world.stack, "POST", "/jobs", headers=headers, body=body))


# -- listing ---------------------------------------------------------------------------------------

WELL_FORMED_CURSORS = st.fixed_dictionaries(
    {
        "v": st.just(1),
        "s": st.sampled_from((None, "queued", "succeeded")),
        "t": st.sampled_from((None, "echo")),
        "p": st.lists(
            st.one_of(st.none(), st.just("~"), st.sampled_from(("0" * 26, "7" * 26, "Z" * 26, "0" * 26 + "\n"))),
            min_size=LIST_SHARDS,
            max_size=LIST_SHARDS,
        ),
    }
)
CURSOR_DOCUMENTS = st.one_of(
    WELL_FORMED_CURSORS,
    st.fixed_dictionaries(
        {"v": st.sampled_from((1, 1.0, True, 2, "1", None))},
        optional={
            "s": st.sampled_from((None, "queued", "nope", 1)),
            "t": st.one_of(st.none(), st.text(max_size=5)),
            "p": st.one_of(
                st.lists(
                    st.one_of(st.none(), st.just("~"), st.sampled_from(("0" * 26, "Z" * 26, "I" * 26)), json_scalars),
                    max_size=20,
                ),
                json_values,
            ),
        },
    ),
    json_values,
)


@st.composite
def cursors(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(("issued", "mangled", "crafted", "text")))
    if kind == "issued":
        return "{cursor}"
    if kind == "mangled":
        return draw(st.sampled_from(("{cursor}=", "{cursor}==", "{cursor}x", "x{cursor}", "{cursor}{cursor}")))
    if kind == "crafted":
        raw = json.dumps(draw(CURSOR_DOCUMENTS)).encode()
        encoder = draw(st.sampled_from((base64.urlsafe_b64encode, base64.b64encode)))
        return encoder(raw).decode().rstrip("=")
    return draw(odd_text)


list_parameters = st.lists(
    st.one_of(
        st.tuples(
            st.just("status"), st.one_of(st.sampled_from(("queued", "QUEUED", "done", "", "queued,failed")), odd_text)
        ),
        st.tuples(st.just("type"), st.one_of(st.sampled_from(("echo", "", "e" * 64, "e" * 65)), odd_text)),
        st.tuples(
            st.just("limit"),
            st.one_of(
                st.integers(-2, 102).map(str),
                st.sampled_from(
                    ("", " 5", "5 ", "1e2", "0x10", "5.0", "\u0663", "\uff11\uff10", "99999999999999999999", "null")
                ),
                odd_text,
            ),
        ),
        st.tuples(st.just("cursor"), cursors()),
        st.tuples(odd_text, odd_text),
    ),
    max_size=5,
)
raw_queries = st.one_of(
    st.sampled_from(("%", "%ZZ", "&&&", "=", "a=b=c", ";", "limit", "limit=%FF", "limit=%00", "status=%E2%28", "?")),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)


@settings(FUZZ)
@given(
    parameters=list_parameters,
    raw=st.one_of(st.none(), raw_queries),
    headers=request_headers(key=False),
    body=st.one_of(st.none(), request_bodies),
)
def test_hostile_listing_queries(
    world: World,
    parameters: list[tuple[str, str]],
    raw: str | None,
    headers: tuple[tuple[str, str], ...],
    body: bytes | None,
) -> None:
    # Cursors are percent-encoded by urlencode; the placeholder is filled in after encoding.
    query = (
        raw
        if raw is not None
        else urlencode([(name, value) for name, value in parameters], encoding="utf-8", errors="surrogatepass")
    )
    query = query.replace("%7Bcursor%7D", world.cursor)
    world.check(send(world.stack, "GET", "/jobs", query=query, headers=_resolve_headers(headers), body=body))


# -- job ids, and routes that do not exist ----------------------------------------------------------

ID_MUTATIONS: dict[str, Callable[[str], str]] = {
    "as is": lambda job_id: job_id,
    "lower": str.lower,
    "shorter": lambda job_id: job_id[:-1],
    "longer": lambda job_id: job_id + "0",
    "ambiguous letter": lambda job_id: "I" + job_id[1:],
    "newline": lambda job_id: job_id + "\n",
    "padded": lambda job_id: f" {job_id} ",
    "twice": lambda job_id: job_id * 2,
}
JOB_ROUTES = ("GET /jobs/{id}", "POST /jobs/{id}/cancel", "POST /jobs/{id}/retry")


SEEDED = ("queued", "succeeded", "failed", "cancelled")
job_ids = st.one_of(
    st.tuples(st.sampled_from(SEEDED), st.just("as is")),
    st.tuples(st.sampled_from(SEEDED), st.sampled_from(tuple(ID_MUTATIONS))),
    st.tuples(
        st.just("literal"),
        st.one_of(
            st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=24, max_size=28),
            st.sampled_from(("0" * 26, "7" * 26, "Z" * 26, "8" * 26, ".", "..", "%", "null", "undefined", "x" * 5000)),
            odd_text.filter(bool),
        ),
    ),
)
"""(seeded status, mutation of its id) or ("literal", id)."""


@settings(FUZZ)
@given(
    route=st.sampled_from(JOB_ROUTES),
    job=job_ids,
    headers=request_headers(key=True),
    body=st.one_of(st.none(), request_bodies),
    query=st.one_of(st.just(""), raw_queries),
)
def test_hostile_job_ids(
    world: World,
    route: str,
    job: tuple[str, str],
    headers: tuple[tuple[str, str], ...],
    body: bytes | None,
    query: str,
) -> None:
    source, detail = job
    job_id = detail if source == "literal" else ID_MUTATIONS[detail](world.jobs[source])
    method, template = route.split(" ")
    path = template.replace("{id}", quote(job_id, safe="", errors="surrogatepass"))
    world.check(send(world.stack, method, path, query=query, headers=_resolve_headers(headers), body=body))


@settings(FUZZ)
@given(
    method=st.sampled_from(("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")),
    path=st.one_of(
        st.sampled_from(
            (
                "/",
                "/jobs",
                "/jobs/",
                "/JOBS",
                "/jobs//cancel",
                "/jobs/{queued}",
                "/jobs/{queued}/",
                "/jobs/{queued}/cancel",
                "/jobs/{queued}/retry",
                "/jobs/{queued}/cancel/",
                "/jobs/{queued}/run",
                "/jobs/x/y/z",
                "/openapi.json",
                "/openapi.json/",
                "/openapi.yaml",
                "/docs",
                "/swagger",
            )
        ),
        odd_text.map(lambda text: "/" + quote(text, safe="/", errors="surrogatepass")),
    ),
    headers=request_headers(key=False),
    body=st.one_of(st.none(), request_bodies),
)
def test_hostile_routes_and_methods(
    world: World, method: str, path: str, headers: tuple[tuple[str, str], ...], body: bytes | None
) -> None:
    path = path.replace("{queued}", world.jobs["queued"])
    world.check(send(world.stack, method, path, headers=_resolve_headers(headers), body=body))
