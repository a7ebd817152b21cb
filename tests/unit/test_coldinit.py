"""jobq.handlers.coldinit: each function's imports run with the garbage collector paused, then frozen."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

HANDLERS = ["jobq.handlers.api", "jobq.handlers.worker", "jobq.handlers.sweeper"]
WATCHED = ("jobq.handlers.coldinit", "botocore", "pydantic", "aws_lambda_powertools")

PROBE = """
import gc, json, sys
collections = []
def paused():
    pause = getattr(sys.modules.get("jobq.handlers.coldinit"), "_pause", None)
    return pause is not None and pause.active
gc.callbacks.append(lambda phase, info: phase == "start" and paused() and collections.append(1))
{before}
for name in {modules!r}:
    __import__(name)
    print(json.dumps({{
        "module": name,
        "collections": len(collections),  # while the pause was on
        "enabled": gc.isenabled(),
        "frozen": gc.get_freeze_count(),
        "order": [m for m in sys.modules if m in {watched!r}],
    }}))
"""


def probe(*modules: str, before: str = "") -> list[dict[str, Any]]:
    """What a fresh process saw of the collector after importing each of ``modules`` in turn."""
    code = PROBE.format(modules=list(modules), before=before, watched=WATCHED)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("handler", HANDLERS)
def test_a_handler_module_imports_without_a_collection_and_leaves_the_collector_running(handler: str) -> None:
    (seen,) = probe(handler)
    assert seen["collections"] == 0
    assert seen["enabled"] is True
    assert seen["frozen"] > 20_000  # what the imports built, frozen
    assert seen["order"][0] == "jobq.handlers.coldinit"  # before every library


def test_a_second_handler_module_in_the_same_process_neither_pauses_nor_freezes_again() -> None:
    first, second = probe("jobq.handlers.worker", "jobq.handlers.sweeper")
    assert (second["enabled"], second["frozen"]) == (True, first["frozen"])


def test_the_handlers_helpers_alone_leave_the_collector_as_it_was() -> None:
    (seen,) = probe("jobq.handlers.identity")
    assert (seen["enabled"], seen["frozen"]) == (True, 0)
    assert "jobq.handlers.coldinit" not in seen["order"]


def test_a_collector_the_host_had_stopped_stays_stopped_and_nothing_is_frozen() -> None:
    (seen,) = probe("jobq.handlers.sweeper", before="gc.disable()")
    assert (seen["enabled"], seen["frozen"], seen["collections"]) == (False, 0, 0)
