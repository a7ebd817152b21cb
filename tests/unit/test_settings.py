"""Configuration from the environment: loud and specific when something is missing."""

from __future__ import annotations

import pytest

from jobq import RetryPolicy
from jobq.domain.errors import ConfigurationError
from jobq.settings import ApiSettings, Settings, load

VALID = {
    "JOBS_TABLE_NAME": "jobq-jobs",
    "JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobq-jobs",
    "JOBS_DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobq-dlq",
    "JOBQ_MAX_ATTEMPTS": "3",
    "JOBQ_JOB_TTL_DAYS": "30",
    "JOBQ_RETRY_BASE_SECONDS": "5",
    "JOBQ_RETRY_MAX_SECONDS": "900",
    "JOBQ_LIST_SHARDS": "8",
    "JOBQ_HISTORY_LIMIT": "20",
}
REQUIRED = sorted(VALID)


def test_valid_environment_parses() -> None:
    settings = load(Settings, VALID | {"UNRELATED": "ignored", "PATH": "/usr/bin"})
    assert settings.jobs_table_name == "jobq-jobs"
    assert settings.jobs_queue_url.endswith("/jobq-jobs")
    assert settings.jobs_dlq_url.endswith("/jobq-dlq")
    assert settings.max_attempts == 3
    assert settings.job_ttl_days == 30
    assert settings.retry_base_seconds == 5.0
    assert settings.retry_max_seconds == 900.0
    assert settings.list_shards == 8


def test_retry_policy_comes_from_the_settings() -> None:
    policy = load(Settings, VALID).retry_policy
    assert isinstance(policy, RetryPolicy)
    assert policy.base_seconds == 5
    assert policy.max_seconds == 900


def test_empty_environment_names_every_missing_variable() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(Settings, {})
    message = str(caught.value)
    assert caught.value.code == "configuration_error"
    for name in REQUIRED:
        assert f"{name} (missing)" in message
    assert "JOBQ_MAX_BODY_BYTES" not in message


@pytest.mark.parametrize("name", REQUIRED)
def test_each_missing_variable_is_named(name: str) -> None:
    environ = {key: value for key, value in VALID.items() if key != name}
    with pytest.raises(ConfigurationError) as caught:
        load(Settings, environ)
    message = str(caught.value)
    assert f"{name} (missing)" in message
    for other in REQUIRED:
        if other != name:
            assert other not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("JOBQ_MAX_ATTEMPTS", "0"),
        ("JOBQ_MAX_ATTEMPTS", "many"),
        ("JOBQ_LIST_SHARDS", "101"),
        ("JOBQ_JOB_TTL_DAYS", "0"),
        ("JOBS_TABLE_NAME", ""),
        ("JOBQ_RETRY_BASE_SECONDS", "-1"),
    ],
)
def test_invalid_values_are_named(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(Settings, VALID | {name: value})
    message = str(caught.value)
    assert name in message
    assert f"{name} (missing)" not in message


def test_api_settings_need_the_body_limit_the_idempotency_table_and_the_admins() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(ApiSettings, VALID)
    assert "JOBQ_MAX_BODY_BYTES (missing)" in str(caught.value)
    assert "IDEMPOTENCY_TABLE_NAME (missing)" in str(caught.value)
    assert "JOBQ_ADMIN_PRINCIPALS (missing)" in str(caught.value)
    api = {
        "JOBQ_MAX_BODY_BYTES": "262144",
        "IDEMPOTENCY_TABLE_NAME": "idem",
        "JOBQ_ADMIN_PRINCIPALS": " a, ,b ",
        "JOBQ_MAX_RETRIES": "10",
    }
    settings = load(ApiSettings, VALID | api)
    assert settings.admins == frozenset({"a", "b"})
    assert load(ApiSettings, VALID | api | {"JOBQ_ADMIN_PRINCIPALS": ""}).admins == frozenset()
    assert settings.max_body_bytes == 262144
    assert settings.jobs_table_name == "jobq-jobs"
    assert settings.idempotency_expires_after_seconds == int(VALID["JOBQ_JOB_TTL_DAYS"]) * 86400


def test_api_settings_reject_a_zero_body_limit() -> None:
    with pytest.raises(ConfigurationError, match="JOBQ_MAX_BODY_BYTES"):
        load(
            ApiSettings,
            VALID
            | {
                "JOBQ_MAX_BODY_BYTES": "0",
                "IDEMPOTENCY_TABLE_NAME": "idem",
                "JOBQ_ADMIN_PRINCIPALS": "",
                "JOBQ_MAX_RETRIES": "1",
            },
        )


def test_worker_settings_do_not_need_the_body_limit() -> None:
    assert not hasattr(load(Settings, VALID), "max_body_bytes")
