"""A function hosted in child processes, one per concurrent invocation, as Lambda runs execution environments.

The local runtime runs every function this way. A handler that kills its process (``os._exit``, running out of
memory, a signal) takes one environment down, never the runtime, the other functions or the store. The
invocation then fails as a whole, as on Lambda: a worker batch's messages come back after their visibility
timeout, the job's lease expires and the sweeper recovers it; an API request gets API Gateway's 500. The next
invocation starts a new environment. Concurrent invocations run in environments of their own, on every core.

Parent and child speak over the child's stdin and a dedicated pipe: a line from the child once its handler is
imported; then per invocation a JSON line in, a line back as the child takes it (an environment that ended
before then never ran it: another runs it), and a JSON line with the response. The child's stdout and stderr
(the function's logs) are the runtime's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import IO, Any

from jobq_local import LOGGER_NAME
from jobq_local.template import FunctionSpec

STATEMENTS = "/statements"
"""The suffix of a count of the PartiQL statements in a caller's BatchExecuteStatement requests (each is an
item written, billed as one), beside the count of the requests themselves."""

_log = logging.getLogger(LOGGER_NAME)


class EnvironmentDiedError(RuntimeError):
    """The execution environment's process ended during an invocation."""


class EnvironmentGoneError(EnvironmentDiedError):
    """The environment had ended before an invocation reached it (killed while idle): another can take it."""


class _Environment:
    """One child process with the handler imported, serving invocations one at a time."""

    def __init__(
        self, spec: FunctionSpec, region: str, account_id: str, environment: Mapping[str, str], nice: int = 0
    ) -> None:
        read_end, write_end = os.pipe()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "jobq_local.isolated", spec.handler, str(write_end)],
            stdin=subprocess.PIPE,
            env=dict(environment),
            pass_fds=(write_end,),
        )
        os.close(write_end)
        if nice:
            with contextlib.suppress(OSError, AttributeError):  # no setpriority (Windows): the same priority
                os.setpriority(os.PRIO_PROCESS, self.process.pid, os.getpriority(os.PRIO_PROCESS, 0) + nice)
        self._replies: IO[bytes] = os.fdopen(read_end, "rb")
        self._spec = spec
        self._region = region
        self._account_id = account_id
        self.on_calls: Callable[[Mapping[str, int]], None] | None = None
        if not self._replies.readline():  # the child says it is ready once its handler is imported
            code = self.process.wait()
            self._replies.close()
            raise EnvironmentDiedError(f"the {spec.logical_id} environment failed to start (exit code {code})")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: Mapping[str, Any], timeout: float) -> Any:
        assert self.process.stdin is not None
        request = {
            "event": event,
            "timeout": timeout,
            "function": self._spec.logical_id,
            "memory": self._spec.memory_size,
            "region": self._region,
            "account_id": self._account_id,
        }
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            started = self._replies.readline()  # the child takes the request before it runs the handler
        except OSError:  # BrokenPipeError: nobody reads its stdin any more
            started = b""
        if not started:
            code = self.process.wait()
            message = f"the {self._spec.logical_id} environment had ended (exit code {code})"
            raise EnvironmentGoneError(message)
        try:
            line = self._replies.readline()
        except OSError:
            line = b""
        if not line:
            code = self.process.wait()
            raise EnvironmentDiedError(f"the {self._spec.logical_id} environment died (exit code {code})")
        reply = json.loads(line)
        if self.on_calls is not None:
            self.on_calls(reply.get("calls", {}))
        if "error" in reply:
            raise RuntimeError(f"{self._spec.logical_id} raised: {reply['error']}")
        return reply["response"]

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._replies.close()


class IsolatedFunction:
    """A template function whose invocations run in child processes (an environment per concurrent call)."""

    concurrent = True
    """Invocations may overlap: each runs in an environment of its own."""

    def __init__(
        self,
        spec: FunctionSpec,
        region: str,
        account_id: str,
        environment: Mapping[str, str],
        *,
        on_calls: Callable[[Mapping[str, int]], None] | None = None,
        max_environments: int = 4,
        nice: int = 0,
    ) -> None:
        self.spec = spec
        self.region = region
        self.account_id = account_id
        self.environment = dict(environment)
        self.on_calls = on_calls
        self.nice = nice
        """Added to the runtime's CPU niceness for this function's environments (a lower priority)."""
        self.deaths = 0
        self._idle: list[_Environment] = []
        self._all: list[_Environment] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_environments)
        """At most this many invocations at once; more wait for one to end (Lambda would start more
        environments, which a laptop's cores cannot run any faster)."""

    @property
    def name(self) -> str:
        return self.spec.logical_id

    def pids(self) -> list[int]:
        """Process ids of the live environments."""
        with self._lock:
            return [env.process.pid for env in self._all if env.process.poll() is None]

    def invoke(self, event: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        """Run one invocation in an idle environment, or a new one; a dead environment fails the invocation."""
        seconds = self.spec.timeout if timeout is None else timeout
        with self._slots:
            for attempt in (1, 2):
                environment = self._take()
                try:
                    response = environment.invoke(event, seconds)
                except EnvironmentGoneError:
                    self._discard(environment)
                    if attempt == 1:
                        continue  # it ended while idle: the invocation never started, a new environment runs it
                    raise
                except EnvironmentDiedError:
                    self._discard(environment)
                    _log.error(
                        "%s: its execution environment died mid-invocation; the next call starts a new one", self.name
                    )
                    raise
                with self._lock:
                    self._idle.append(environment)
                return response
        raise AssertionError("unreachable")

    def _discard(self, environment: _Environment) -> None:
        with self._lock:
            self._all.remove(environment)
            self.deaths += 1

    def warm(self) -> None:
        """Start an environment now, out of any invocation's way; EnvironmentDiedError if its handler fails to
        import (the traceback is in the function's log)."""
        environment = self._take()
        with self._lock:
            self._idle.append(environment)

    def _take(self) -> _Environment:
        with self._lock:
            while self._idle:
                environment = self._idle.pop()
                if environment.alive:
                    return environment
                self._all.remove(environment)  # ended while idle (killed): not to be handed an invocation
                self.deaths += 1
        environment = _Environment(self.spec, self.region, self.account_id, self.environment, self.nice)
        environment.on_calls = self.on_calls
        with self._lock:
            self._all.append(environment)
        return environment

    def stop(self) -> None:
        with self._lock:
            environments, self._all, self._idle = list(self._all), [], []
        for environment in environments:
            environment.stop()


def _serve(handler_path: str, reply_fd: int) -> None:
    """The child: import the handler once, then answer invocations until stdin closes."""
    import importlib

    from jobq_local.events import LambdaContext

    module_name, _, attribute = handler_path.rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    replies = os.fdopen(reply_fd, "wb")
    calls: Counter[str] = Counter()
    invoking = {"function": "function"}
    try:
        from jobq.adapters import aws

        for client in (aws.dynamodb_client(), aws.sqs_client()):  # the clients the functions cache
            client.meta.events.register(
                "before-call", lambda model, **_: calls.update([f"{invoking['function']}:{model.name}"])
            )

        def count_statements(params: Mapping[str, Any], **_: Any) -> None:
            calls[f"{invoking['function']}:BatchExecuteStatement{STATEMENTS}"] += len(params.get("Statements", ()))

        aws.dynamodb_client().meta.events.register(
            "provide-client-params.dynamodb.BatchExecuteStatement", count_statements
        )
    except ImportError:
        pass
    replies.write(b'{"ready": true}\n')
    replies.flush()
    for line in sys.stdin.buffer:
        replies.write(b"started\n")
        replies.flush()
        request = json.loads(line)
        invoking["function"] = request["function"]
        context = LambdaContext(
            request["function"],
            timeout_seconds=request["timeout"],
            memory_limit_in_mb=request["memory"],
            region=request["region"],
            account_id=request["account_id"],
        )
        try:
            reply: dict[str, Any] = {"response": handler(request["event"], context)}
        except BaseException as exc:
            logging.getLogger(LOGGER_NAME).exception("%s raised", request["function"])
            reply = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        reply["calls"] = dict(calls)
        calls.clear()
        replies.write(json.dumps(reply).encode() + b"\n")
        replies.flush()


if __name__ == "__main__":
    from jobq_local.logs import install

    install(raw=os.environ.get("JOBQ_LOCAL_RAW_LOGS") == "1")
    _serve(sys.argv[1], int(sys.argv[2]))
