"""Start the local runtime in a subprocess and talk to it over HTTP (end-to-end tests, benchmarks)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from jobq_local.auth import LOCAL_SECRET
from jobq_local.endpoints import Endpoints

DEFAULT_CALLER = "e2e"
"""The access key id requests are signed with unless a test names another (``--admin`` is ``admin``)."""
REGION = "us-east-1"
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def sign(
    method: str,
    url: str,
    data: bytes | None,
    headers: Mapping[str, str],
    access_key: str,
    secret: str,
    region: str,
    token: str | None = None,
) -> dict[str, str]:
    """``headers`` plus the SigV4 headers (service ``execute-api``) for this request, as botocore signs it
    (``token``: a session token, signed with the rest)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url, data=data, headers=dict(headers))
    SigV4Auth(Credentials(access_key, secret, token), "execute-api", region).add_auth(request)
    return dict(request.headers.items())


def runtime_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment a runtime starts with: this one without its AWS settings (credentials, profile, region),
    which belong to the caller, but with boto3's endpoint variables, which say where the AWS services are (an
    emulator the tests run against: ``make test-localstack``, ``make bench`` against an endpoint)."""
    return {
        key: value
        for key, value in environ.items()
        if not key.startswith("AWS_") or key == "AWS_ENDPOINT_URL" or key.startswith("AWS_ENDPOINT_URL_")
    }


def die_with_parent() -> None:
    """End this process when its parent ends, however that one ends (Linux; elsewhere the parent's own stop
    ends it): the store's process, before exec, and its server's worker."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """A port nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports nothing listens on right now (each probe held until all are chosen: a port one
    probe freed may be the next probe's)."""
    with contextlib.ExitStack() as probes:
        sockets = [probes.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in sockets]


PORT_TRIES = 3
"""Starts with fresh ports when one chosen was taken before the runtime bound it (another process's
connection may get any free port of the ephemeral range in between)."""
PORT_TAKEN = ("Address already in use", " is in use; ")
"""How the runtime says a port was taken: a bind's error, or its own check of the API port."""


class RuntimeProcess:
    """``python -m jobq_local`` on free ports; ``api_url`` and ``emulator_url`` once it is ready."""

    def __init__(
        self,
        parameters: Mapping[str, str] | None = None,
        *,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 60.0,
        log_path: Path | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.parameters = dict(parameters or {})
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="jobq-local-"))
        self.log_path = log_path or self._dir / "runtime.log"
        self.ready_file = self._dir / "ready.json"
        self.stats_file = self._dir / "stats.json"
        self.state_file = self._dir / "state.json"
        self.process: subprocess.Popen[bytes] | None = None
        self.endpoints: dict[str, Any] = {}
        self.environment = dict(environment or {})
        self._left: tuple[str, dict[str, Any] | None] | None = None
        """The log and the request counts of the stopped runtime, once its directory is gone."""

    @property
    def api_url(self) -> str:
        return str(self.endpoints["api_url"])

    @property
    def emulator_url(self) -> str:
        return str(self.endpoints["emulator_url"])

    def endpoint(self, service: str) -> str:
        """Where the runtime's ``service`` (``sqs``, ``dynamodb``) is: the embedded store, or the endpoint given."""
        return str(self.endpoints.get("service_endpoints", {}).get(service, self.emulator_url))

    def start(self) -> RuntimeProcess:
        for _ in range(PORT_TRIES - 1):
            try:
                return self._start(*free_ports(2))
            except RuntimeError as exc:
                if not any(sign in str(exc) for sign in PORT_TAKEN):
                    raise
        return self._start(*free_ports(2))

    def _start(self, port: int, emulator_port: int) -> RuntimeProcess:
        self._dir.mkdir(exist_ok=True)  # again, after a stop removed it
        self._left = None
        args = [sys.executable, "-m", "jobq_local", "--port", str(port), "--emulator-port", str(emulator_port)]
        args += ["--ready-file", str(self.ready_file), "--stats-file", str(self.stats_file), "--raw-logs"]
        args += ["--state-file", str(self.state_file)]
        for name, value in self.parameters.items():
            args += ["--param", f"{name}={value}"]
        env = runtime_environment(os.environ) | self.environment
        if Endpoints.from_environment(env).given and "--stack-name" not in self.extra_args:
            # a shared emulator: resources of their own (CloudFormation-like names, <stack>-<LogicalId>)
            args += ["--stack-name", f"jobq-{uuid.uuid4().hex[:8]}"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(args + self.extra_args, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        try:
            self._wait_until_ready()
        except BaseException:  # a with-block's __exit__ never runs when __enter__ fails: stop it here
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"jobq-local exited with {self.process.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"jobq-local did not start within {self.startup_timeout} s:\n{self.log()}")
            time.sleep(0.05)
        self.endpoints = json.loads(self.ready_file.read_text())

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C, then wait; returns the exit code. The runtime's directory goes (its log and request counts
        stay readable here), so that test and benchmark runs leave nothing behind in the temporary directory."""
        if self.process is None:
            self._clean_up()
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._clean_up()
        return int(self.process.returncode)

    def _clean_up(self) -> None:
        """Keep the log and the request counts in memory and remove the runtime's directory."""
        if self._left is not None:
            return
        stats = json.loads(self.stats_file.read_text()) if self.stats_file.exists() else None
        self._left = (self.log(), stats)
        shutil.rmtree(self._dir, ignore_errors=True)

    def stats(self) -> dict[str, Any]:
        """AWS request counts the runtime wrote on exit."""
        if self._left is not None:
            if self._left[1] is None:
                raise RuntimeError("the runtime wrote no request counts (it did not exit cleanly)")
            return self._left[1]
        data: dict[str, Any] = json.loads(self.stats_file.read_text())
        return data

    def log(self) -> str:
        if self._left is not None:
            return self._left[0]
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> RuntimeProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- HTTP ---------------------------------------------------------------------------------------

    def wait_for(
        self,
        job_id: str,
        statuses: frozenset[str] = TERMINAL,
        *,
        timeout: float = 30.0,
        caller: str | None = DEFAULT_CALLER,
    ) -> dict[str, Any]:
        """Poll ``GET /jobs/{job_id}`` until the job is in one of ``statuses``; its document."""
        return wait_for_job(self.request, job_id, statuses, timeout=timeout, caller=caller)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float = 30.0,
        caller: str | None = DEFAULT_CALLER,
        secret: str = LOCAL_SECRET,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request to the HTTP API, SigV4-signed as ``caller`` (an access key id; None: unsigned);
        the status and the decoded JSON body."""
        signer = None if caller is None else (caller, secret, None)
        region = self.endpoints.get("region", REGION)
        return json_request(method, self.api_url + path, body, headers, signer, region, timeout=timeout)


def json_request(
    method: str,
    url: str,
    body: Any,
    headers: Mapping[str, str] | None,
    signer: tuple[str, str, str | None] | None,
    region: str,
    *,
    timeout: float,
) -> tuple[int, Any]:
    """``body`` as JSON to ``url``, SigV4-signed with ``signer`` (access key, secret, session token; None:
    unsigned); the status and the decoded JSON body."""
    data = None if body is None else json.dumps(body).encode()
    sent = {"content-type": "application/json"} | dict(headers or {})
    if signer is not None:
        access_key, secret, token = signer
        sent = sign(method, url, data, sent, access_key, secret, region, token)
    return send(method, url, data, sent, timeout=timeout)


def send(method: str, url: str, data: bytes | None, headers: Mapping[str, str], *, timeout: float) -> tuple[int, Any]:
    """One HTTP request: the status and the decoded JSON body (errors included)."""
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers))  # noqa: S310 - our URLs
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return int(error.code), json.loads(error.read() or b"null")


def wait_for_job(
    request: Callable[..., tuple[int, Any]],
    job_id: str,
    statuses: frozenset[str],
    *,
    timeout: float,
    caller: str | None,
    interval: float = 0.05,
) -> dict[str, Any]:
    """Poll ``GET /jobs/{job_id}`` through ``request`` until the job is in one of ``statuses``; its document."""
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        status, body = request("GET", f"/jobs/{job_id}", caller=caller)
        if status != 200:
            raise AssertionError(f"GET /jobs/{job_id} answered {status}: {body}")
        if body["status"] in statuses:
            return dict(body)
        time.sleep(interval)
    raise AssertionError(f"job {job_id} not in {sorted(statuses)} after {timeout} s: {body}")
