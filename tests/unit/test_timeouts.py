"""call_with_time_limit: SIGALRM in the main thread, a helper thread elsewhere."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from jobq.domain.errors import JobTimeoutError
from jobq.timeouts import call_with_time_limit


def in_thread(func: Callable[[], Any]) -> Any:
    """Run ``func`` in a non-main thread; return its result or re-raise its exception here."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func()
        except BaseException as exc:  # handed back to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


# -- main thread (SIGALRM) ------------------------------------------------------------------------


def test_main_thread_returns_the_result() -> None:
    assert threading.current_thread() is threading.main_thread()
    assert call_with_time_limit(lambda: 41 + 1, 1.0) == 42


def test_main_thread_interrupts_a_sleep() -> None:
    started = time.monotonic()
    with pytest.raises(JobTimeoutError, match=r"0\.2 s"):
        call_with_time_limit(lambda: time.sleep(5), 0.2)
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 1.5


def test_main_thread_interrupts_a_busy_loop() -> None:
    def spin() -> None:
        while True:
            pass

    started = time.monotonic()
    with pytest.raises(JobTimeoutError):
        call_with_time_limit(spin, 0.2)
    assert time.monotonic() - started < 1.5


def test_main_thread_restores_the_previous_handler_and_timer() -> None:
    sentinel_calls: list[int] = []

    def sentinel(signum: int, frame: Any) -> None:
        sentinel_calls.append(signum)

    previous = signal.signal(signal.SIGALRM, sentinel)
    try:
        call_with_time_limit(lambda: None, 0.2)
        assert signal.getsignal(signal.SIGALRM) is sentinel
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        with pytest.raises(JobTimeoutError):
            call_with_time_limit(lambda: time.sleep(2), 0.1)
        assert signal.getsignal(signal.SIGALRM) is sentinel
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        time.sleep(0.25)  # no stray alarm fires after the call
        assert sentinel_calls == []
    finally:
        signal.signal(signal.SIGALRM, previous)


def test_main_thread_propagates_the_functions_own_error() -> None:
    def broken() -> None:
        raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        call_with_time_limit(broken, 1.0)
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_main_thread_nested_limits_do_not_leak() -> None:
    assert call_with_time_limit(lambda: call_with_time_limit(lambda: "inner", 0.5), 1.0) == "inner"
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# -- worker thread --------------------------------------------------------------------------------


def test_worker_thread_returns_the_result() -> None:
    assert in_thread(lambda: call_with_time_limit(lambda: "done", 1.0)) == "done"


def test_worker_thread_times_out_without_waiting_for_the_job() -> None:
    release = threading.Event()
    try:
        started = time.monotonic()
        with pytest.raises(JobTimeoutError, match=r"0\.2 s"):
            in_thread(lambda: call_with_time_limit(lambda: release.wait(5), 0.2))
        assert time.monotonic() - started < 1.5
    finally:
        release.set()  # let the abandoned helper thread finish


def test_worker_thread_propagates_the_functions_own_error() -> None:
    def broken() -> None:
        raise ValueError("mine")

    with pytest.raises(ValueError, match="mine"):
        in_thread(lambda: call_with_time_limit(broken, 1.0))


def test_worker_thread_does_not_touch_the_alarm() -> None:
    before = signal.getsignal(signal.SIGALRM)
    in_thread(lambda: call_with_time_limit(lambda: None, 0.5))
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
