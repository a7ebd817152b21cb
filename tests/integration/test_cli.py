"""The `jobq` command line over the real client and API function (on moto): output, --json, exit codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobq import cli
from tests.support.callers import ALICE, BOB
from tests.support.stack import Stack, StackClient

Capture = Any


@pytest.fixture(autouse=True)
def cli_as_alice(aws_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_client", lambda args: StackClient(aws_stack, ALICE))


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``jobq ARGV`` (without the in-process functions' JSON log and metric lines)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    out = "".join(line for line in out.splitlines(keepends=True) if not line.startswith('{"'))
    return code, out, err


def test_submit_prints_the_job_id_and_get_shows_the_job(aws_stack: Stack, capsys: Capture) -> None:
    code, out, _ = run(capsys, "submit", "echo", "--payload", '{"greeting": "hi"}', "n=3", "flag=true", "word=plain")
    assert code == 0
    job_id = out.strip()
    assert aws_stack.job(job_id)["payload"] == {"greeting": "hi", "n": 3, "flag": True, "word": "plain"}
    aws_stack.drain()
    code, out, _ = run(capsys, "get", job_id)
    assert code == 0
    assert f"job       {job_id}" in out
    assert "status    succeeded" in out
    assert 'result    {"greeting": "hi", "n": 3, "flag": true, "word": "plain"}' in out
    code, out, _ = run(capsys, "get", job_id, "--json")
    assert json.loads(out)["result"]["n"] == 3


def test_payload_from_a_file_and_an_idempotency_key(aws_stack: Stack, capsys: Capture, tmp_path: Any) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"seconds": 0}')
    first = run(capsys, "submit", "sleep", "--payload", f"@{payload}", "--key", "order-7")[1].strip()
    again = run(capsys, "submit", "sleep", "--payload", f"@{payload}", "--key", "order-7")[1].strip()
    assert first == again
    assert aws_stack.job(first)["payload"] == {"seconds": 0}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "echo", "--payload", "{not json"], "--payload is not JSON"),
        (["submit", "echo", "--payload", "[1]"], "--payload must be a JSON object"),
        (["submit", "echo", "--payload", "@/nonexistent/file.json"], "No such file"),
        (["submit", "echo", "novalue"], "payload fields are NAME=VALUE"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys: Capture, argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err + out


def test_api_refusals_exit_1_with_the_message_and_details(capsys: Capture) -> None:
    code, _, err = run(capsys, "submit", "nosuchtype")
    assert code == 1
    assert err.startswith("jobq: unknown job type 'nosuchtype'; known types: ")
    assert "(unknown_job_type)" in err
    code, _, err = run(capsys, "submit", "sleep", "seconds=999")
    assert code == 1
    assert "(invalid_payload)" in err
    assert '"loc": ["seconds"]' in err
    code, _, err = run(capsys, "get", "01JAAAAAAAAAAAAAAAAAAAAAAA")
    assert (code, err.strip()) == (1, "jobq: no job with id '01JAAAAAAAAAAAAAAAAAAAAAAA' (job_not_found)")
    assert "Traceback" not in err


def test_list_shows_a_table_filters_and_pages(aws_stack: Stack, capsys: Capture) -> None:
    ids = [run(capsys, "submit", "echo", f"n={n}")[1].strip() for n in range(3)]
    failed = run(capsys, "submit", "fail", "retryable=false")[1].strip()
    aws_stack.drain()
    code, out, _ = run(capsys, "list")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["JOB", "ID", "TYPE", "STATUS", "ATTEMPTS", "CREATED", "(UTC)", "NOTE"]
    assert [line.split()[0] for line in lines[1:]] == [failed, *reversed(ids)]  # newest first
    assert "RequestedFailureError" not in out  # non-retryable failures say NonRetryableError
    assert "NonRetryableError: failed on purpose" in out
    _, out, _ = run(capsys, "list", "--status", "failed", "--json")
    assert [job["job_id"] for job in json.loads(out)["items"]] == [failed]
    _, out, _ = run(capsys, "list", "--limit", "2")
    assert "more with --cursor " in out
    cursor = out.rsplit("--cursor ", 1)[1].split()[0]
    _, rest, _ = run(capsys, "list", "--limit", "2", "--cursor", cursor)
    assert [line.split()[0] for line in rest.splitlines()[1:]] == list(reversed(ids))[1:]
    _, everything, _ = run(capsys, "list", "--all", "--json")
    assert len(json.loads(everything)["items"]) == 4


def test_list_of_nothing_says_so(capsys: Capture) -> None:
    assert run(capsys, "list")[:2] == (0, "no jobs\n")


def test_cancel_and_retry(aws_stack: Stack, capsys: Capture) -> None:
    job_id = run(capsys, "submit", "echo", "--delay", "600")[1].strip()
    assert run(capsys, "cancel", job_id)[:2] == (0, f"cancelled {job_id}\n")
    code, _, err = run(capsys, "cancel", job_id)
    assert code == 1
    assert "(invalid_state)" in err
    code, out, _ = run(capsys, "retry", job_id)
    assert (code, out) == (0, f"queued again: {job_id} (0 failed attempt(s) kept in its history)\n")
    assert aws_stack.job(job_id)["status"] == "queued"


def test_types_lists_every_registered_type_with_its_fields(capsys: Capture) -> None:
    from jobq.jobs import build_registry

    code, out, _ = run(capsys, "types")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert sorted(rows) == build_registry().names
    assert "seconds: number" in rows["sleep"]
    assert "{any JSON object}" in rows["echo"]
    assert "times: integer = -1" in rows["fail"]
    _, out, _ = run(capsys, "types", "--json")
    assert {item["type"] for item in json.loads(out)} == set(build_registry().names)


def test_another_callers_job_does_not_exist_for_this_one(
    aws_stack: Stack, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = run(capsys, "submit", "echo")[1].strip()
    monkeypatch.setattr(cli, "_client", lambda args: StackClient(aws_stack, BOB))
    code, _, err = run(capsys, "get", job_id)
    assert code == 1
    assert "(job_not_found)" in err


def test_submit_many_reads_json_lines_or_an_array_and_submits_in_batches(
    aws_stack: Stack, capsys: Capture, tmp_path: Any
) -> None:
    lines = tmp_path / "jobs.jsonl"
    lines.write_text("\n".join(json.dumps({"type": "echo", "payload": {"n": n}}) for n in range(30)) + "\n")
    code, out, _ = run(capsys, "submit-many", str(lines), "--key", "nightly")
    ids = out.split()
    assert (code, len(ids)) == (0, 30)
    assert [aws_stack.job(job_id)["payload"] for job_id in ids] == [{"n": n} for n in range(30)]
    assert run(capsys, "submit-many", str(lines), "--key", "nightly")[1].split() == ids  # nothing new
    array = tmp_path / "jobs.json"
    array.write_text(json.dumps([{"type": "sleep", "payload": {"seconds": 0}}, {"type": "nosuch"}]))
    code, _, err = run(capsys, "submit-many", str(array))
    assert code == 1
    assert "(invalid_batch)" in err
    assert '"index": 1' in err
    assert run(capsys, "submit-many", str(tmp_path / "missing.json"))[0] == 2
