"""One attempt of a job's handler: its payload parsed, the handler called within its time, and what it did
(a JSON result, or the error the attempt failed with and whether another attempt may succeed)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from jobq.domain.context import JobContext, ProgressSink
from jobq.domain.errors import InvalidPayloadError, JobCancelled, JobTimeoutError, NonRetryableError
from jobq.domain.models import Job, JobError
from jobq.domain.registry import JobType

_log = logging.getLogger(__name__)

CallWithTimeLimit = Callable[[Callable[[], Any], float], Any]
"""Calls a function, raising JobTimeoutError once the seconds given have passed (``jobq.timeouts``)."""

MAX_ERROR_MESSAGE = 1000
"""Characters of an error message kept in a job (and each history entry): the item's size stays bounded."""


def execute(
    job: Job,
    job_type: JobType[Any],
    *,
    timeout: float,
    deadline: float,
    sink: ProgressSink,
    call_with_time_limit: CallWithTimeLimit,
) -> tuple[Any, JobError | None]:
    """Run ``job``'s handler: (its result, None) or (None, why the attempt failed)."""
    try:
        payload = job_type.parse(job.payload)
    except InvalidPayloadError as exc:
        return None, JobError(type="InvalidPayloadError", message=_describe(exc), retryable=False)
    ctx = JobContext(
        job_id=job.job_id,
        job_type=job.type,
        attempt=job.attempts,
        max_attempts=job.max_attempts,
        deadline=deadline,
        sink=sink,
    )
    try:
        raw = call_with_time_limit(lambda: job_type.handler(payload, ctx), timeout)
    except JobCancelled as exc:
        return None, JobError(type="JobCancelled", message=_describe(exc), retryable=False)
    except NonRetryableError as exc:
        return None, JobError(type=type(exc).__name__, message=_describe(exc), retryable=False)
    except JobTimeoutError as exc:
        return None, JobError(type="JobTimeoutError", message=str(exc), retryable=True)
    except BaseException as exc:  # noqa: BLE001 - whatever a handler raises (SystemExit too) fails its attempt
        _log.debug("job handler raised", exc_info=True)
        return None, JobError(type=type(exc).__name__, message=_describe(exc), retryable=True)
    try:
        return _jsonable(raw), None
    except (TypeError, ValueError) as exc:
        return None, JobError(type="ResultNotSerializableError", message=f"result is not JSON: {exc}", retryable=False)


def _describe(exc: BaseException) -> str:
    """An exception as a job's error message, cut to ``MAX_ERROR_MESSAGE``."""
    text = str(exc) or repr(exc)
    if isinstance(exc, SystemExit):
        text = f"the handler called exit({exc.code!r})"
    return text if len(text) <= MAX_ERROR_MESSAGE else text[: MAX_ERROR_MESSAGE - 3] + "..."


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    json.dumps(value, allow_nan=False)
    return value
