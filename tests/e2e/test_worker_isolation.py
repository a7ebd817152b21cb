"""A worker environment that dies (os._exit, out of memory, a kill) takes neither the API nor the store with it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobq_local.process import RuntimeProcess

pytestmark = pytest.mark.e2e


def worker_environments(parent: int) -> list[int]:
    """Process ids of the runtime's worker environments (children running jobq_local.isolated)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"jobq_local.isolated" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture
def runtime() -> Iterator[RuntimeProcess]:
    with RuntimeProcess() as process:
        yield process


def test_a_killed_worker_environment_loses_no_job_and_the_next_jobs_run(runtime: RuntimeProcess) -> None:
    assert runtime.process is not None
    status, job = runtime.request("POST", "/jobs", {"type": "sleep", "payload": {"seconds": 30}})
    assert status == 202, job
    running = runtime.wait_for(job["job_id"], frozenset({"running"}))
    environments = worker_environments(runtime.process.pid)
    assert environments, "the worker runs in environments of its own"

    for pid in environments:  # as os._exit or the OOM killer would end them
        os.kill(pid, signal.SIGKILL)

    assert runtime.process.poll() is None  # the runtime, its API and its store live on
    after = runtime.wait_for(job["job_id"], frozenset({"running"}))
    assert (after["attempts"], after["started_at"]) == (running["attempts"], running["started_at"])  # not lost
    status, echo = runtime.request("POST", "/jobs", {"type": "echo", "payload": {"after": "the kill"}})
    assert status == 202
    assert runtime.wait_for(echo["job_id"], frozenset({"succeeded"}))["result"] == {"after": "the kill"}
    assert set(worker_environments(runtime.process.pid)).isdisjoint(environments)  # new environments took over
    runtime.stop()
    assert "execution environment died" in runtime.log()
