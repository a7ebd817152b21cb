"""`jobq dlq list` / `jobq dlq redrive` through the API function on moto: failed jobs back to queued,
history kept, DLQ emptied; admins only."""

from __future__ import annotations

from typing import Any

import pytest

from jobq import cli
from tests.support.callers import ADMIN, ALICE
from tests.support.stack import Stack, StackClient


@pytest.fixture(autouse=True)
def cli_as_admin(aws_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_client", lambda args: StackClient(aws_stack, ADMIN))


def _failed_job(stack: Stack, message: str = "broken") -> dict[str, Any]:
    job = stack.submit("fail", {"retryable": False, "message": message})
    stack.drain()
    assert stack.job(job["job_id"])["status"] == "failed"
    return job


def test_list_shows_each_dead_lettered_job_and_leaves_the_messages(aws_stack: Stack, capsys: Any) -> None:
    first = _failed_job(aws_stack, "first")
    second = _failed_job(aws_stack, "second")
    capsys.readouterr()

    assert cli.main(["dlq", "list"]) == 0

    out = capsys.readouterr().out
    assert first["job_id"] in out
    assert second["job_id"] in out
    assert "NonRetryableError: first" in out
    assert "2 message(s)" in out
    assert len(aws_stack.receive(queue_url=aws_stack.dlq_url)) == 2  # put back: still there


def test_redrive_requeues_failed_jobs_keeps_history_and_empties_the_dlq(aws_stack: Stack, capsys: Any) -> None:
    job = _failed_job(aws_stack)

    assert cli.main(["dlq", "redrive"]) == 0

    assert "redriven=1 dropped=0 kept=0" in capsys.readouterr().out
    requeued = aws_stack.job(job["job_id"])
    assert requeued["status"] == "queued"
    assert requeued["attempts"] == 0
    assert [h["message"] for h in requeued["history"]] == ["broken"]
    assert aws_stack.queue_depth(aws_stack.dlq_url) == 0
    aws_stack.drain()
    again = aws_stack.job(job["job_id"])
    assert again["status"] == "failed"
    assert [h["message"] for h in again["history"]] == ["broken", "broken"]


def test_redrive_of_one_job_leaves_the_others(aws_stack: Stack, capsys: Any) -> None:
    chosen = _failed_job(aws_stack, "chosen")
    other = _failed_job(aws_stack, "other")

    assert cli.main(["dlq", "redrive", "--job", chosen["job_id"]]) == 0

    assert aws_stack.job(chosen["job_id"])["status"] == "queued"
    assert aws_stack.job(other["job_id"])["status"] == "failed"
    left = aws_stack.receive(queue_url=aws_stack.dlq_url)
    assert [m.body for m in left] == [f'{{"job_id":"{other["job_id"]}","type":"fail"}}']


def test_stale_messages_are_dropped_and_unreadable_ones_kept(aws_stack: Stack, capsys: Any) -> None:
    job = _failed_job(aws_stack)
    assert aws_stack.api("POST", f"/jobs/{job['job_id']}/retry").status == 202  # retried by the API already
    aws_stack.sqs.send_message(QueueUrl=aws_stack.dlq_url, MessageBody="garbage")

    assert cli.main(["dlq", "redrive"]) == 0

    out = capsys.readouterr().out
    assert "redriven=0 dropped=1 kept=1" in out
    assert "the job is queued" in out
    assert [m.body for m in aws_stack.receive(queue_url=aws_stack.dlq_url)] == ["garbage"]


def test_redrive_of_a_job_not_in_the_dlq_says_so(aws_stack: Stack, capsys: Any) -> None:
    assert cli.main(["dlq", "redrive", "--job", "01JAAAAAAAAAAAAAAAAAAAAAAA"]) == 1
    assert "no message of job" in capsys.readouterr().err


def test_the_dlq_is_for_admins_only(aws_stack: Stack, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _failed_job(aws_stack)
    monkeypatch.setattr(cli, "_client", lambda args: StackClient(aws_stack, ALICE))  # the job's own owner

    assert cli.main(["dlq", "list"]) == 1
    assert "only admins" in capsys.readouterr().err
    assert cli.main(["dlq", "redrive"]) == 1
    assert aws_stack.job(job["job_id"])["status"] == "failed"
    assert aws_stack.queue_depth(aws_stack.dlq_url) == 1
    assert aws_stack.api("GET", "/dlq", caller=ALICE).status == 403
    assert aws_stack.api("POST", "/dlq/redrive", {}, caller=ALICE).body["error"]["code"] == "forbidden"


def test_without_a_target_the_cli_names_the_choices(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real _client
    assert cli.main(["dlq", "list"]) == 2
    assert "--local" in capsys.readouterr().err
