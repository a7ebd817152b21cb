"""Built-in job types, kept for demos and tests: echo, sleep, fail, count."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from jobq import JobContext, NonRetryableError


class EchoPayload(BaseModel):
    """Any JSON object."""

    model_config = ConfigDict(extra="allow")


def echo(payload: EchoPayload, ctx: JobContext) -> dict[str, Any]:
    """Result = payload."""
    return payload.model_dump()


class SleepPayload(BaseModel):
    """How long to sleep."""

    model_config = ConfigDict(extra="forbid")

    seconds: float = Field(ge=0, le=60, allow_inf_nan=False)


def sleep(payload: SleepPayload, ctx: JobContext) -> dict[str, Any]:
    """Sleep, then report how long."""
    time.sleep(payload.seconds)
    return {"slept": payload.seconds}


class FailPayload(BaseModel):
    """Fail the first ``times`` attempts (always, when -1), then succeed."""

    model_config = ConfigDict(extra="forbid")

    times: int = Field(default=-1, ge=-1)
    retryable: bool = True
    message: str = Field(default="failed on purpose", max_length=1000)


class RequestedFailureError(Exception):
    """The failure a ``fail`` job was asked for."""


def fail(payload: FailPayload, ctx: JobContext) -> dict[str, Any]:
    """Raise until the attempt number passes ``times``; result ``{"attempts": n}``."""
    if payload.times == -1 or ctx.attempt <= payload.times:
        if payload.retryable:
            raise RequestedFailureError(payload.message)
        raise NonRetryableError(payload.message)
    return {"attempts": ctx.attempt}


class CountPayload(BaseModel):
    """Count to ``to`` over ``seconds``, reporting progress at each step."""

    model_config = ConfigDict(extra="forbid")

    to: int = Field(ge=1, le=100_000, description="The number to count to.")
    seconds: float = Field(default=0, ge=0, le=60, allow_inf_nan=False, description="How long the count takes.")


def count(payload: CountPayload, ctx: JobContext) -> dict[str, Any]:
    """Count to ``to``, one progress report per number; result ``{"counted": to}``. Stops when cancelled."""
    step = payload.seconds / payload.to
    for number in range(1, payload.to + 1):
        time.sleep(step)
        ctx.progress(number, payload.to, f"counted to {number}")
    return {"counted": payload.to}
