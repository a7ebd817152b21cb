"""Loaded by Python at start-up when this folder is on PYTHONPATH (the hostile-handler e2e tests put it there).

It adds test-only job types to the registry of every process it runs in (the local runtime and its worker
environments): handlers written the way a careless or hostile author might, ``dies_once``, whose first attempt
kills its process (the sweeper scenario), and ``flaky``, which fails for good while a marker file exists (the
dashboard's browser test retries it after removing the file). Production code has no such hook.
"""

import os
import sys
import time
from pathlib import Path

from pydantic import BaseModel

import jobq.jobs
from jobq import JobContext, JobRegistry, JobType, NonRetryableError

_builtins = jobq.jobs.build_registry


class Anything(BaseModel):
    """Any payload."""


def _exits(payload: Anything, ctx: JobContext) -> None:
    sys.exit(3)


def _dies(payload: Anything, ctx: JobContext) -> None:
    time.sleep(0.5)  # long enough for the test to see it running
    os._exit(7)


def _dies_once(payload: Anything, ctx: JobContext) -> dict[str, int]:
    if ctx.attempt == 1:
        os._exit(7)  # as a crash or the OOM killer would: the attempt's lease is left to expire
    return {"attempt": ctx.attempt}


class Marker(BaseModel):
    """The marker file whose presence makes a ``flaky`` job fail."""

    marker: str


def _flaky(payload: Marker, ctx: JobContext) -> dict[str, bool]:
    if Path(payload.marker).exists():
        raise NonRetryableError(f"flaky: {payload.marker} exists")
    return {"ok": True}


def build_registry() -> JobRegistry:
    registry = _builtins()
    extra = [
        JobType("exits", Anything, _exits, timeout_seconds=10),
        JobType("dies", Anything, _dies, timeout_seconds=10),
        JobType("flaky", Marker, _flaky, timeout_seconds=10),
        JobType("dies_once", Anything, _dies_once, timeout_seconds=1),  # its lease: 1 s + the 30 s grace
    ]
    return JobRegistry([*(registry.require(name) for name in registry.names), *extra])


jobq.jobs.build_registry = build_registry
