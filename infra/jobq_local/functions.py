"""A template function as the local runtime hosts it: imported once, invoked like Lambda with a context."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from jobq_local.events import LambdaContext
from jobq_local.template import FunctionSpec

Handler = Callable[[Mapping[str, Any], Any], Any]


class Hosted(Protocol):
    """A template function as the event sources see it: however it is hosted, invoked like Lambda invokes."""

    spec: FunctionSpec
    region: str
    account_id: str
    concurrent: bool
    """Whether invocations may overlap (each in an environment of its own); if not, callers take turns."""

    @property
    def name(self) -> str: ...

    def invoke(self, event: Mapping[str, Any], *, timeout: float | None = None) -> Any: ...


@dataclass
class LocalFunction:
    """One function of the template, loaded once and invoked like Lambda would."""

    spec: FunctionSpec
    region: str
    account_id: str
    concurrent = False
    """One environment, shared by every invocation in this process: invocations take turns."""
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
