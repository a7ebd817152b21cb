"""Errors of the jobq domain. Each has a stable machine-readable ``code``."""

from __future__ import annotations

from typing import Any


class JobqError(Exception):
    """Base of every jobq error; ``code`` is what API clients match on."""

    code = "jobq_error"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidRequestError(JobqError):
    """The request is malformed (not JSON, not an object, bad query parameter)."""

    code = "invalid_request"


class InvalidCursorError(InvalidRequestError):
    """A listing cursor that this service did not issue, or issued for other filters."""

    code = "invalid_cursor"


class PayloadTooLargeError(JobqError):
    """The request body is over the configured size limit."""

    code = "payload_too_large"


class UnknownJobTypeError(JobqError):
    """No job type of that name is registered."""

    code = "unknown_job_type"


class InvalidPayloadError(JobqError):
    """The payload does not validate against the job type's model."""

    code = "invalid_payload"


class InvalidBatchError(JobqError):
    """Some jobs of a batch are invalid; ``details`` names each by its index. None of them was submitted."""

    code = "invalid_batch"


class UnauthenticatedError(JobqError):
    """No authorizer vouched for the caller (API Gateway always does in front of a deployed API)."""

    code = "unauthenticated"


class ForbiddenError(JobqError):
    """The caller is authenticated but not allowed to do this (operator-only actions)."""

    code = "forbidden"


class JobNotFoundError(JobqError):
    """No job with that id."""

    code = "job_not_found"


class InvalidTransitionError(JobqError):
    """The job's current status does not allow the requested change."""

    code = "invalid_state"

    def __init__(self, message: str, *, current_status: str | None = None) -> None:
        super().__init__(message, details={"status": current_status} if current_status else None)
        self.current_status = current_status


class RetryLimitError(InvalidTransitionError):
    """The job was retried as often as ``MaxRetries`` allows."""

    code = "retry_limit_reached"


class IdempotencyKeyReusedError(JobqError):
    """An Idempotency-Key came back with a different request."""

    code = "idempotency_key_reused"


class IdempotencyKeyInProgressError(JobqError):
    """A request with this Idempotency-Key is still being handled."""

    code = "idempotency_key_in_progress"


class DependencyUnavailableError(JobqError):
    """DynamoDB or SQS could not be reached or kept failing after retries."""

    code = "service_unavailable"


class ConfigurationError(JobqError):
    """Required configuration is missing or invalid (raised on first use, loudly)."""

    code = "configuration_error"


class NonRetryableError(Exception):
    """Raise from a job handler to fail the job at once, without further attempts."""


class JobTimeoutError(Exception):
    """A job ran past its per-type timeout (or the Lambda's remaining time)."""


class JobCancelled(BaseException):  # a BaseException, like asyncio.CancelledError
    """Raised by ``context.progress()`` or ``check_cancelled()``: the attempt must stop.

    A caller cancelled the job (it ends ``cancelled``), or the attempt no longer holds the job's lease.
    Clean up in ``finally`` and let it propagate.
    """
