"""Scenarios every backend runs that the other e2e files leave out: the sweeper's recovery of a job whose
worker died, one dead letter per failed job after an API retry, the tables' point-in-time recovery."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from jobq_local.process import RuntimeProcess
from tests.support.backend import BACKEND, BACKEND_VERSION, aws_client
from tests.support.deployment import SCENARIO_PARAMETERS, deployment, requires_local
from tests.support.paths import HOSTILE_SITE

pytestmark = [pytest.mark.e2e, pytest.mark.scenario]


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeProcess]:
    path = os.pathsep.join([str(HOSTILE_SITE), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with deployment(
        SCENARIO_PARAMETERS, extra_args=["--schedules-every", "2"], environment={"PYTHONPATH": path}
    ) as process:
        yield process


def submit(runtime: RuntimeProcess, job_type: str, payload: dict[str, Any] | None = None) -> str:
    status, body = runtime.request("POST", "/jobs", {"type": job_type, "payload": payload or {}})
    assert status == 202, body
    return str(body["job_id"])


def test_the_sweeper_recovers_a_job_whose_worker_died(runtime: RuntimeProcess) -> None:
    requires_local(runtime, "a test-only job type that kills its environment (tests/support/hostile_site)")
    job_id = submit(runtime, "dies_once")
    done = runtime.wait_for(job_id, frozenset({"succeeded", "failed"}), timeout=120)  # lease: 1 s + 30 s grace
    assert done["status"] == "succeeded", done
    assert done["result"] == {"attempt": 2}
    assert [entry["type"] for entry in done["history"]] == ["WorkerLostError"]
    assert "execution environment died" in runtime.log()


def _dead_letters(runtime: RuntimeProcess, job_id: str) -> int:
    status, page = runtime.request("GET", "/dlq", caller="admin")
    assert status == 200, page
    return sum(1 for item in page["items"] if item["job"] and item["job"]["job_id"] == job_id)


def test_a_job_retried_and_failed_again_keeps_one_dead_letter(runtime: RuntimeProcess) -> None:
    job_id = submit(runtime, "fail", {"retryable": False, "message": "fails every time"})
    assert runtime.wait_for(job_id)["status"] == "failed"
    status, retried = runtime.request("POST", f"/jobs/{job_id}/retry")
    assert status == 202, retried
    again = runtime.wait_for(job_id, frozenset({"failed"}), timeout=60)
    assert [entry["message"] for entry in again["history"]] == ["fails every time"] * 2
    assert _dead_letters(runtime, job_id) == 1  # the earlier attempt's letter is stale: not listed, not redriven
    status, report = runtime.request("POST", "/dlq/redrive", {"job_id": job_id}, caller="admin")
    assert status == 200, report
    assert report["redriven"] == [job_id], report
    assert [item["reason"] for item in report["dropped"]] == [
        "stale: the job was retried since (message generation 0, job 1)"
    ]
    third = runtime.wait_for(job_id, frozenset({"failed"}), timeout=60)
    deadline = time.monotonic() + 60  # (it may still read failed from before the redrive took effect)
    while len(third["history"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        third = runtime.wait_for(job_id, frozenset({"failed"}), timeout=60)
    assert [entry["message"] for entry in third["history"]] == ["fails every time"] * 3  # ran once more, not twice
    # (The sweeper deletes stale letters from the queue itself, at most every 5 minutes per environment:
    # tests/integration/test_redrive.py shows it.)


def test_the_tables_have_point_in_time_recovery(runtime: RuntimeProcess) -> None:
    if BACKEND == "dynamodb-local":
        assert "has no point-in-time recovery (UnknownOperationException)" in runtime.log()
        pytest.xfail(
            f"{BACKEND_VERSION} has no point-in-time recovery (UnknownOperationException): jobq warns and runs on"
        )
    dynamodb = aws_client(runtime, "dynamodb")
    for table in (runtime.endpoints["resources"][name] for name in ("JobsTable", "IdempotencyTable")):
        backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED", table
