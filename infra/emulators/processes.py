"""What running a third-party emulator takes: a virtualenv of its own, a network namespace, a process, waits.

Nothing here knows an emulator; ``localstack``, ``dynamodb_local`` and ``ministack`` use it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobq_local.template import REPO_ROOT

_log = logging.getLogger("jobq-emulators")

CACHE = REPO_ROOT / ".cache" / "emulators"
"""Downloads and builds kept between runs (npm packages, the agent jar, LocalStack's service catalog)."""


class EmulatorError(RuntimeError):
    """An emulator could not be installed or started; the message says why and what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_until(check: Callable[[], bool], *, what: str, timeout: float, process: Service | None = None) -> float:
    """Seconds until ``check()`` holds; EmulatorError when ``process`` ends first or ``timeout`` passes."""
    started = time.monotonic()
    while True:
        with contextlib.suppress(OSError, ValueError):
            if check():
                return time.monotonic() - started
        if process is not None and not process.alive:
            raise EmulatorError(f"{what}: {process.name} exited with {process.returncode}:\n{process.tail()}")
        if time.monotonic() - started > timeout:
            raise EmulatorError(
                f"{what}: not ready after {timeout:.0f} s" + (f":\n{process.tail()}" if process else "")
            )
        time.sleep(0.05)


def http_json(
    url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None, *, timeout: float = 2.0
) -> tuple[int, Any]:
    """Status and decoded JSON body of one request (``{}`` for an empty or non-JSON body)."""
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))  # noqa: S310 - our own URLs
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, body = int(response.status), response.read()
    except urllib.error.HTTPError as error:
        status, body = int(error.code), error.read()
    try:
        return status, json.loads(body or b"{}")
    except ValueError:
        return status, {}


def aws_json_call(url: str, service: str, target: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
    """An unsigned-but-scoped AWS JSON-protocol call (``X-Amz-Target``): enough for an emulator's readiness."""
    headers = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": target,
        # emulators check no signature, but some pick a namespace by the credential scope
        "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{service}/aws4_request, "
        "SignedHeaders=host, Signature=0",
    }
    return http_json(url, json.dumps(body or {}).encode(), headers)


@dataclass(frozen=True)
class Venv:
    """A virtualenv of an emulator's own (its pins clash with jobq's), built from a requirements file with uv."""

    path: Path
    requirements: Path
    python: str
    """The interpreter to build it from."""

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    def ensure(self) -> Venv:
        """Build it unless it was built from the same requirements and interpreter; returns it."""
        stamp = self.path / ".jobq-installed"
        wanted = hashlib.sha256(self.requirements.read_bytes() + self.python.encode()).hexdigest()
        if stamp.exists() and stamp.read_text() == wanted and (self.bin / "python").exists():
            return self
        uv = Path(sys.executable).parent / "uv"
        if not uv.exists():
            raise EmulatorError(f"uv is not in {uv.parent}: run make venv first")
        shutil.rmtree(self.path, ignore_errors=True)
        _log.info("building %s from %s (once)", self.path.name, self.requirements.name)
        _run([str(uv), "venv", "--quiet", "--python", self.python, str(self.path)])
        _run([str(uv), "pip", "sync", "--quiet", "--python", str(self.bin / "python"), str(self.requirements)])
        stamp.write_text(wanted)
        return self


def _run(argv: Sequence[str], **options: Any) -> None:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, **options)  # noqa: S603
    if result.returncode != 0:
        raise EmulatorError(f"{' '.join(argv[:3])} ... failed ({result.returncode}):\n{result.stderr[-3000:]}")


def find_python(version: str) -> str:
    """A working interpreter of ``version`` (``3.13``): one that pyenv installed, or on PATH."""
    root = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser()
    candidates = [str(path / "bin" / f"python{version}") for path in sorted(root.glob(f"versions/{version}*"))]
    candidates.append(shutil.which(f"python{version}") or "")  # (pyenv's shim is on PATH but may not work)
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False)  # noqa: S603
        if probe.returncode == 0:
            return candidate
    raise EmulatorError(f"no Python {version} found (on PATH or in pyenv): install it, e.g. pyenv install {version}")


def java_home() -> Path:
    """The JDK that ``java`` on PATH belongs to (DynamoDB Local runs on Java 17 or newer)."""
    java = shutil.which("java")
    if java is None:
        raise EmulatorError("no java on PATH: DynamoDB Local needs a JDK 17 or newer (apt-get install openjdk-17-jdk)")
    return Path(java).resolve().parent.parent


@dataclass
class Namespace:
    """A network namespace of its own, with only a loopback interface: what runs inside is reachable only from
    inside (DynamoDB Local listens on every interface and has no option to bind one)."""

    holder: subprocess.Popen[bytes] | None = None

    def start(self) -> Namespace:
        if os.geteuid() != 0:
            raise EmulatorError("a network namespace needs root (unshare --net); run the target as root")
        self.holder = subprocess.Popen(
            ["unshare", "--net", "sleep", "infinity"],  # noqa: S607
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        mine = os.readlink("/proc/self/ns/net")
        wait_until(
            lambda: self.holder is not None and os.readlink(f"/proc/{self.holder.pid}/ns/net") != mine,
            what="network namespace",
            timeout=10,
        )
        _run(self.enter(["ip", "link", "set", "lo", "up"]))
        return self

    @property
    def path(self) -> str:
        assert self.holder is not None
        return f"/proc/{self.holder.pid}/ns/net"

    def enter(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside the namespace."""
        return ["nsenter", f"--net={self.path}", *argv]

    def probe(self, *args: str) -> bool:
        """Whether ``python -m emulators.probe ARGS`` succeeds inside (nothing outside reaches what runs there)."""
        probe = subprocess.run(  # noqa: S603 - our own interpreter and module
            self.enter([sys.executable, "-m", "emulators.probe", *args]), capture_output=True, check=False
        )
        return probe.returncode == 0

    def stop(self) -> None:
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()
            self.holder.wait()


@dataclass
class Emulator:
    """One emulator: its process (``service``, once started) on 127.0.0.1:``port``, its files under ``workdir``."""

    workdir: Path
    port: int = field(default_factory=free_port, kw_only=True)
    service: Service | None = field(default=None, kw_only=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


@dataclass
class Service:
    """One emulator process: started in a session of its own (so that whatever it starts can be ended with it),
    its output in a log file, stopped by its process group."""

    name: str
    argv: list[str]
    log: Path
    environment: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    stop_grace: float = 10.0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(self.environment),
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the process and everything it started (its session, and descendants that started sessions
        of their own: LocalStack starts DynamoDB Local's JVM so), SIGKILL to what is left after the grace period:
        MiniStack leaves its function workers behind, LocalStack sometimes hangs on SIGTERM."""
        if self.process is None:
            return
        session = self.process.pid  # start_new_session: the leader's pid names its session
        descendants = descendants_of(session, process_table())  # now: once the leader is gone, they are re-parented

        def left() -> list[int]:
            table = process_table()
            return sorted(set(session_members(session, table)) | {pid for pid in descendants if pid in table})

        for pid in left():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=self.stop_grace)
        except subprocess.TimeoutExpired:
            _log.warning("%s ignored SIGTERM for %.0f s: SIGKILL", self.name, self.stop_grace)
        deadline = time.monotonic() + self.stop_grace
        while (remaining := left()) and time.monotonic() < deadline:
            for pid in remaining:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        self.process.kill()
        self.process.wait()


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session) of every live process (zombies left out)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":  # state, ppid, pgrp, session
            table[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return table


def descendants_of(pid: int, table: Mapping[int, tuple[int, int]]) -> set[int]:
    """Processes of ``table`` (``process_table()``) descended from ``pid``, whatever their session."""
    children: dict[int, list[int]] = {}
    for child, (parent, _) in table.items():
        children.setdefault(parent, []).append(child)
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def session_members(session: int, table: Mapping[int, tuple[int, int]]) -> list[int]:
    """Processes of ``table`` in a session (``start_new_session`` made its leader's pid the session id)."""
    return [pid for pid, (_, member_of) in table.items() if member_of == session]
