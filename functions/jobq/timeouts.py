"""Run a callable under a time limit."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from types import FrameType
from typing import TypeVar

from jobq.domain.errors import JobTimeoutError

T = TypeVar("T")


def call_with_time_limit(func: Callable[[], T], seconds: float) -> T:
    """``func()``, or JobTimeoutError once ``seconds`` pass.

    In the main thread (Lambda, the local runtime's function processes, tests) SIGALRM interrupts
    the job where it is, sleeps and blocking I/O included. Elsewhere the job runs in a helper thread
    that is abandoned, not killed, when the limit passes.
    """
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        return _with_alarm(func, seconds)
    return _with_thread(func, seconds)


def _with_alarm(func: Callable[[], T], seconds: float) -> T:
    finished = False

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if not finished:
            raise JobTimeoutError(f"job exceeded its {seconds:g} s time limit")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        result = func()
        finished = True
        return result
    finally:
        finished = True
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _with_thread(func: Callable[[], T], seconds: float) -> T:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobq-job")
    future = executor.submit(func)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        raise JobTimeoutError(f"job exceeded its {seconds:g} s time limit") from None
    finally:
        executor.shutdown(wait=False)
