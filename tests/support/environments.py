"""Handlers for the execution-environment tests (``tests/integration/test_environments.py``)."""

from __future__ import annotations

import os
import time
from typing import Any


def nap(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleeps ``event["seconds"]``; answers with its process id and the remaining time it was given."""
    time.sleep(float(event.get("seconds", 0)))
    return {"pid": os.getpid(), "remaining_ms": context.get_remaining_time_in_millis()}


def die(event: dict[str, Any], context: Any) -> None:
    """Ends its process mid-invocation, as os._exit or the OOM killer would."""
    os._exit(9)
