"""The local runtime's HTTP server under load and against malformed requests, over real sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from jobq_local.process import RuntimeProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeProcess]:
    with RuntimeProcess() as process:
        yield process


def raw(runtime: RuntimeProcess, request: bytes, timeout: float = 5.0) -> tuple[bytes, float]:
    """Send bytes as they are; the response's first bytes and how long it took."""
    parts = urlsplit(runtime.api_url)
    started = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as connection:
        connection.sendall(request)
        received = connection.recv(4096)
    return received, time.monotonic() - started


def test_300_submits_from_50_clients_get_no_reset(runtime: RuntimeProcess) -> None:
    def submit(n: int) -> int:
        return runtime.request("POST", "/jobs", {"type": "echo", "payload": {"n": n}}, caller=f"client{n % 50}")[0]

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(submit, range(300)))  # a reset would raise here
    assert statuses == [202] * 300


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e3"])
def test_a_bad_content_length_gets_400_at_once(runtime: RuntimeProcess, length: bytes) -> None:
    response, seconds = raw(runtime, b"POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}")
    assert response.startswith(b"HTTP/1.1 400")
    assert seconds < 2


@pytest.mark.parametrize("target", [b"http://evil.example/jobs", b"//jobs", b"*"])
def test_only_origin_form_targets_are_routed(runtime: RuntimeProcess, target: bytes) -> None:
    response, _ = raw(runtime, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400")
    assert b"evil" not in response


def test_errors_echo_only_a_short_prefix_of_the_input(runtime: RuntimeProcess) -> None:
    status, body = runtime.request("GET", "/jobs/" + "A" * 20_000)
    assert status == 404
    assert body["error"]["code"] == "job_not_found"
    assert len(body["error"]["message"]) < 80
