"""The built-in job types (README, "Built-in job types"): echo, sleep, fail."""

from __future__ import annotations

import math
import time

import pytest

from jobq import JobContext, JobRegistry
from jobq.domain.errors import InvalidPayloadError, NonRetryableError
from jobq.jobs import build_registry
from jobq.jobs.builtin import RequestedFailureError


@pytest.fixture
def builtins() -> JobRegistry:
    return build_registry()


def context(attempt: int = 1, max_attempts: int = 3, job_type: str = "fail") -> JobContext:
    return JobContext(
        job_id="01KDWPVNG0YE3JFY1T7HT7YKRZ",
        job_type=job_type,
        attempt=attempt,
        max_attempts=max_attempts,
        deadline=time.monotonic() + 30,
    )


def run(registry: JobRegistry, name: str, payload: dict[str, object], attempt: int = 1) -> object:
    job_type = registry.require(name)
    return job_type.handler(job_type.parse(payload), context(attempt, job_type=name))


def test_builtin_types_are_registered(builtins: JobRegistry) -> None:
    assert {"echo", "fail", "sleep"} <= set(builtins.names)  # a deployment may add its own
    assert builtins.names == sorted(builtins.names)
    for name in builtins.names:
        assert 0 < builtins.require(name).timeout_seconds <= 300


# -- echo -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [{}, {"a": 1}, {"nested": {"list": [1, "two", None, True, 2.5]}, "s": "x"}],
)
def test_echo_result_is_the_payload(builtins: JobRegistry, payload: dict[str, object]) -> None:
    assert run(builtins, "echo", payload) == payload


# -- sleep ------------------------------------------------------------------------------------------


def test_sleep_sleeps_and_reports(builtins: JobRegistry) -> None:
    started = time.monotonic()
    assert run(builtins, "sleep", {"seconds": 0.05}) == {"slept": 0.05}
    assert time.monotonic() - started >= 0.04


def test_sleep_zero(builtins: JobRegistry) -> None:
    assert run(builtins, "sleep", {"seconds": 0}) == {"slept": 0}


@pytest.mark.parametrize("seconds", [0, 0.5, 60])
def test_sleep_accepts_up_to_sixty_seconds(builtins: JobRegistry, seconds: float) -> None:
    assert builtins.get("sleep").parse({"seconds": seconds}).seconds == seconds


@pytest.mark.parametrize("payload", [{"seconds": 61}, {"seconds": 60.001}, {"seconds": -1}, {}, {"seconds": "soon"}])
def test_sleep_rejects_out_of_range_or_missing_seconds(builtins: JobRegistry, payload: dict[str, object]) -> None:
    with pytest.raises(InvalidPayloadError):
        builtins.get("sleep").parse(payload)


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_sleep_rejects_non_finite_seconds(builtins: JobRegistry, value: float) -> None:
    with pytest.raises(InvalidPayloadError):
        builtins.get("sleep").parse({"seconds": value})


def test_sleep_rejects_extra_fields(builtins: JobRegistry) -> None:
    with pytest.raises(InvalidPayloadError):
        builtins.get("sleep").parse({"seconds": 1, "extra": True})


# -- fail -------------------------------------------------------------------------------------------


def test_fail_defaults(builtins: JobRegistry) -> None:
    payload = builtins.get("fail").parse({})
    assert payload.times == -1
    assert payload.retryable is True
    assert isinstance(payload.message, str)


@pytest.mark.parametrize("attempt", [1, 2, 10])
def test_fail_always_when_times_is_minus_one(builtins: JobRegistry, attempt: int) -> None:
    with pytest.raises(RequestedFailureError, match="boom"):
        run(builtins, "fail", {"times": -1, "message": "boom"}, attempt=attempt)


def test_fail_once_then_succeeds_on_attempt_two(builtins: JobRegistry) -> None:
    with pytest.raises(RequestedFailureError):
        run(builtins, "fail", {"times": 1}, attempt=1)
    assert run(builtins, "fail", {"times": 1}, attempt=2) == {"attempts": 2}


def test_fail_twice_then_succeeds(builtins: JobRegistry) -> None:
    for attempt in (1, 2):
        with pytest.raises(RequestedFailureError):
            run(builtins, "fail", {"times": 2}, attempt=attempt)
    assert run(builtins, "fail", {"times": 2}, attempt=3) == {"attempts": 3}


def test_fail_zero_times_succeeds_at_once(builtins: JobRegistry) -> None:
    assert run(builtins, "fail", {"times": 0}, attempt=1) == {"attempts": 1}


def test_fail_not_retryable_raises_non_retryable_error(builtins: JobRegistry) -> None:
    with pytest.raises(NonRetryableError, match="give up"):
        run(builtins, "fail", {"retryable": False, "message": "give up"})


def test_retryable_failure_is_not_a_non_retryable_error(builtins: JobRegistry) -> None:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the type is asserted below
        run(builtins, "fail", {"retryable": True})
    assert not isinstance(caught.value, NonRetryableError)


@pytest.mark.parametrize("payload", [{"times": -2}, {"times": "x"}, {"message": "m" * 1001}, {"unknown": 1}])
def test_fail_rejects_invalid_payloads(builtins: JobRegistry, payload: dict[str, object]) -> None:
    with pytest.raises(InvalidPayloadError):
        builtins.get("fail").parse(payload)
