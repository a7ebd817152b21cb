"""The dashboard's pages over an in-memory stand-in of jobq.Client: rendering, escaping, forms, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from jobq.client import JobNotFound, Unauthorized, ValidationFailed
from jobq.dashboard import Dashboard, form_payload
from jobq.domain.documents import (
    DeadLetterDocument,
    DeadLetterPageDocument,
    JobDocument,
    JobPageDocument,
    JobTypeDocument,
    RedriveDocument,
)
from jobq.domain.models import JobError, JobStatus, Progress
from jobq.jobs import build_registry

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOSTILE = "<script>alert('x')</script>"


def a_job(n: int = 1, status: JobStatus = JobStatus.QUEUED, **fields: Any) -> JobDocument:
    job_id = f"01JAAAAAAAAAAAAAAAAAAAAA{n:02d}"
    defaults: dict[str, Any] = {
        "job_id": job_id,
        "type": "echo",
        "owner": "alice",
        "status": status,
        "payload": {},
        "attempts": 0,
        "max_attempts": 3,
        "created_at": T0,
        "updated_at": T0,
        "status_url": f"/jobs/{job_id}",
    }
    return JobDocument(**(defaults | fields))


class FakeClient:
    """What the dashboard calls, answering from a dict of jobs; records submits and actions."""

    url = "http://api.test"

    def __init__(self, *jobs: JobDocument) -> None:
        self.jobs = {job.job_id: job for job in jobs}
        self.submitted: list[tuple[str, dict[str, Any], str | None, int]] = []
        self.actions: list[str] = []
        self.letters: list[DeadLetterDocument] = []
        self.admin = True

    def list_jobs(self, *, status: str | None = None, type: str | None = None, limit: int = 20, cursor: Any = None):
        items = [j for j in self.jobs.values() if status in {None, j.status.value} and type in {None, j.type}]
        start = int(cursor or 0)
        more = start + limit < len(items)
        return JobPageDocument(items=items[start : start + limit], next_cursor=str(start + limit) if more else None)

    def get(self, job_id: str) -> JobDocument:
        if job_id not in self.jobs:
            raise JobNotFound(404, "job_not_found", f"no job with id {job_id!r}")
        return self.jobs[job_id]

    def types(self) -> list[JobTypeDocument]:
        registry = build_registry()
        return [
            JobTypeDocument(
                type=name,
                payload_schema=registry.require(name).model.model_json_schema(),
                timeout_seconds=30,
                max_attempts=3,
            )
            for name in registry.names
        ]

    def submit(self, job_type: str, payload: dict[str, Any], *, idempotency_key: Any, delay_seconds: int):
        if job_type == "sleep" and payload.get("seconds", 0) > 60:
            details = [{"loc": ["seconds"], "type": "less_than_equal", "msg": "Input should be <= 60"}]
            raise ValidationFailed(422, "invalid_payload", "payload is not valid for job type 'sleep'", details)
        self.submitted.append((job_type, payload, idempotency_key, delay_seconds))
        job = a_job(len(self.jobs) + 1, type=job_type, payload=payload)
        self.jobs[job.job_id] = job
        return job

    def cancel(self, job_id: str) -> JobDocument:
        self.actions.append(f"cancel {job_id}")
        return self.get(job_id)

    def retry(self, job_id: str) -> JobDocument:
        self.actions.append(f"retry {job_id}")
        return self.get(job_id)

    def dead_letters(self) -> DeadLetterPageDocument:
        if not self.admin:
            raise Unauthorized(403, "forbidden", "only admins may use the dead-letter queue")
        return DeadLetterPageDocument(items=self.letters, more=False)

    def redrive(self, job_id: str | None = None) -> RedriveDocument:
        self.actions.append(f"redrive {job_id}")
        moved = [letter.job.job_id for letter in self.letters if letter.job and job_id in {None, letter.job.job_id}]
        self.letters = [letter for letter in self.letters if not letter.job or letter.job.job_id not in moved]
        return RedriveDocument(redriven=moved, dropped=[], kept=[], more=False)


def dashboard(*jobs: JobDocument) -> tuple[Dashboard, FakeClient]:
    client = FakeClient(*jobs)
    return Dashboard(client, refresh_seconds=2), client  # type: ignore[arg-type]


def test_the_jobs_page_lists_counts_and_escapes_what_callers_sent() -> None:
    running = a_job(
        2, JobStatus.RUNNING, type="count", progress=Progress(done=3, total=4, message=HOSTILE, updated_at=T0)
    )
    failed = a_job(3, JobStatus.FAILED, error=JobError(type="ValueError", message=HOSTILE, retryable=False))
    board, _ = dashboard(a_job(1), running, failed)
    page = board.route("GET", "/", {}, {})
    assert page.status == 200
    assert HOSTILE not in page.body
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page.body
    assert 'data-status="failed"><b>1</b>' in page.body
    assert 'data-status="succeeded"><b>0</b>' in page.body
    assert 'style="width:75.0%"' in page.body  # the running job's bar
    assert '<meta http-equiv="refresh" content="2">' in page.body
    assert '<meta http-equiv="refresh"' not in board.route("GET", "/", {"refresh": "0"}, {}).body


def test_paging_links_carry_the_cursor_and_filters() -> None:
    board, _ = dashboard(*(a_job(n) for n in range(1, 31)))
    first = board.route("GET", "/", {"status": "queued"}, {})
    assert 'href="/?status=queued&amp;type=&amp;cursor=25"' in first.body
    second = board.route("GET", "/", {"status": "queued", "cursor": "25"}, {})
    assert second.body.count("<tr data-job=") == 5
    assert "First page" in second.body
    assert board.route("GET", "/", {"status": "nonsense"}, {}).status == 400


def test_a_job_page_shows_everything_and_the_buttons_its_status_allows() -> None:
    failed = a_job(
        1,
        JobStatus.FAILED,
        payload={"p": 1},
        error=JobError(type="ValueError", message="bad", retryable=False),
        history=[{"type": "ValueError", "message": "bad", "retryable": False, "attempt": 1, "at": T0}],
    )
    board, _ = dashboard(failed, a_job(2, JobStatus.SUCCEEDED, result={"r": 2}))
    page = board.route("GET", f"/jobs/{failed.job_id}", {}, {})
    assert 'id="retry"' in page.body
    assert 'id="cancel"' not in page.body
    assert "<b>ValueError</b>: bad (final)" in page.body
    assert 'id="history"' in page.body
    assert '<meta http-equiv="refresh"' not in page.body  # terminal: nothing will change
    done = board.route("GET", "/jobs/01JAAAAAAAAAAAAAAAAAAAAA02", {}, {})
    assert "&quot;r&quot;: 2" in done.body
    assert 'id="retry"' not in done.body


def test_actions_redirect_back_to_the_job_and_missing_jobs_are_404_pages() -> None:
    board, client = dashboard(a_job(1))
    answer = board.route("POST", "/jobs/01JAAAAAAAAAAAAAAAAAAAAA01/cancel", {}, {})
    assert (answer.status, answer.location) == (303, "/jobs/01JAAAAAAAAAAAAAAAAAAAAA01")
    assert client.actions == ["cancel 01JAAAAAAAAAAAAAAAAAAAAA01"]
    missing = board.route("GET", "/jobs/01JBBBBBBBBBBBBBBBBBBBBBBB", {}, {})
    assert missing.status == 404
    assert "no job with id" in missing.body
    assert board.route("GET", "/nowhere", {}, {}).status == 404


def test_the_submit_form_is_built_from_the_type_schemas() -> None:
    board, _ = dashboard()
    body = board.route("GET", "/submit", {}, {}).body
    assert '<fieldset data-type="sleep">' in body
    assert 'name="sleep.seconds"' in body
    assert 'type="number" step="any" name="sleep.seconds"' in body
    assert '<input type="checkbox" name="fail.retryable" checked>' in body
    assert 'name="echo.__json__"' in body  # echo takes any object
    assert 'name="sleep.__json__"' not in body


def test_submitting_converts_fields_by_schema_and_redirects_to_the_job() -> None:
    board, client = dashboard()
    form = {"type": "fail", "fail.times": "2", "fail.message": "m", "delay_seconds": "5", "idempotency_key": "k"}
    answer = board.route("POST", "/submit", {}, form)
    assert answer.status == 303
    assert client.submitted == [("fail", {"times": 2, "retryable": False, "message": "m"}, "k", 5)]
    assert answer.location == f"/jobs/{next(iter(client.jobs))}"


def test_api_validation_errors_come_back_on_the_form() -> None:
    board, client = dashboard()
    page = board.route("POST", "/submit", {}, {"type": "sleep", "sleep.seconds": "600"})
    assert page.status == 400
    assert "payload is not valid for job type &#x27;sleep&#x27;" in page.body
    assert "seconds: Input should be &lt;= 60" in page.body
    assert 'value="600"' in page.body  # what was typed stays
    assert client.submitted == []
    bad = board.route("POST", "/submit", {}, {"type": "count", "count.to": "many"})
    assert "to: &#x27;many&#x27; is not a number" in bad.body


@pytest.mark.parametrize(("raw", "message"), [("{nope", "not JSON"), ("[1, 2]", "must be an object")])
def test_payload_json_must_be_an_object(raw: str, message: str) -> None:
    echo = FakeClient().types()[1]
    assert echo.type == "echo"
    with pytest.raises(ValueError, match=message):
        form_payload(echo, {"echo.__json__": raw})
    assert form_payload(echo, {"echo.__json__": '{"a": [1]}'}) == {"a": [1]}


def test_the_dlq_page_lists_and_redrives_and_says_when_it_is_empty() -> None:
    failed = a_job(1, JobStatus.FAILED)
    board, client = dashboard(failed)
    client.letters = [DeadLetterDocument(message_id="m1", body="{}", job=failed)]
    page = board.route("GET", "/dlq", {}, {})
    assert 'id="redrive-all"' in page.body
    assert f'id="redrive-{failed.job_id}"' in page.body
    answer = board.route("POST", "/dlq/redrive", {}, {})
    assert answer.location == "/dlq?report=redriven+1%2C+dropped+0%2C+kept+0"
    after = board.route("GET", "/dlq", {"report": "redriven 1, dropped 0, kept 0"}, {})
    assert 'id="dlq-empty">the dead-letter queue is empty' in after.body
    client.admin = False
    refused = board.route("GET", "/dlq", {}, {})
    assert refused.status == 403
    assert "only admins may use the dead-letter queue" in refused.body
