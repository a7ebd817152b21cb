"""Job types: name -> payload model, handler, timeout, attempts and retry policy."""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from jobq.domain.errors import InvalidPayloadError, UnknownJobTypeError
from jobq.domain.models import JOB_TYPE_PATTERN

P = TypeVar("P", bound=BaseModel)

DEFAULT_TIMEOUT_SECONDS = 300.0


class RetryPolicy(BaseModel):
    """Exponential backoff with jitter: ``base * factor**(n-1)`` seconds, capped, then jittered."""

    model_config = ConfigDict(frozen=True)

    base_seconds: float = Field(default=5, ge=0, le=43200)
    factor: float = Field(default=2, ge=1, le=10)
    max_seconds: float = Field(default=600, ge=0, le=43200)
    jitter: float = Field(default=0.2, ge=0, le=1, description="Spread as a fraction of the delay (+/-).")

    @model_validator(mode="after")
    def _cap_not_below_base(self) -> RetryPolicy:
        if self.max_seconds < self.base_seconds:
            raise ValueError("max_seconds must be at least base_seconds")
        return self

    def delay_seconds(self, failed_attempts: int, rng: random.Random | None = None) -> int:
        """Visibility delay after the ``failed_attempts``-th failure (1-based), whole seconds."""
        exponent = max(failed_attempts - 1, 0)
        nominal = self.base_seconds
        if exponent and nominal > 0 and self.factor > 1:
            # Stop the exponent where the cap is reached: factor**exponent overflows floats long before that.
            ratio = math.log(self.max_seconds) - math.log(nominal) if self.max_seconds > nominal else 0.0
            to_cap = math.ceil(ratio / math.log(self.factor))
            nominal *= self.factor ** min(exponent, max(to_cap, 0))
        nominal = min(nominal, self.max_seconds)
        spread = nominal * self.jitter
        jittered = (rng or random).uniform(nominal - spread, nominal + spread)
        return max(0, min(round(jittered), int(self.max_seconds)))


@dataclass(frozen=True)
class JobContext:
    """What a handler may know about the attempt it runs in."""

    job_id: str
    job_type: str
    attempt: int
    max_attempts: int
    deadline: float = field(repr=False)
    """``time.monotonic()`` value by which the handler must return."""

    def remaining_seconds(self) -> float:
        """Seconds left before this attempt times out."""
        return max(0.0, self.deadline - time.monotonic())


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

    def find(self, name: str) -> JobType[Any] | None:
        """The type called ``name``, or None."""
        return self._types.get(name)

    def get(self, name: str) -> JobType[Any]:
        """The type called ``name``, or UnknownJobTypeError listing the known ones."""
        job_type = self._types.get(name)
        if job_type is None:
            raise UnknownJobTypeError(
                f"unknown job type {name!r}; known types: {', '.join(self.names)}",
                details={"known_types": self.names},
            )
        return job_type
