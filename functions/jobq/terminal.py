"""What the ``jobq`` command prints: job rows and a job's page, a live progress line, type and DLQ rows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from jobq.domain.models import format_timestamp

if TYPE_CHECKING:
    from jobq.domain.documents import DeadLetterDocument, JobDocument, JobTypeDocument


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _created(job: JobDocument) -> str:
    return job.created_at.strftime("%Y-%m-%d %H:%M:%S")


def progress_text(job: JobDocument, width: int = 20) -> str:
    progress = job.progress
    if progress is None:
        return ""
    done = f"{progress.done:g}" + (f"/{progress.total:g}" if progress.total is not None else "")
    fraction = progress.fraction
    bar = "" if fraction is None else f"[{'#' * round(fraction * width):<{width}}] {fraction:4.0%} "
    return f"{bar}{done}" + (f" {progress.message}" if progress.message else "")


def job_row(job: JobDocument) -> str:
    if job.status.value == "running" and job.progress is not None:
        note = progress_text(job, width=10)
    elif job.error is not None:
        note = f"{job.error.type}: {job.error.message}"
    else:
        note = ""
    attempts = f"{job.attempts}/{job.max_attempts}"
    row = f"{job.job_id:<26}  {job.type:<12}  {job.status.value:<9}  {attempts:>8}  {_created(job):<19}  {note[:60]}"
    return row.rstrip()


JOB_HEADER = f"{'JOB ID':<26}  {'TYPE':<12}  {'STATUS':<9}  {'ATTEMPTS':>8}  {'CREATED (UTC)':<19}  NOTE"


def show_job(job: JobDocument) -> None:
    rows: list[tuple[str, Any]] = [
        ("job", job.job_id),
        ("type", job.type),
        (
            "status",
            job.status.value + ("  (cancel requested)" if job.cancel_requested and not job.status.terminal else ""),
        ),
        ("attempts", f"{job.attempts} of {job.max_attempts}"),
        ("owner", job.owner),
        ("created", format_timestamp(job.created_at)),
        ("started", format_timestamp(job.started_at) if job.started_at else "-"),
        ("finished", format_timestamp(job.finished_at) if job.finished_at else "-"),
    ]
    if job.progress is not None:
        rows.append(("progress", progress_text(job)))
    if job.error is not None:
        rows.append(("error", f"{job.error.type}: {job.error.message}" + ("" if job.error.retryable else " (final)")))
    for name, value in rows:
        print(f"{name:<9} {value}")
    print(f"payload   {json.dumps(job.payload, ensure_ascii=False)}")
    if job.result is not None:
        print(f"result    {json.dumps(job.result, ensure_ascii=False)}")
    if job.history:
        print(
            f"history   {len(job.history)} failed attempt(s)"
            + (f", {job.history_dropped} older dropped" * bool(job.history_dropped))
        )
        for entry in job.history:
            print(f"  #{entry.attempt}  {format_timestamp(entry.at)}  {entry.type}: {entry.message[:100]}")


class ProgressBar:
    """One live line on a terminal (rewritten in place); on a pipe, a line per change."""

    def __init__(self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._live = stream.isatty()
        self._clock = clock
        self._started = clock()
        self._last = ""

    def update(self, job: JobDocument) -> None:
        """Show where ``job`` is."""
        elapsed = self._clock() - self._started
        text = f"{job.job_id}  {job.status.value:<9}"
        detail = progress_text(job)
        text += f"  {detail}" if detail else ""
        if self._live:
            self._stream.write(f"\r{text}  {elapsed:5.1f}s\x1b[K")
            self._stream.flush()
        elif text != self._last:
            self._stream.write(f"{text}  {elapsed:.1f}s\n")
            self._stream.flush()
        self._last = text

    def close(self) -> None:
        """End the live line."""
        if self._live and self._last:
            self._stream.write("\n")
            self._stream.flush()


TYPE_HEADER = f"{'TYPE':<14}  {'TIMEOUT':>8}  {'ATTEMPTS':>8}  PAYLOAD"


def type_row(item: JobTypeDocument) -> str:
    """A job type's line of ``jobq types``."""
    return (
        f"{item.type:<14}  {item.timeout_seconds:>7g}s  {item.max_attempts:>8}  {schema_summary(item.payload_schema)}"
    )


def schema_summary(schema: dict[str, Any]) -> str:
    """``name: type = default`` for each property; ``{...}`` when any object is allowed."""
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    parts = []
    for name, spec in properties.items():
        kind = spec.get("type") or "/".join(option.get("type", "?") for option in spec.get("anyOf", [])) or "any"
        text = f"{name}: {kind}"
        if name not in required and "default" in spec:
            text += f" = {json.dumps(spec['default'])}"
        parts.append(text)
    if schema.get("additionalProperties", True) is not False and not properties:
        parts.append("{any JSON object}")
    return ", ".join(parts)


DLQ_HEADER = f"{'JOB ID':<26}  {'TYPE':<12}  {'STATUS':<9}  {'ATTEMPTS':>8}  ERROR"


def dlq_row(item: DeadLetterDocument) -> str:
    job = item.job
    if job is None:
        return f"{'?':<26}  {'?':<12}  {'?':<9}  {'':>8}  unreadable message or no such job: {item.body[:60]}"
    error = f"{job.error.type}: {job.error.message}" if job.error else ""
    return f"{job.job_id:<26}  {job.type:<12}  {job.status.value:<9}  {job.attempts:>8}  {error[:80]}"


def explain(exc: Exception) -> str:
    """A line about an error outside the API: no stack, no credentials, no such stack."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    if isinstance(exc, NoRegionError):
        return "no AWS region set (use --region, or set AWS_REGION)"
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Message") or exc)
    if isinstance(exc, BotoCoreError | OSError | LookupError | ValueError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"
