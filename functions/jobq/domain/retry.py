"""RetryPolicy: how long a failed attempt waits before the next one (exponential backoff with jitter)."""

from __future__ import annotations

import math
import random

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
