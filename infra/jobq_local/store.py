"""The embedded store: moto's server (``python -m moto.server``) with two of its per-request costs removed.

``python -m jobq_local.store --host 127.0.0.1 --port 4566`` serves exactly what moto's server serves, the same
backends and the same ``/moto-api``, but:

- it finds a request's backend once per host name, not by matching the name against every service's URL
  patterns on every request (about a tenth of moto's time under load, measured with py-spy);
- it runs on waitress, a production WSGI server with a thread pool and HTTP keep-alive, where werkzeug's
  development server closes every connection (``Connection: close``) and starts a thread per request: every
  AWS call paid a TCP connect and a thread start on both sides;
- a queue's attributes are computed when read, one by one: moto builds all of them, the approximate
  message counts included (a scan of every message in the queue), on every SendMessage just to read
  ``ContentBasedDeduplication``, so sending got slower the deeper the queue (2 ms a message at 100
  messages, 23 ms at 1,000, measured in-process);
- it writes no access log line per request.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app


class QueueAttributes(Mapping[str, Any]):
    """``Queue.attributes`` as moto computes it, each value on first read instead of all of them up front."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue
        names = list(queue.BASE_ATTRIBUTES)
        if queue.fifo_queue:
            names += queue.FIFO_ATTRIBUTES
        if queue.kms_master_key_id:
            names += queue.KMS_ATTRIBUTES
        if queue.policy:
            names.append("Policy")
        if queue.redrive_policy:
            names.append("RedrivePolicy")
        self._names = list(dict.fromkeys(names))
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            if name not in self._names:
                raise KeyError(name)
            self._values[name] = self._compute(name)
        return self._values[name]

    def _compute(self, name: str) -> Any:
        from moto.core.utils import camelcase_to_underscores

        if name == "Policy":
            value = self._queue.policy
        elif name == "RedrivePolicy" and self._queue.redrive_policy:
            value = json.dumps(self._queue.redrive_policy)
        else:
            value = getattr(self._queue, camelcase_to_underscores(name))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def lazy_queue_attributes() -> None:
    """Make moto's ``Queue.attributes`` a QueueAttributes (the same keys and values, computed when read)."""
    from moto.sqs.models import Queue

    Queue.attributes = property(QueueAttributes)  # type: ignore[assignment,method-assign]


class CachedDispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend each host name maps to (the mapping never changes)."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._backends: dict[str, Any] = {}

    def get_backend_for_host(self, host: str | None) -> Any:
        if host is None:
            return None
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]


def main(argv: list[str] | None = None) -> None:
    """Serve the store until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's server sets it (URLs it builds)
    lazy_queue_attributes()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    signal.signal(signal.SIGINT, lambda signum, frame: sys.exit(0))
    import waitress

    # Threads: enough for every long-polling SQS receive (they wait up to 20 s) plus the calls behind them.
    waitress.serve(CachedDispatcher(), host=args.host, port=args.port, threads=64, ident="jobq-store", _quiet=True)


if __name__ == "__main__":
    main()
