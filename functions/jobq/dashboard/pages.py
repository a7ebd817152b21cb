"""The dashboard's pages, as functions of a request (``server`` puts them on HTTP)."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from jobq.dashboard.forms import field_kind, form_payload
from jobq.dashboard.markup import (
    CSS,
    SWITCH_FIELDSETS,
    DashboardError,
    Page,
    e,
    listed,
    pretty_json,
    problem_text,
    progress_bar,
    status_badge,
    when,
)
from jobq.domain.documents import JobDocument, JobTypeDocument
from jobq.domain.models import JobStatus, format_timestamp

if TYPE_CHECKING:
    from jobq.client import Client

STATUSES = [status.value for status in JobStatus]
COUNT_LIMIT = 100
"""Counts by status read one page of this size each; a fuller status shows as ``100+``."""


class Dashboard:
    """The pages, as functions of a request; ``server.Handler`` puts them on HTTP."""

    def __init__(self, client: Client, *, refresh_seconds: float = 2.0) -> None:
        self.client = client
        self.refresh_seconds = refresh_seconds

    # -- pages --------------------------------------------------------------------------------

    def route(self, method: str, path: str, query: Mapping[str, str], form: Mapping[str, str]) -> Page:
        """The answer to one request; API errors become error pages."""
        from jobq.client import ApiError

        try:
            return self._route(method, path, query, form)
        except ApiError as exc:
            return self.error_page(exc.status or HTTPStatus.BAD_GATEWAY, exc.message, exc.details)
        except DashboardError as exc:
            return self.error_page(exc.status, exc.message, exc.details)

    def _route(self, method: str, path: str, query: Mapping[str, str], form: Mapping[str, str]) -> Page:
        parts = [part for part in path.split("/") if part]
        if method == "GET" and not parts:
            return self.jobs_page(query)
        if method == "GET" and parts == ["dlq"]:
            return self.dlq_page(query)
        if method == "GET" and parts == ["submit"]:
            return self.submit_page()
        if method == "POST" and parts == ["submit"]:
            return self.submit(form)
        if method == "POST" and parts == ["dlq", "redrive"]:
            return self.redrive(form)
        if len(parts) == 2 and parts[0] == "jobs" and method == "GET":
            return self.job_page(parts[1], query)
        if len(parts) == 3 and parts[0] == "jobs" and method == "POST" and parts[2] in {"cancel", "retry"}:
            job = self.client.cancel(parts[1]) if parts[2] == "cancel" else self.client.retry(parts[1])
            return Page(HTTPStatus.SEE_OTHER, location=f"/jobs/{quote(job.job_id)}")
        raise DashboardError(HTTPStatus.NOT_FOUND, f"no page {path}")

    def jobs_page(self, query: Mapping[str, str]) -> Page:
        status = query.get("status") or None
        job_type = query.get("type") or None
        if status is not None and status not in STATUSES:
            raise DashboardError(HTTPStatus.BAD_REQUEST, f"unknown status {status!r}")
        page = self.client.list_jobs(status=status, type=job_type, limit=25, cursor=query.get("cursor") or None)
        counts = self.counts()
        filters = {"status": status or "", "type": job_type or ""}
        rows = "".join(self.job_row(job) for job in page.items) or (
            '<tr><td colspan="7" class="note">no jobs</td></tr>'
        )
        paging = []
        if query.get("cursor"):
            paging.append(f'<a href="/?{e(urlencode(filters))}">First page</a>')
        if page.next_cursor:
            paging.append(f'<a id="next" href="/?{e(urlencode(filters | {"cursor": page.next_cursor}))}">Next page</a>')
        count_links = "".join(
            f'<a href="/?{urlencode({"status": name})}" data-status="{name}"><b>{e(count)}</b>{status_badge(name)}</a>'
            for name, count in counts.items()
        )
        options = "".join(
            f'<option value="{name}"{" selected" if name == status else ""}>{name}</option>' for name in STATUSES
        )
        body = f"""
<div class="counts">{count_links}</div>
<form method="get" action="/">
  <label style="display:inline">status <select name="status"><option value="">any</option>{options}</select></label>
  <label style="display:inline">type <input type="text" name="type" value="{e(job_type or "")}" size="12"></label>
  <button type="submit">Filter</button> <a href="/">clear</a>
</form>
<table id="jobs"><tr><th>job</th><th>type</th><th>status</th><th>attempts</th><th>created (UTC)</th>
<th>progress</th><th>error</th></tr>{rows}</table>
<p>{" · ".join(paging)}</p>"""
        return Page(HTTPStatus.OK, self.layout("Jobs", body, refresh=query.get("refresh") != "0"))

    def counts(self) -> dict[str, str]:
        """Jobs per status: exact up to COUNT_LIMIT, else ``100+``."""
        counts = {}
        for status in STATUSES:
            page = self.client.list_jobs(status=status, limit=COUNT_LIMIT)
            counts[status] = f"{len(page.items)}{'+' if page.next_cursor else ''}"
        return counts

    def job_row(self, job: JobDocument) -> str:
        error = f"{job.error.type}: {job.error.message}" if job.error else ""
        created = format_timestamp(job.created_at)[:19].replace("T", " ")
        return (
            f'<tr data-job="{e(job.job_id)}"><td><a href="/jobs/{e(job.job_id)}"><code>{e(job.job_id)}</code></a></td>'
            f"<td>{e(job.type)}</td><td>{status_badge(job.status.value)}</td>"
            f'<td>{job.attempts}/{job.max_attempts}</td><td class="nowrap">{e(created)}</td>'
            f"<td>{progress_bar(job)}</td><td>{e(error[:120])}</td></tr>"
        )

    def job_page(self, job_id: str, query: Mapping[str, str]) -> Page:
        job = self.client.get(job_id)
        actions = []
        if job.status in {JobStatus.QUEUED, JobStatus.RUNNING} and not job.cancel_requested:
            actions.append(self.button(f"/jobs/{job.job_id}/cancel", "Cancel", "cancel"))
        if job.status in {JobStatus.FAILED, JobStatus.CANCELLED}:
            actions.append(self.button(f"/jobs/{job.job_id}/retry", "Retry", "retry"))
        facts = [
            ("status", status_badge(job.status.value) + (" (cancel requested)" if job.cancel_requested else "")),
            ("type", e(job.type)),
            ("attempts", f"{job.attempts} of {job.max_attempts}"),
            ("owner", e(job.owner)),
            ("created", when(job.created_at)),
            ("updated", when(job.updated_at)),
            ("started", when(job.started_at)),
            ("finished", when(job.finished_at)),
            ("progress", progress_bar(job) or '<span class="note">none reported</span>'),
        ]
        table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts)
        sections = [f"<h3>Payload</h3>{pretty_json(job.payload)}"]
        if job.result is not None:
            sections.append(f"<h3>Result</h3>{pretty_json(job.result)}")
        if job.error is not None:
            final = "" if job.error.retryable else " (final)"
            sections.append(
                f'<h3>Error</h3><div class="error" id="error"><b>{e(job.error.type)}</b>: {e(job.error.message)}'
                f"{final}</div>"
            )
        if job.history:
            rows = "".join(
                f"<tr><td>{entry.attempt}</td><td>{when(entry.at)}</td><td>{e(entry.type)}</td>"
                f"<td>{e(entry.message)}</td></tr>"
                for entry in job.history
            )
            dropped = f'<p class="note">{job.history_dropped} older failed attempts not kept</p>' * bool(
                job.history_dropped
            )
            sections.append(
                f'<h3>Failed attempts</h3><table id="history"><tr><th>attempt</th><th>at</th><th>error</th>'
                f"<th>message</th></tr>{rows}</table>{dropped}"
            )
        body = f"""
<h2><code id="job-id">{e(job.job_id)}</code> <span id="status">{status_badge(job.status.value)}</span></h2>
<p>{" ".join(actions)}</p>
<table class="facts">{table}</table>
{"".join(sections)}"""
        refresh = not job.status.terminal and query.get("refresh") != "0"
        return Page(HTTPStatus.OK, self.layout(f"Job {job.job_id}", body, refresh=refresh))

    def dlq_page(self, query: Mapping[str, str]) -> Page:
        page = self.client.dead_letters()
        if not page.items:
            listing = '<p id="dlq-empty">the dead-letter queue is empty</p>'
        else:
            rows = []
            for item in page.items:
                job = item.job
                if job is None:
                    rows.append(
                        f"<tr><td colspan='4'>unreadable message or no such job: <code>{e(item.body[:200])}</code>"
                        "</td><td></td></tr>"
                    )
                    continue
                error = f"{job.error.type}: {job.error.message}" if job.error else ""
                rows.append(
                    f'<tr><td><a href="/jobs/{e(job.job_id)}"><code>{e(job.job_id)}</code></a></td>'
                    f"<td>{e(job.type)}</td><td>{status_badge(job.status.value)}</td><td>{e(error[:160])}</td>"
                    f"<td>{self.button('/dlq/redrive', 'Redrive', f'redrive-{job.job_id}', job_id=job.job_id)}"
                    "</td></tr>"
                )
            more = '<p class="note">more messages than shown</p>' * page.more
            listing = (
                '<table id="dlq"><tr><th>job</th><th>type</th><th>status</th><th>error</th><th></th></tr>'
                f"{''.join(rows)}</table>{more}<p>{self.button('/dlq/redrive', 'Redrive all', 'redrive-all')}</p>"
            )
        report = query.get("report")
        note = f'<p class="note" id="report">{e(report)}</p>' if report else ""
        body = f"<h2>Dead-letter queue</h2>{note}{listing}"
        return Page(HTTPStatus.OK, self.layout("Dead-letter queue", body, refresh=query.get("refresh") != "0"))

    def redrive(self, form: Mapping[str, str]) -> Page:
        job_id = form.get("job_id") or None
        totals = {"redriven": 0, "dropped": 0, "kept": 0}
        while True:
            report = self.client.redrive(job_id)
            totals["redriven"] += len(report.redriven)
            totals["dropped"] += len(report.dropped)
            totals["kept"] += len(report.kept)
            if not report.more or not (report.redriven or report.dropped):
                break
        summary = ", ".join(f"{name} {count}" for name, count in totals.items())
        return Page(HTTPStatus.SEE_OTHER, location="/dlq?" + urlencode({"report": summary}))

    def submit_page(self, *, form: Mapping[str, str] | None = None, problem: str = "") -> Page:
        types = self.client.types()
        form = form or {}
        chosen = form.get("type") or (types[0].type if types else "")
        options = "".join(
            f'<option value="{e(t.type)}"{" selected" if t.type == chosen else ""}>{e(t.type)}</option>' for t in types
        )
        fieldsets = "".join(self.fieldset(t, form) for t in types)
        error = f'<div class="error" id="form-error">{problem}</div>' if problem else ""
        body = f"""
<h2>Submit a job</h2>{error}
<form method="post" action="/submit" id="submit-form">
<label>type <select name="type" id="type">{options}</select></label>
{fieldsets}
<label>delay seconds
<input type="number" name="delay_seconds" min="0" max="900" value="{e(form.get("delay_seconds", "0"))}"></label>
<label>Idempotency-Key <input type="text" name="idempotency_key" value="{e(form.get("idempotency_key", ""))}"></label>
<button type="submit" id="submit">Submit</button>
</form><script>{SWITCH_FIELDSETS}</script>"""
        return Page(HTTPStatus.BAD_REQUEST if problem else HTTPStatus.OK, self.layout("Submit", body, refresh=False))

    @staticmethod
    def fieldset(job_type: JobTypeDocument, form: Mapping[str, str]) -> str:
        schema = job_type.payload_schema
        required = set(schema.get("required", []))
        inputs = []
        for name, spec in schema.get("properties", {}).items():
            kind = field_kind(spec)
            field = f"{job_type.type}.{name}"
            label = f"{e(name)}{' *' if name in required else ''}"
            note = f' <span class="note">{e(spec.get("description", ""))}</span>' if spec.get("description") else ""
            default = spec.get("default")
            if kind == "boolean":
                checked = form.get(field, "on" if default else "") == "on"
                control = f'<input type="checkbox" name="{e(field)}"{" checked" if checked else ""}>'
            else:
                value = form.get(field, "" if default is None else str(default))
                html_type = "number" if kind in {"integer", "number"} else "text"
                step = ' step="any"' if kind == "number" else ""
                control = f'<input type="{html_type}"{step} name="{e(field)}" value="{e(value)}">'
            inputs.append(f"<label>{label} {control}{note}</label>")
        if schema.get("additionalProperties", True) is not False:
            text = form.get(f"{job_type.type}.__json__", "{}")
            inputs.append(
                f'<label>payload JSON <span class="note">(any object; it overrides the fields above)</span><br>'
                f'<textarea name="{e(job_type.type)}.__json__" rows="4" cols="60">{e(text)}</textarea></label>'
            )
        limits = f"timeout {job_type.timeout_seconds:g} s, {job_type.max_attempts} attempts"
        return (
            f'<fieldset data-type="{e(job_type.type)}"><legend>{e(job_type.type)} '
            f'<span class="note">{e(limits)}</span></legend>{"".join(inputs)}</fieldset>'
        )

    def submit(self, form: Mapping[str, str]) -> Page:
        from jobq.client import ValidationFailed

        types = {t.type: t for t in self.client.types()}
        chosen = form.get("type", "")
        if chosen not in types:
            return self.submit_page(form=form, problem=f"choose a job type ({e(', '.join(types))})")
        try:
            payload = form_payload(types[chosen], form)
            delay = int(form.get("delay_seconds") or 0)
        except ValueError as exc:
            return self.submit_page(form=form, problem=e(exc))
        try:
            job = self.client.submit(
                chosen, payload, idempotency_key=form.get("idempotency_key") or None, delay_seconds=delay
            )
        except ValidationFailed as exc:
            findings = "".join(f"<li>{e(problem_text(item))}</li>" for item in listed(exc.details))
            return self.submit_page(form=form, problem=f"{e(exc.message)}<ul>{findings}</ul>")
        return Page(HTTPStatus.SEE_OTHER, location=f"/jobs/{quote(job.job_id)}")

    # -- pieces -------------------------------------------------------------------------------

    @staticmethod
    def button(action: str, label: str, ident: str, **fields: str) -> str:
        hidden = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in fields.items())
        return (
            f'<form class="inline" method="post" action="{e(action)}">{hidden}'
            f'<button type="submit" id="{e(ident)}">{e(label)}</button></form>'
        )

    def error_page(self, status: int, message: str, details: Any = None) -> Page:
        extra = pretty_json(details) if details else ""
        body = f'<div class="error" id="page-error"><b>{int(status)}</b> {e(message)}</div>{extra}'
        return Page(int(status), self.layout("Error", body, refresh=False))

    def layout(self, title: str, body: str, *, refresh: bool) -> str:
        meta = (
            f'<meta http-equiv="refresh" content="{self.refresh_seconds:g}">'
            if refresh and self.refresh_seconds
            else ""
        )
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{meta}<title>{e(title)} · jobq</title><style>{CSS}</style></head>
<body><header><a class="brand" href="/">jobq</a><a href="/">Jobs</a><a href="/submit">Submit</a>
<a href="/dlq">Dead-letter queue</a><span class="note">{e(self.client.url)}</span></header>
<main>{body}</main></body></html>"""
