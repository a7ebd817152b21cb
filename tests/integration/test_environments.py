"""Execution environments of the local runtime (jobq_local.isolated): a child process per concurrent invocation."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from jobq_local.isolated import EnvironmentDiedError, IsolatedFunction
from jobq_local.template import FunctionSpec


def _function(handler: str, *, max_environments: int = 4, nice: int = 0) -> IsolatedFunction:
    spec = FunctionSpec("TestFunction", {"Handler": handler, "Timeout": 30, "MemorySize": 256})
    # (an environment builds the jobq clients it counts the calls of: they need a region)
    environment = dict(os.environ) | {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "a",
        "AWS_SECRET_ACCESS_KEY": "b",
    }
    return IsolatedFunction(
        spec, "us-east-1", "123456789012", environment, max_environments=max_environments, nice=nice
    )


@pytest.fixture
def napper() -> Iterator[IsolatedFunction]:
    function = _function("tests.support.environments.nap", max_environments=3)
    yield function
    function.stop()


def test_an_invocation_gets_a_lambda_context_in_an_environment_of_its_own(napper: IsolatedFunction) -> None:
    response = napper.invoke({"seconds": 0})
    assert response["pid"] != os.getpid()
    assert 25_000 < response["remaining_ms"] <= 30_000
    assert napper.invoke({"seconds": 0})["pid"] == response["pid"]  # warm: the same environment again


def test_concurrent_invocations_run_at_once_up_to_the_limit(napper: IsolatedFunction) -> None:
    napper.warm()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(napper.invoke, [{"seconds": 0.5}] * 6))
    elapsed = time.monotonic() - started
    assert len({response["pid"] for response in responses}) == 3  # three environments, each used twice
    assert 1.0 <= elapsed < 2.5  # two rounds of three at once, not six one after the other (3 s)


def test_an_environment_killed_while_idle_fails_no_invocation(napper: IsolatedFunction) -> None:
    first = napper.invoke({"seconds": 0})["pid"]
    os.kill(first, signal.SIGKILL)
    second = napper.invoke({"seconds": 0})["pid"]  # at once: the dead environment is not handed the invocation
    assert second != first
    assert napper.deaths == 1
    assert napper.pids() == [second]


def test_an_environment_that_dies_mid_invocation_fails_it_and_the_next_gets_a_new_one() -> None:
    function = _function("tests.support.environments.die")
    try:
        with pytest.raises(EnvironmentDiedError, match="died"):
            function.invoke({})
        assert function.deaths == 1
        assert function.pids() == []
    finally:
        function.stop()


def test_a_handler_that_cannot_be_imported_fails_warm_up() -> None:
    function = _function("tests.support.no_such_module.handler")
    try:
        with pytest.raises(EnvironmentDiedError, match="failed to start"):
            function.warm()
    finally:
        function.stop()


def test_a_function_given_a_niceness_runs_its_environments_that_much_nicer() -> None:
    nicer, plain = _function("tests.support.environments.nap", nice=8), _function("tests.support.environments.nap")
    try:
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        pids = nicer.invoke({"seconds": 0})["pid"], plain.invoke({"seconds": 0})["pid"]
        assert [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids] == [min(ours + 8, 19), ours]
    finally:
        nicer.stop()
        plain.stop()


def test_the_runtime_runs_the_queue_fed_worker_at_its_own_priority_and_the_rest_nicer() -> None:
    from jobq_local.runtime import REQUEST_NICENESS, niceness
    from jobq_local.template import Template

    assert {spec.logical_id: niceness(spec) for spec in Template().functions()} == {
        "ApiFunction": REQUEST_NICENESS,
        "SweeperFunction": REQUEST_NICENESS,
        "WorkerFunction": 0,
    }
