"""The installed `jobq` command against the real local runtime: waiting with progress, exit codes,
cooperative cancel, and the Python client it is built on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobq import Client
from jobq.client import JobNotFound, ValidationFailed, WaitTimeout
from jobq_local.process import RuntimeProcess
from tests.support.deployment import SCENARIO_PARAMETERS, cli_target, client_of, deployment

pytestmark = pytest.mark.e2e

JOBQ = Path(sys.executable).with_name("jobq")
"""The console script the package installs (what the README tells users to run)."""


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeProcess]:
    with deployment(SCENARIO_PARAMETERS) as process:
        yield process


def jobq(runtime: RuntimeProcess, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    target, env = cli_target(runtime)
    return subprocess.run(
        [str(JOBQ), *target, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def client(runtime: RuntimeProcess) -> Client:
    return client_of(runtime)


def test_the_package_installs_the_jobq_command() -> None:
    assert JOBQ.is_file(), f"{JOBQ} missing: the package's console script"
    result = subprocess.run([str(JOBQ), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "submit" in result.stdout
    assert "``" not in result.stdout  # no reST markup


def test_without_a_target_it_names_the_choices() -> None:
    result = subprocess.run(
        [str(JOBQ), "list"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "jobq: which deployment? Say --local (the make run of this directory), --stack NAME (a deployed stack) "
        "or --url URL (or set JOBQ_URL / JOBQ_STACK)"
    )


def test_submit_wait_shows_progress_and_exits_0_on_success(runtime: RuntimeProcess) -> None:
    result = jobq(runtime, "submit", "count", "to=5", "seconds=2.5", "--wait")
    assert result.returncode == 0, result.stderr
    assert "status    succeeded" in result.stdout
    assert 'result    {"counted": 5}' in result.stdout
    assert "progress  [####################] 100% 5/5 counted to 5" in result.stdout
    lines = result.stderr.splitlines()  # not a terminal: one line per change
    assert lines[0].startswith("submitted ")
    assert any("running" in line and "/5 counted to" in line for line in lines), result.stderr
    assert "Traceback" not in result.stderr


def test_submit_wait_exits_1_when_the_job_fails(runtime: RuntimeProcess) -> None:
    result = jobq(runtime, "submit", "fail", "retryable=false", "message=broken", "--wait", "--json")
    assert result.returncode == 1
    job = json.loads(result.stdout)
    assert job["status"] == "failed"
    assert job["error"]["message"] == "broken"


def test_wait_gives_up_with_exit_3(runtime: RuntimeProcess) -> None:
    job_id = jobq(runtime, "submit", "sleep", "seconds=5").stdout.strip()
    result = jobq(runtime, "wait", job_id, "--timeout", "0.5", "--quiet")
    assert result.returncode == 3
    assert result.stderr.strip().startswith(f"jobq: job {job_id} is still ")


@pytest.mark.scenario
def test_cancel_of_a_running_count_job_stops_it_at_its_next_report(runtime: RuntimeProcess, client: Client) -> None:
    job = client.submit("count", {"to": 60, "seconds": 30})
    deadline = time.monotonic() + 20
    while client.get(job.job_id).progress is None:
        assert time.monotonic() < deadline, "the count job never reported progress"
        time.sleep(0.2)
    result = jobq(runtime, "cancel", job.job_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"cancel requested: {job.job_id} is running and stops at its next progress check"
    ended = client.wait(job.job_id, timeout=20)
    assert ended.status.value == "cancelled"
    assert ended.error is not None
    assert ended.error.type == "JobCancelled"
    assert ended.progress is not None
    assert ended.progress.done < 60
    assert ended.attempts == 1  # no retry
    assert jobq(runtime, "wait", ended.job_id, "--quiet").returncode == 1


@pytest.mark.scenario
def test_the_client_submits_waits_and_reports_progress(client: Client) -> None:
    seen: list[float] = []
    jobs = client.submit_many([{"type": "echo", "payload": {"n": 1}}, {"type": "count", "payload": {"to": 3}}])
    done = [client.wait(job.job_id, timeout=30) for job in jobs]
    assert [job.status.value for job in done] == ["succeeded", "succeeded"]
    counted = client.submit("count", {"to": 4, "seconds": 3})
    final = client.wait(
        counted.job_id, timeout=30, on_progress=lambda job: seen.append(job.progress.done if job.progress else 0)
    )
    assert final.result == {"counted": 4}
    assert seen == sorted(seen)
    assert seen[-1] == 4
    assert {t.type for t in client.types()} >= {"echo", "sleep", "fail", "count"}
    assert [job.job_id for job in client.iter_jobs(type="count")][:1] == [counted.job_id]


def test_the_client_raises_typed_errors(client: Client) -> None:
    with pytest.raises(JobNotFound) as missing:
        client.get("01JAAAAAAAAAAAAAAAAAAAAAAA")
    assert (missing.value.status, missing.value.code) == (404, "job_not_found")
    with pytest.raises(ValidationFailed) as invalid:
        client.submit("sleep", {"seconds": -1})
    assert invalid.value.code == "invalid_payload"
    assert invalid.value.details[0]["loc"] == ["seconds"]
    slow = client.submit("sleep", {"seconds": 3})
    with pytest.raises(WaitTimeout) as waited:
        client.wait(slow.job_id, timeout=0.3)
    assert waited.value.job.job_id == slow.job_id
