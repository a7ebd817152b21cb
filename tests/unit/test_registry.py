"""Job types, the registry, and the retry policy's backoff."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobq import JobContext, JobRegistry, JobType, RetryPolicy
from jobq.domain.errors import InvalidPayloadError, JobTimeoutError, UnknownJobTypeError
from jobq.domain.registry import DEFAULT_TIMEOUT_SECONDS
from jobq.timeouts import call_with_time_limit


class Numbers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1)
    label: str = "x"


def handle(payload: Numbers, ctx: JobContext) -> dict[str, Any]:
    return {"count": payload.count}


# -- RetryPolicy ----------------------------------------------------------------------------------


def test_retry_policy_defaults_are_the_seed_policy() -> None:
    policy = RetryPolicy()
    assert (policy.base_seconds, policy.factor, policy.jitter) == (5, 2, 0.2)


def test_delay_without_jitter_is_exact_doubling() -> None:
    policy = RetryPolicy(jitter=0)
    rng = random.Random(1)
    assert [policy.delay_seconds(n, rng) for n in range(1, 6)] == [5, 10, 20, 40, 80]


@pytest.mark.parametrize(("attempt", "nominal"), [(1, 5), (2, 10), (3, 20)])
def test_delay_with_jitter_stays_within_twenty_percent(attempt: int, nominal: int) -> None:
    policy = RetryPolicy()
    rng = random.Random(42)
    delays = [policy.delay_seconds(attempt, rng) for _ in range(300)]
    assert min(delays) >= round(nominal * 0.8)
    assert max(delays) <= round(nominal * 1.2)
    # Jitter actually spreads the delays (not one constant value).
    assert len(set(delays)) > 1


def test_delay_with_seeded_rng_is_reproducible() -> None:
    policy = RetryPolicy(base_seconds=100, max_seconds=10_000)
    first = [policy.delay_seconds(n, random.Random(3)) for n in range(1, 8)]
    second = [policy.delay_seconds(n, random.Random(3)) for n in range(1, 8)]
    assert first == second
    other_seed = [policy.delay_seconds(n, random.Random(4)) for n in range(1, 8)]
    assert other_seed != first


def test_delay_is_capped_at_max_seconds_even_with_jitter() -> None:
    policy = RetryPolicy(base_seconds=5, max_seconds=60, jitter=0.5)
    rng = random.Random(9)
    delays = [policy.delay_seconds(10, rng) for _ in range(200)]
    assert max(delays) <= 60
    assert min(delays) >= 30  # 60 - 50 %
    assert RetryPolicy(max_seconds=60, jitter=0).delay_seconds(10) == 60


def test_attempt_zero_or_negative_counts_as_first() -> None:
    policy = RetryPolicy(jitter=0)
    assert policy.delay_seconds(0) == 5
    assert policy.delay_seconds(-3) == 5


@pytest.mark.parametrize("attempt", [1_000, 10**6, 10**9, 10**18])
def test_huge_attempt_numbers_do_not_overflow(attempt: int) -> None:
    policy = RetryPolicy(max_seconds=43200, jitter=0)
    assert policy.delay_seconds(attempt, random.Random(0)) == 43200
    jittered = RetryPolicy(max_seconds=43200).delay_seconds(attempt, random.Random(0))
    assert 43200 * 0.8 <= jittered <= 43200


@pytest.mark.parametrize(
    "policy",
    [RetryPolicy(factor=1, jitter=0), RetryPolicy(base_seconds=0, jitter=0)],
    ids=["factor-1", "base-0"],
)
def test_huge_attempt_numbers_are_fast_for_policies_that_never_reach_the_cap(policy: RetryPolicy) -> None:
    # factor 1 or base 0 never grow to max_seconds; the delay must still come back at once.
    started = time.monotonic()
    try:
        delay = call_with_time_limit(lambda: policy.delay_seconds(10**9, random.Random(0)), 0.5)
    except JobTimeoutError:
        pytest.fail(f"delay_seconds(10**9) did not return within 0.5 s for {policy!r}")
    assert delay == min(policy.base_seconds, policy.max_seconds)
    assert time.monotonic() - started < 0.5


@settings(max_examples=120, deadline=None, database=None)
@given(
    base=st.floats(min_value=0, max_value=1000),
    factor=st.floats(min_value=1, max_value=10),
    extra=st.floats(min_value=0, max_value=5000),
    jitter=st.floats(min_value=0, max_value=1),
    attempt=st.integers(min_value=1, max_value=200),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_is_always_within_zero_and_cap(
    base: float, factor: float, extra: float, jitter: float, attempt: int, seed: int
) -> None:
    policy = RetryPolicy(base_seconds=base, factor=factor, max_seconds=base + extra, jitter=jitter)
    delay = policy.delay_seconds(attempt, random.Random(seed))
    assert isinstance(delay, int)
    assert 0 <= delay <= policy.max_seconds
    nominal = min(base * factor ** (attempt - 1), policy.max_seconds)
    assert delay >= round(nominal * (1 - jitter)) - 1


def test_retry_policy_rejects_cap_below_base() -> None:
    with pytest.raises(ValidationError, match="max_seconds"):
        RetryPolicy(base_seconds=10, max_seconds=5)


@pytest.mark.parametrize("fields", [{"factor": 0.5}, {"jitter": 1.5}, {"base_seconds": -1}, {"max_seconds": 50_000}])
def test_retry_policy_rejects_out_of_range_fields(fields: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicy(**fields)


# -- JobType ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "echo", "my.job-type_2", "x" * 64])
def test_job_type_accepts_valid_names(name: str) -> None:
    job_type = JobType(name, Numbers, handle)
    assert job_type.name == name
    assert job_type.timeout_seconds == DEFAULT_TIMEOUT_SECONDS == 300
    assert job_type.max_attempts is None
    assert job_type.retry is None


@pytest.mark.parametrize("name", ["", "Echo", "1job", "_job", "job type", "job/x", "x" * 65, "jöb"])
def test_job_type_rejects_invalid_names(name: str) -> None:
    with pytest.raises(ValueError, match="must match"):
        JobType(name, Numbers, handle)


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_job_type_rejects_non_positive_timeout(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout_seconds"):
        JobType("numbers", Numbers, handle, timeout_seconds=timeout)


def test_job_type_rejects_zero_max_attempts() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        JobType("numbers", Numbers, handle, max_attempts=0)


def test_job_type_parse_returns_the_model() -> None:
    parsed = JobType("numbers", Numbers, handle).parse({"count": 3})
    assert parsed == Numbers(count=3, label="x")


def test_job_type_parse_raises_invalid_payload_with_details() -> None:
    job_type = JobType("numbers", Numbers, handle)
    with pytest.raises(InvalidPayloadError) as caught:
        job_type.parse({"count": 0, "other": 1})
    error = caught.value
    assert error.code == "invalid_payload"
    assert "numbers" in error.message
    assert isinstance(error.details, list)
    by_loc = {tuple(item["loc"]): item for item in error.details}
    assert set(by_loc) == {("count",), ("other",)}
    assert by_loc[("count",)]["type"] == "greater_than_equal"
    assert by_loc[("other",)]["type"] == "extra_forbidden"
    for item in error.details:
        assert set(item) == {"loc", "type", "msg"}
        assert item["msg"]


def test_job_type_parse_missing_field() -> None:
    with pytest.raises(InvalidPayloadError) as caught:
        JobType("numbers", Numbers, handle).parse({})
    assert caught.value.details == [{"loc": ["count"], "type": "missing", "msg": "Field required"}]


# -- JobRegistry ------------------------------------------------------------------------------------


def test_registry_rejects_duplicate_names() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        JobRegistry([JobType("numbers", Numbers, handle), JobType("numbers", Numbers, handle, timeout_seconds=5)])


def test_registry_get_returns_registered_types_or_none() -> None:
    first = JobType("zeta", Numbers, handle)
    second = JobType("alpha", Numbers, handle)
    registry = JobRegistry([first, second])
    assert registry.names == ["alpha", "zeta"]
    assert registry.get("zeta") is first
    assert registry.get("alpha") is second
    assert registry.get("missing") is None


def test_registry_require_unknown_lists_known_types() -> None:
    registry = JobRegistry([JobType("zeta", Numbers, handle), JobType("alpha", Numbers, handle)])
    with pytest.raises(UnknownJobTypeError) as caught:
        registry.require("nope")
    error = caught.value
    assert error.code == "unknown_job_type"
    assert "'nope'" in error.message
    assert "alpha, zeta" in error.message
    assert error.details == {"known_types": ["alpha", "zeta"]}


def test_empty_registry() -> None:
    registry = JobRegistry([])
    assert registry.names == []
    with pytest.raises(UnknownJobTypeError):
        registry.require("echo")


# -- JobContext -------------------------------------------------------------------------------------


def test_job_context_remaining_seconds() -> None:
    ctx = JobContext(job_id="j", job_type="t", attempt=1, max_attempts=3, deadline=time.monotonic() + 10)
    assert 9 < ctx.remaining_seconds() <= 10
    past = JobContext(job_id="j", job_type="t", attempt=1, max_attempts=3, deadline=time.monotonic() - 5)
    assert past.remaining_seconds() == 0.0
