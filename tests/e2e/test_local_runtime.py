"""The local runtime (`make run`) in a subprocess, driven over HTTP only."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from jobq.adapters.dynamodb import list_shard
from jobq_local.process import RuntimeProcess, free_port
from jobq_local.template import REPO_ROOT, load_document
from tests.support.backend import BACKEND, BACKEND_VERSION, aws_client
from tests.support.deployment import SCENARIO_PARAMETERS, cli_target, deployment, requires_local

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeProcess]:
    # Backoff shortened by configuration (template parameters); the defaults stay 5 s / 600 s / 5 attempts.
    with deployment(SCENARIO_PARAMETERS) as process:
        yield process
    if isinstance(process, RuntimeProcess):
        assert process.process is not None
        assert process.process.returncode == 0, process.log()


def submit(runtime: RuntimeProcess, job_type: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    status, body = runtime.request("POST", "/jobs", {"type": job_type, "payload": payload, **fields})
    assert status == 202, body
    return dict(body)


@pytest.mark.scenario
def test_echo_reaches_succeeded(runtime: RuntimeProcess) -> None:
    job = submit(runtime, "echo", {"hello": "world"})
    done = runtime.wait_for(job["job_id"])
    assert done["status"] == "succeeded"
    assert done["result"] == {"hello": "world"}


@pytest.mark.scenario
def test_fail_once_succeeds_on_attempt_two(runtime: RuntimeProcess) -> None:
    job = submit(runtime, "fail", {"times": 1})
    done = runtime.wait_for(job["job_id"])
    assert done["status"] == "succeeded"
    assert done["attempts"] == 2
    assert done["result"] == {"attempts": 2}
    assert [entry["attempt"] for entry in done["history"]] == [1]


@pytest.mark.scenario
def test_always_failing_job_ends_failed_with_its_message_in_the_dlq(runtime: RuntimeProcess) -> None:
    job = submit(runtime, "fail", {"message": "never works"})
    done = runtime.wait_for(job["job_id"])
    assert done["status"] == "failed"
    assert done["attempts"] == 3
    assert done["error"]["message"] == "never works"
    sqs = aws_client(runtime, "sqs")
    dlq_url = sqs.get_queue_url(QueueName=runtime.endpoints["resources"]["JobsDeadLetterQueue"].rsplit("/", 1)[-1])
    bodies: list[str] = []
    deadline = time.monotonic() + 15
    while job["job_id"] not in "".join(bodies) and time.monotonic() < deadline:
        # The redrive happens on the receive after the last one, which the poller makes within its long poll.
        messages = sqs.receive_message(QueueUrl=dlq_url["QueueUrl"], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        bodies += [m["Body"] for m in messages.get("Messages", [])]
    assert any(job["job_id"] in body for body in bodies), bodies


@pytest.mark.scenario
def test_non_retryable_failure_fails_after_one_attempt(runtime: RuntimeProcess) -> None:
    job = submit(runtime, "fail", {"retryable": False, "message": "no point retrying"})
    done = runtime.wait_for(job["job_id"])
    assert done["status"] == "failed"
    assert done["attempts"] == 1
    assert done["error"] == {"type": "NonRetryableError", "message": "no point retrying", "retryable": False}


@pytest.mark.scenario
def test_cancel_a_delayed_job(runtime: RuntimeProcess) -> None:
    job = submit(runtime, "echo", {"later": True}, delay_seconds=2)
    status, cancelled = runtime.request("POST", f"/jobs/{job['job_id']}/cancel")
    assert status == 200
    assert cancelled["status"] == "cancelled"
    time.sleep(3)  # the delayed message arrives, the worker skips the cancelled job
    status, after = runtime.request("GET", f"/jobs/{job['job_id']}")
    assert after["status"] == "cancelled"
    assert after["attempts"] == 0
    status, again = runtime.request("POST", f"/jobs/{job['job_id']}/cancel")
    assert status == 409
    assert again["error"]["code"] == "invalid_state"


@pytest.mark.scenario
def test_listing_and_paging(runtime: RuntimeProcess) -> None:
    ids = [submit(runtime, "sleep", {"seconds": 0})["job_id"] for _ in range(7)]
    for job_id in ids:
        runtime.wait_for(job_id)
    seen: list[str] = []
    cursor = None
    while True:
        query = "?type=sleep&limit=3" + (f"&cursor={cursor}" if cursor else "")
        status, page = runtime.request("GET", "/jobs" + query)
        assert status == 200
        assert len(page["items"]) <= 3
        seen += [item["job_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)
    status, succeeded = runtime.request("GET", "/jobs?status=succeeded&type=sleep&limit=100")
    assert {item["job_id"] for item in succeeded["items"]} >= set(ids)
    status, error = runtime.request("GET", "/jobs?limit=0")
    assert status == 400
    assert error["error"]["code"] == "invalid_query"


@pytest.mark.scenario
def test_fifty_concurrent_submissions_all_complete(runtime: RuntimeProcess) -> None:
    with ThreadPoolExecutor(max_workers=10) as pool:
        jobs = list(pool.map(lambda i: submit(runtime, "echo", {"i": i}), range(50)))
        done = list(pool.map(lambda job: runtime.wait_for(job["job_id"]), jobs))
    assert len({job["job_id"] for job in jobs}) == 50
    assert [d["status"] for d in done] == ["succeeded"] * 50
    assert sorted(d["result"]["i"] for d in done) == list(range(50))


def test_busy_port_gives_a_one_line_error(runtime: RuntimeProcess) -> None:
    port = runtime.api_url.rsplit(":", 1)[-1]
    result = subprocess.run(
        [sys.executable, "-m", "jobq_local", "--port", port], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"port {port}" in lines[0]
    assert "--port" in lines[0]


def test_ctrl_c_stops_everything_cleanly() -> None:
    process = RuntimeProcess().start()
    folder = process.ready_file.parent
    assert sorted(path.name for path in folder.iterdir()) == ["ready.json", "runtime.log", "state.json"]
    assert process.stop(timeout=20) == 0
    assert not folder.exists()  # nothing left in the temporary directory; the log and the counts stay readable
    assert "stopped" in process.log()
    assert process.stats()["requests"] is not None


def test_a_runtime_whose_port_was_taken_before_it_bound_it_starts_again_on_fresh_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jobq_local import process as process_module

    chosen: list[list[int]] = []
    free_ports = process_module.free_ports
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = int(squatter.getsockname()[1])

        def taken_the_first_time(count: int) -> list[int]:
            ports = free_ports(count)
            chosen.append([taken, *ports[1:]] if not chosen else ports)
            return chosen[-1]

        monkeypatch.setattr(process_module, "free_ports", taken_the_first_time)
        with RuntimeProcess() as runtime:
            assert runtime.request("GET", "/types")[0] == 200
    assert len(chosen) == 2
    assert chosen[0][0] == taken
    assert runtime.api_url.endswith(f":{chosen[1][0]}")


def test_a_runtime_whose_start_fails_after_it_was_spawned_is_stopped_not_orphaned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[RuntimeProcess] = []
    wait_until_ready = RuntimeProcess._wait_until_ready

    def ready_then_unreadable(self: RuntimeProcess) -> None:
        started.append(self)
        wait_until_ready(self)
        raise ValueError("as a half-written ready file would fail json.loads")

    monkeypatch.setattr(RuntimeProcess, "_wait_until_ready", ready_then_unreadable)
    with pytest.raises(ValueError, match="half-written"), RuntimeProcess():
        pass
    (process,) = started
    assert process.process is not None
    assert process.process.poll() is not None  # stopped, though __exit__ never ran
    assert not process.ready_file.parent.exists()


def test_runs_against_an_existing_endpoint_and_provisions_there() -> None:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_for_port(port)
        with RuntimeProcess(environment={"AWS_ENDPOINT_URL": endpoint}, startup_timeout=60) as runtime:
            assert runtime.emulator_url == endpoint
            job = submit(runtime, "echo", {"where": "outside"})
            assert runtime.wait_for(job["job_id"])["status"] == "succeeded"
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert runtime.endpoints["resources"]["JobsTable"] in dynamodb.list_tables()["TableNames"]
        shards = int(load_document()["Globals"]["Function"]["Environment"]["Variables"]["JOBQ_LIST_SHARDS"])
        key = {"list_shard": {"S": list_shard(job["job_id"], shards)}, "job_id": {"S": job["job_id"]}}
        item = dynamodb.get_item(TableName=runtime.endpoints["resources"]["JobsTable"], Key=key)
        assert item["Item"]["status"] == {"S": "succeeded"}
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_per_service_endpoints_serve_provisioning_and_the_functions_alike() -> None:
    """AWS_ENDPOINT_URL for SQS (and STS), AWS_ENDPOINT_URL_DYNAMODB for the tables: everything of each service,
    provisioning, the event source and the functions, lands on its own endpoint."""
    servers, urls = [], []
    for _ in range(2):
        port = free_port()
        servers.append(
            subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    general, tables = urls
    try:
        for url in urls:
            _wait_for_port(int(url.rsplit(":", 1)[1]))
        environment = {"AWS_ENDPOINT_URL": general, "AWS_ENDPOINT_URL_DYNAMODB": tables}
        with RuntimeProcess(environment=environment, startup_timeout=60) as runtime:
            assert (runtime.endpoint("sqs"), runtime.endpoint("dynamodb")) == (general, tables)
            job = submit(runtime, "echo", {"where": "two endpoints"})
            assert runtime.wait_for(job["job_id"])["status"] == "succeeded"
            resources = runtime.endpoints["resources"]
        session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
        assert resources["JobsTable"] in session.client("dynamodb", endpoint_url=tables).list_tables()["TableNames"]
        assert session.client("dynamodb", endpoint_url=general).list_tables()["TableNames"] == []
        queues = session.client("sqs", endpoint_url=general).list_queues().get("QueueUrls", [])
        assert any(url.endswith(resources["JobsQueue"].rsplit("/", 1)[-1]) for url in queues)
        assert session.client("sqs", endpoint_url=tables).list_queues().get("QueueUrls", []) == []
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


def _wait_for_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


@pytest.mark.scenario
def test_jobq_cli_lists_and_redrives_the_local_dlq(runtime: RuntimeProcess) -> None:
    job = submit(runtime, "fail", {"retryable": False, "message": "redrive me"})
    assert runtime.wait_for(job["job_id"])["status"] == "failed"
    target, env = cli_target(runtime)

    def jobq(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "jobq.cli", *target, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert job["job_id"] in jobq("dlq", "list")
    assert "redriven=1" in jobq("dlq", "redrive", "--job", job["job_id"])
    again = runtime.wait_for(job["job_id"])  # runs again and fails again: same payload
    assert again["status"] == "failed"
    assert [h["message"] for h in again["history"]] == ["redrive me", "redrive me"]


@pytest.mark.scenario
def test_the_banner_names_the_emulator_and_on_localstack_the_awslocal_commands(runtime: RuntimeProcess) -> None:
    requires_local(runtime, "the banner of jobq-local")
    banner = runtime.log()
    resources = runtime.endpoints["resources"]
    if BACKEND == "moto":
        assert "jobq is running locally (embedded AWS emulator: moto)" in banner
    elif BACKEND != "localstack":
        assert f"jobq is running locally against {BACKEND_VERSION.split(' (')[0].split(' SQS')[0]}" in banner
    if BACKEND not in {"localstack", "dynamodb-local"}:
        assert "awslocal sqs" not in banner
        return
    assert "jobq is running locally against LocalStack 4.7.0" in banner
    commands = [line.strip() for line in banner.splitlines() if line.startswith("    awslocal ")]
    assert commands[0] == "awslocal sqs list-queues"
    # the table is LocalStack's only when DynamoDB is (not with DynamoDB Local on an endpoint of its own)
    assert any(f"--table-name {resources['JobsTable']}" in command for command in commands) is (BACKEND == "localstack")
    awslocal = REPO_ROOT / ".venv-localstack" / "bin" / "awslocal"  # LocalStack's CLI, from its own virtualenv
    shown = subprocess.run(
        [str(awslocal), *commands[0].split()[1:]],
        capture_output=True,
        text=True,
        env={"PATH": f"{awslocal.parent}:/usr/bin:/bin", "DISABLE_DEPRECATION_NOTICE": "1"}
        | {k: v for k, v in os.environ.items() if k.startswith(("AWS_ENDPOINT_URL", "LOCALSTACK_HOST"))}
        | {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"},
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert resources["JobsQueue"].rsplit("/", 1)[-1] in shown.stdout


def test_each_log_line_names_the_function_that_wrote_it(runtime: RuntimeProcess) -> None:
    job = submit(runtime, "echo", {"log": "me"})
    assert runtime.wait_for(job["job_id"])["status"] == "succeeded"
    written: dict[str, str] = {}
    for line in runtime.log().splitlines():
        if line.startswith("{") and job["job_id"] in line:
            record = json.loads(line)
            written[record["message"]] = record.get("function_name", "")
    assert written["job submitted"] == "ApiFunction"
    assert written["job started"] == "WorkerFunction"
    assert written["job succeeded"] == "WorkerFunction"
