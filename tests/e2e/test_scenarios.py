"""Scenarios every backend runs that the other e2e files leave out: the sweeper's recovery of a job whose
worker died, one dead letter per failed job after an API retry, the tables' point-in-time recovery."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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


def test_a_batchs_first_attempts_are_claimed_with_each_condition_checked(runtime: RuntimeProcess) -> None:
    """The worker's PartiQL claim (``claim_fresh``) on this backend's own DynamoDB, against the domain's rule,
    on a table of JobsTable's key schema: only jobs queued, due and never attempted are claimed."""
    requires_local(runtime, "a scratch table on the backend")
    from jobq.adapters.dynamodb import DynamoDBJobRepository
    from jobq.adapters.dynamodb.table import JobsTable
    from jobq.domain.models import Job, JobStatus, new_job_id
    from jobq.domain.ports import Claim
    from jobq_local.template import Template

    properties = Template().properties("JobsTable")
    dynamodb = aws_client(runtime, "dynamodb")
    name = f"claim-contract-{uuid.uuid4().hex[:8]}"
    key_names = {key["AttributeName"] for key in properties["KeySchema"]}
    dynamodb.create_table(
        TableName=name,
        KeySchema=properties["KeySchema"],
        AttributeDefinitions=[a for a in properties["AttributeDefinitions"] if a["AttributeName"] in key_names],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        dynamodb.get_waiter("table_exists").wait(TableName=name)
        repository = DynamoDBJobRepository(JobsTable(dynamodb, name, shards=4), ttl_days=1)
        now = datetime.now(UTC).replace(microsecond=0)
        later = now + timedelta(seconds=60)
        states = [
            (status, attempts, due, max_attempts)
            for status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED)
            for attempts in (0, 1)
            for due in (now - timedelta(seconds=5), later)
            for max_attempts in (1, 3)
        ]
        jobs = []
        for n, (status, attempts, due, max_attempts) in enumerate(states):
            job = Job(
                job_id=new_job_id(now + timedelta(milliseconds=n)),
                type="echo",
                owner="scenario",
                status=status,
                payload={"n": n},
                attempts=attempts,
                max_attempts=max_attempts,
                created_at=now,
                updated_at=now,
                available_at=due,
                lease_id="old" if status is JobStatus.RUNNING else None,
                lease_expires_at=now - timedelta(seconds=1) if status is JobStatus.RUNNING else None,
            )
            repository.insert(job)
            jobs.append(job)
        missing = new_job_id(later)
        claims = [Claim(job.job_id, f"lease-{n}", later) for n, job in enumerate(jobs)] + [Claim(missing, "x", later)]
        answers = repository.claim_fresh(claims, now=now)
        expected = [
            job.status is JobStatus.QUEUED and job.attempts == 0 and job.max_attempts > 1 and job.available_at <= now
            for job in jobs
        ]
        assert [answer is not None for answer in answers] == [*expected, False]
        for n, (job, answer, claimed) in enumerate(zip(jobs, answers, expected, strict=False)):
            stored = repository.get(job.job_id)
            if claimed:
                assert answer is not None
                assert (answer.status, answer.attempts, answer.lease_id) == (JobStatus.RUNNING, 1, f"lease-{n}")
                assert (answer.lease_expires_at, answer.started_at, answer.payload) == (later, now, {"n": n})
                assert stored == answer
            else:
                assert stored == job
        assert repository.get(missing) is None
        # Sent again (as botocore resends a request whose answer was lost): each claim that applied is its own.
        again = repository.claim_fresh(claims, now=now)
        assert again == answers
    finally:
        dynamodb.delete_table(TableName=name)
