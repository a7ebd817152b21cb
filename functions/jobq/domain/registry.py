"""The job registry: type name -> payload model, handler, timeout, max attempts and retry policy."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from jobq.domain.context import JobContext
from jobq.domain.errors import InvalidPayloadError, UnknownJobTypeError
from jobq.domain.models import JOB_TYPE_PATTERN
from jobq.domain.retry import RetryPolicy

P = TypeVar("P", bound=BaseModel)

DEFAULT_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class JobType(Generic[P]):
    """One job type. ``handler(payload, ctx)`` returns a JSON-serialisable result or a model."""

    name: str
    model: type[P]
    handler: Callable[[P, JobContext], Any]
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_attempts: int | None = None
    retry: RetryPolicy | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(JOB_TYPE_PATTERN, self.name):
            raise ValueError(f"job type name {self.name!r} must match {JOB_TYPE_PATTERN}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"job type {self.name!r}: timeout_seconds must be positive")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError(f"job type {self.name!r}: max_attempts must be at least 1")

    def parse(self, payload: Mapping[str, Any]) -> P:
        """The payload as this type's model, or InvalidPayloadError with pydantic's findings."""
        try:
            return self.model.model_validate(payload)
        except ValidationError as exc:
            details = [
                {"loc": list(err["loc"]), "type": err["type"], "msg": err["msg"]}
                for err in exc.errors(include_url=False, include_input=False, include_context=False)
            ]
            raise InvalidPayloadError(f"payload is not valid for job type {self.name!r}", details=details) from None


class JobRegistry:
    """The job types a deployment knows. The API validates against it; the worker runs from it."""

    def __init__(self, job_types: Iterable[JobType[Any]]) -> None:
        self._types: dict[str, JobType[Any]] = {}
        for job_type in job_types:
            if job_type.name in self._types:
                raise ValueError(f"job type {job_type.name!r} is registered twice")
            self._types[job_type.name] = job_type

    @property
    def names(self) -> list[str]:
        """Registered type names, sorted."""
        return sorted(self._types)

    def get(self, name: str) -> JobType[Any] | None:
        """The type called ``name``, or None."""
        return self._types.get(name)

    def require(self, name: str) -> JobType[Any]:
        """The type called ``name``, or UnknownJobTypeError listing the known ones."""
        job_type = self._types.get(name)
        if job_type is None:
            raise UnknownJobTypeError(
                f"unknown job type {name!r}; known types: {', '.join(self.names)}",
                details={"known_types": self.names},
            )
        return job_type
