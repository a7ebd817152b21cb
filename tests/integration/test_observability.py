"""Logs carry job_id/job_type on every line of a job; lifecycle events and metrics are emitted."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from typing import Any

from tests.support.stack import Stack


def _capture_jobq_logs() -> io.StringIO:
    from jobq.observability import get_logger

    get_logger()  # Powertools configures the "jobq" logger's handler once per process
    stream = io.StringIO()
    for handler in logging.getLogger("jobq").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(stream)
    return stream


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_every_log_line_of_a_job_carries_job_id_and_type(aws_stack: Stack, capsys: Any) -> None:
    stream = _capture_jobq_logs()
    job = aws_stack.submit("fail", {"times": 1})
    aws_stack.drain()
    assert aws_stack.job(job["job_id"])["status"] == "succeeded"

    lines = _lines(stream)
    messages = [line["message"] for line in lines]
    for event in ("job submitted", "job started", "job retry scheduled", "job succeeded"):
        assert event in messages
    job_lines = [line for line in lines if line.get("function_name") == "WorkerFunction"]
    assert job_lines
    for line in job_lines:
        assert line["job_id"] == job["job_id"], line
        assert line["job_type"] == "fail", line
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    names = {m["Name"] for blob in metrics for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {"JobsSubmitted", "JobsRetried", "JobsSucceeded", "JobDuration"} <= names


def test_failed_and_dead_lettered_are_logged(aws_stack: Stack) -> None:
    stream = _capture_jobq_logs()
    job = aws_stack.submit("fail", {"retryable": False})
    aws_stack.drain()
    lines = [line for line in _lines(stream) if line.get("job_id") == job["job_id"]]
    messages = [line["message"] for line in lines]
    assert "job failed" in messages
    assert "job dead-lettered" in messages


def test_importing_the_handlers_does_not_import_the_tracer() -> None:
    code = (
        "import sys, jobq.handlers.api, jobq.handlers.worker\n"
        "bad = [m for m in sys.modules if m.startswith(('aws_xray_sdk', 'boto3', 'botocore'))]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "aws_xray_sdk" not in result.stdout


def test_tracer_wraps_the_handler_only_when_enabled(monkeypatch: Any) -> None:
    from jobq.observability import traced

    def handler(event: Any, context: Any) -> str:
        return "ok"

    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert traced(handler) is handler
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "WorkerFunction")
    wrapped = traced(handler)
    assert wrapped is not handler
