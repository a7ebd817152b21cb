"""The CLI's progress line and tables, without a deployment."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

from jobq.domain.documents import JobDocument
from jobq.domain.models import JobStatus, Progress
from jobq.terminal import ProgressBar, job_row, schema_summary

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def document(status: JobStatus, progress: Progress | None = None, **fields: Any) -> JobDocument:
    return JobDocument(
        job_id="01JAAAAAAAAAAAAAAAAAAAAAAA",
        type="count",
        owner="alice",
        status=status,
        payload={},
        attempts=1,
        max_attempts=3,
        created_at=T0,
        updated_at=T0,
        status_url="/jobs/01JAAAAAAAAAAAAAAAAAAAAAAA",
        progress=progress,
        **fields,
    )


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_rewritten_in_place() -> None:
    stream, ticks = Terminal(), iter([0.0, 0.5, 1.5, 2.0])
    bar = ProgressBar(stream, clock=lambda: next(ticks))
    bar.update(document(JobStatus.RUNNING, Progress(done=1, total=4, updated_at=T0)))
    bar.update(document(JobStatus.SUCCEEDED, Progress(done=4, total=4, message="done", updated_at=T0)))
    bar.close()
    frames = stream.getvalue().split("\r")[1:]
    assert frames[0] == "01JAAAAAAAAAAAAAAAAAAAAAAA  running    [#####               ]  25% 1/4    0.5s\x1b[K"
    assert frames[1] == "01JAAAAAAAAAAAAAAAAAAAAAAA  succeeded  [####################] 100% 4/4 done    1.5s\x1b[K\n"


def test_into_a_pipe_a_line_per_change_and_elapsed_time_without_progress() -> None:
    stream, ticks = io.StringIO(), iter([0.0, 1.0, 2.0, 3.0])
    bar = ProgressBar(stream, clock=lambda: next(ticks))
    bar.update(document(JobStatus.QUEUED))
    bar.update(document(JobStatus.QUEUED))  # nothing changed: no line
    bar.update(document(JobStatus.RUNNING, Progress(done=7, updated_at=T0)))  # no total: the count alone
    bar.close()
    assert stream.getvalue().splitlines() == [
        "01JAAAAAAAAAAAAAAAAAAAAAAA  queued     1.0s",
        "01JAAAAAAAAAAAAAAAAAAAAAAA  running    7  3.0s",
    ]


def test_a_list_row_shows_progress_while_running_and_the_error_once_failed() -> None:
    running = job_row(document(JobStatus.RUNNING, Progress(done=1, total=2, message="half", updated_at=T0)))
    assert running.endswith("[#####     ]  50% 1/2 half")
    from jobq.domain.models import JobError

    failed = job_row(document(JobStatus.FAILED, error=JobError(type="ValueError", message="bad", retryable=True)))
    assert failed.endswith("ValueError: bad")


def test_schema_summaries_name_types_and_defaults() -> None:
    schema = {
        "properties": {
            "to": {"type": "integer"},
            "label": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        },
        "required": ["to"],
        "additionalProperties": False,
    }
    assert schema_summary(schema) == "to: integer, label: string/null = null"
    assert schema_summary({"additionalProperties": True}) == "{any JSON object}"
