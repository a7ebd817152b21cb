"""Configuration from the environment that template.yaml sets: read once, validated, loud when missing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobq.caching import per_process
from jobq.domain.errors import ConfigurationError
from jobq.domain.retry import RetryPolicy


class Settings(BaseModel):
    """What every function needs. Field aliases are the environment variable names."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    jobs_table_name: str = Field(alias="JOBS_TABLE_NAME", min_length=1)
    jobs_queue_url: str = Field(alias="JOBS_QUEUE_URL", min_length=1)
    jobs_dlq_url: str = Field(alias="JOBS_DLQ_URL", min_length=1)
    max_attempts: int = Field(alias="JOBQ_MAX_ATTEMPTS", ge=1, le=1000)
    job_ttl_days: int = Field(alias="JOBQ_JOB_TTL_DAYS", ge=1)
    retry_base_seconds: float = Field(alias="JOBQ_RETRY_BASE_SECONDS", ge=0)
    retry_max_seconds: float = Field(alias="JOBQ_RETRY_MAX_SECONDS", ge=0)
    list_shards: int = Field(alias="JOBQ_LIST_SHARDS", ge=1, le=100)
    history_limit: int = Field(alias="JOBQ_HISTORY_LIMIT", ge=1, le=100)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The default retry policy of job types that do not set their own."""
        return RetryPolicy(base_seconds=self.retry_base_seconds, max_seconds=self.retry_max_seconds)


class ApiSettings(Settings):
    """What the API function needs on top."""

    max_body_bytes: int = Field(alias="JOBQ_MAX_BODY_BYTES", ge=1)
    idempotency_table_name: str = Field(alias="IDEMPOTENCY_TABLE_NAME", min_length=1)
    admin_principals: str = Field(alias="JOBQ_ADMIN_PRINCIPALS")
    max_retries: int = Field(alias="JOBQ_MAX_RETRIES", ge=0, le=1000)
    """Comma-separated principals who see and act on every job (may be empty, never missing)."""

    @property
    def admins(self) -> frozenset[str]:
        """The admin principals, as a set."""
        return frozenset(part.strip() for part in self.admin_principals.split(",") if part.strip())

    @property
    def idempotency_expires_after_seconds(self) -> int:
        """Keys live as long as their jobs: longer than the queue's and the DLQ's retention together."""
        return self.job_ttl_days * 86400


class SweeperSettings(Settings):
    """What the sweeper function needs on top."""

    stuck_after_seconds: float = Field(alias="JOBQ_STUCK_AFTER_SECONDS", gt=0)


S = TypeVar("S", bound=Settings)


def load(model: type[S], environ: Mapping[str, str]) -> S:
    """``model`` from ``environ``; a ConfigurationError names every missing or invalid variable."""
    try:
        return model.model_validate(dict(environ))
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False, include_input=False):
            variable = ".".join(str(part) for part in error["loc"])
            problems.append(f"{variable} ({'missing' if error['type'] == 'missing' else error['msg']})")
        raise ConfigurationError(
            "jobq is misconfigured: " + "; ".join(problems) + ". These variables come from template.yaml."
        ) from None


@per_process
def get_settings() -> Settings:
    """The process's settings, read on first use."""
    return load(Settings, os.environ)


@per_process
def get_api_settings() -> ApiSettings:
    """The API function's settings, read on first use."""
    return load(ApiSettings, os.environ)


@per_process
def get_sweeper_settings() -> SweeperSettings:
    """The sweeper function's settings, read on first use."""
    return load(SweeperSettings, os.environ)
