"""Handlers that exit or kill their process, run by the real local runtime over HTTP."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from jobq_local.process import RuntimeProcess
from tests.support.paths import HOSTILE_SITE

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeProcess]:
    path = os.pathsep.join([str(HOSTILE_SITE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    parameters = {"RetryBaseSeconds": "0", "RetryMaxSeconds": "1", "MaxAttempts": "3"}
    with RuntimeProcess(parameters, environment={"PYTHONPATH": path}) as process:
        yield process


def submit(runtime: RuntimeProcess, job_type: str) -> dict[str, Any]:
    status, body = runtime.request("POST", "/jobs", {"type": job_type})
    assert status == 202, body
    return dict(body)


def test_a_handler_calling_sys_exit_fails_its_attempts_and_the_runtime_runs_on(runtime: RuntimeProcess) -> None:
    jobs = [submit(runtime, "exits") for _ in range(6)]  # more than the pollers the exits once killed
    for job in jobs:
        done = runtime.wait_for(job["job_id"], frozenset({"failed"}))
        assert done["attempts"] == 3
        assert [entry["type"] for entry in done["history"]] == ["SystemExit"] * 3
        assert done["error"]["message"] == "the handler called exit(3)"
    echo = submit(runtime, "echo")
    assert runtime.wait_for(echo["job_id"], frozenset({"succeeded"}))["status"] == "succeeded"


def test_a_handler_calling_os_exit_takes_only_its_environment(runtime: RuntimeProcess) -> None:
    job = submit(runtime, "dies")
    running = runtime.wait_for(job["job_id"], frozenset({"running"}))
    time.sleep(1.5)  # the handler has called os._exit(7) by now
    after = runtime.wait_for(
        job["job_id"], frozenset({"running"})
    )  # recorded, not lost: its lease expires, the sweeper acts
    assert after["attempts"] == running["attempts"] == 1
    echo = submit(runtime, "echo")
    assert runtime.wait_for(echo["job_id"], frozenset({"succeeded"}))["status"] == "succeeded"
    assert runtime.process is not None
    assert runtime.process.poll() is None
    assert "execution environment died" in runtime.log()
