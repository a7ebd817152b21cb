"""A Python client of the jobq HTTP API: signed calls (SigV4, or a JWT), typed documents, typed errors.

``Client(url)`` for any deployment, ``Client.from_stack(name)`` for a deployed stack (its ApiUrl output),
``Client.local()`` for ``make run``. HTTP goes through botocore's own session: no new dependency.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from jobq.domain.documents import (
    DeadLetterPageDocument,
    JobDocument,
    JobListDocument,
    JobPageDocument,
    JobTypeDocument,
    JobTypeListDocument,
    RedriveDocument,
)

if TYPE_CHECKING:
    from botocore.credentials import Credentials

LOCAL_STATE_FILE = ".jobq-local.json"
# The local runtime accepts any access key id with this secret (LocalStack's convention); not a real secret.
LOCAL_SECRET = "test"  # noqa: S105
LOCAL_ADMIN = "admin"  # the local runtime's default admin access key id


class ApiError(Exception):
    """An error answer of the API: its HTTP status, machine-readable code, message and details."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class Unauthorized(ApiError):
    """The request was not signed, badly signed, or the caller may not do this (401, 403)."""


class JobNotFound(ApiError):
    """No such job, or not one of the caller's (404)."""


class InvalidState(ApiError):
    """The job's status does not allow this (409 ``invalid_state``)."""


class Conflict(ApiError):
    """An Idempotency-Key reused with another request, or still in progress (409)."""


class ValidationFailed(ApiError):
    """The request was refused as invalid (400, 413, 422); ``details`` says where."""


class ServiceUnavailable(ApiError):
    """The service could not be reached or stayed unavailable (503, throttling) after retries."""


class WaitTimeout(TimeoutError):
    """``Client.wait`` gave up before the job finished; ``job`` is how it was last seen."""

    def __init__(self, job: JobDocument, timeout: float) -> None:
        super().__init__(f"job {job.job_id} is still {job.status.value} after {timeout:g} s")
        self.job = job


def _error_class(status: int, code: str) -> type[ApiError]:
    if status in {401, 403}:
        return Unauthorized
    if status == 404:
        return JobNotFound
    if status == 409:
        return InvalidState if code == "invalid_state" else Conflict
    if status in {400, 413, 422}:
        return ValidationFailed
    if status in {429, 502, 503, 504}:
        return ServiceUnavailable
    return ApiError


class Client:
    """Calls one jobq API as one caller."""

    RETRIES = 4

    def __init__(
        self,
        url: str,
        *,
        region: str | None = None,
        credentials: Credentials | None = None,
        token: str | None = None,
        timeout: int = 30,
    ) -> None:
        import botocore.session
        from botocore.httpsession import URLLib3Session

        self.url = url.rstrip("/")
        session = botocore.session.get_session()
        self.region = region or session.get_config_variable("region") or "us-east-1"
        self._token = token
        self._credentials = None if token else (credentials or session.get_credentials())
        self._http = URLLib3Session(timeout=timeout)

    @classmethod
    def local(cls, access_key_id: str = LOCAL_ADMIN, *, state_file: str | os.PathLike[str] | None = None) -> Client:
        """The API of the running ``make run``, signed with the local credentials (admin by default)."""
        from botocore.credentials import Credentials

        path = Path(state_file or os.environ.get("JOBQ_LOCAL_STATE", LOCAL_STATE_FILE))
        if not path.exists():
            raise FileNotFoundError(f"{path} not found: start the local runtime with make run in this directory")
        state = json.loads(path.read_text())
        return cls(state["api_url"], region=state["region"], credentials=Credentials(access_key_id, LOCAL_SECRET))

    @classmethod
    def from_stack(cls, stack_name: str, **kwargs: Any) -> Client:
        """The API of a deployed stack (its ``ApiUrl`` output), signed with your standard AWS credentials."""
        import boto3

        client = boto3.session.Session().client("cloudformation", region_name=kwargs.get("region"))
        stack = client.describe_stacks(StackName=stack_name)["Stacks"][0]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
        if "ApiUrl" not in outputs:
            raise LookupError(f"stack {stack_name} has no ApiUrl output: is it a jobq stack?")
        return cls(outputs["ApiUrl"], **kwargs)

    # -- jobs ---------------------------------------------------------------------------------

    def submit(
        self,
        job_type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        delay_seconds: int = 0,
    ) -> JobDocument:
        """Submit a job; with ``idempotency_key``, a repeat returns the first job."""
        body = {"type": job_type, "payload": dict(payload or {}), "delay_seconds": delay_seconds}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return JobDocument.model_validate(self._call("POST", "/jobs", body=body, headers=headers))

    def get(self, job_id: str) -> JobDocument:
        """One job."""
        return JobDocument.model_validate(self._call("GET", f"/jobs/{job_id}"))

    def list_jobs(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        owner: str | None = None,
        limit: int = 20,
        cursor: str | None = None,
    ) -> JobPageDocument:
        """One page of jobs, newest first."""
        query = {"status": status, "type": type, "owner": owner, "limit": limit, "cursor": cursor}
        return JobPageDocument.model_validate(self._call("GET", "/jobs", query=query))

    def iter_jobs(
        self, *, status: str | None = None, type: str | None = None, owner: str | None = None
    ) -> Iterator[JobDocument]:
        """Every job, newest first, following the cursors."""
        cursor: str | None = None
        while True:
            page = self.list_jobs(status=status, type=type, owner=owner, limit=100, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    BATCH = 25
    """Jobs per ``POST /jobs/batch`` request (the API's limit)."""

    def submit_many(
        self, jobs: Iterable[Mapping[str, Any]], *, idempotency_key: str | None = None
    ) -> list[JobDocument]:
        """Submit jobs (each ``{"type", "payload"?, "delay_seconds"?}``) through ``POST /jobs/batch``, 25 a
        request, each request all or none; the jobs in the same order.

        With ``idempotency_key``, the n-th request of 25 carries ``<key>.<n>``: calling again with the same
        jobs and key returns the same jobs and submits nothing new.
        """
        specs = []
        for spec in jobs:
            extra = set(spec) - {"type", "payload", "delay_seconds"}
            if extra or "type" not in spec:
                raise TypeError(f"a job to submit is {{type, payload, delay_seconds}}, not {spec!r}")
            specs.append(
                {
                    "type": spec["type"],
                    "payload": dict(spec.get("payload") or {}),
                    "delay_seconds": spec.get("delay_seconds", 0),
                }
            )
        submitted: list[JobDocument] = []
        for number, start in enumerate(range(0, len(specs), self.BATCH)):
            headers = {"Idempotency-Key": f"{idempotency_key}.{number}"} if idempotency_key else {}
            body = {"jobs": specs[start : start + self.BATCH]}
            submitted.extend(
                JobListDocument.model_validate(self._call("POST", "/jobs/batch", body=body, headers=headers)).items
            )
        return submitted

    def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = 300.0,
        on_progress: Callable[[JobDocument], None] | None = None,
        poll_interval: float = 0.25,
        max_interval: float = 2.0,
    ) -> JobDocument:
        """Poll until the job is terminal (``succeeded``, ``failed`` or ``cancelled``) and return it.

        Polls every ``poll_interval`` seconds, doubling up to ``max_interval``, and sooner again
        whenever the job changes. ``on_progress(job)`` is called with each poll's document. Raises
        WaitTimeout after ``timeout`` seconds (None: wait as long as it takes).
        """
        started = time.monotonic()
        interval = poll_interval
        seen: str | None = None
        while True:
            job = self.get(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.status.terminal:
                return job
            elapsed = time.monotonic() - started
            if timeout is not None and elapsed >= timeout:
                raise WaitTimeout(job, timeout)
            changed = job.updated_at.isoformat() != seen
            seen = job.updated_at.isoformat()
            interval = poll_interval if changed else min(interval * 2, max_interval)
            pause = interval if timeout is None else min(interval, timeout - elapsed)
            time.sleep(max(pause, 0.0))

    def cancel(self, job_id: str) -> JobDocument:
        """Cancel a job: a queued one at once (``cancelled``); a running one is asked to stop
        (``cancel_requested``), which its handler honours at its next progress check."""
        return JobDocument.model_validate(self._call("POST", f"/jobs/{job_id}/cancel"))

    def retry(self, job_id: str) -> JobDocument:
        """Queue a failed or cancelled job again."""
        return JobDocument.model_validate(self._call("POST", f"/jobs/{job_id}/retry"))

    def types(self) -> list[JobTypeDocument]:
        """The registered job types with their payload JSON Schemas, by name."""
        return JobTypeListDocument.model_validate(self._call("GET", "/types")).items

    # -- dead-letter queue (admins) -------------------------------------------------------------

    def dead_letters(self) -> DeadLetterPageDocument:
        """The dead-letter queue's messages and their jobs."""
        return DeadLetterPageDocument.model_validate(self._call("GET", "/dlq"))

    def redrive(self, job_id: str | None = None) -> RedriveDocument:
        """Queue the dead-lettered jobs again (one call's worth; ``more`` says whether to call again)."""
        return RedriveDocument.model_validate(self._call("POST", "/dlq/redrive", body={"job_id": job_id}))

    # -- HTTP -----------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One API call, retried with capped backoff on 503, throttling and connection errors."""
        from botocore.exceptions import HTTPClientError

        pairs = {key: str(value) for key, value in (query or {}).items() if value is not None}
        url = self.url + path + (f"?{urlencode(pairs, quote_via=quote)}" if pairs else "")
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(self.RETRIES):
            try:
                status, payload = self._send(method, url, data, headers or {})
            except HTTPClientError as exc:
                if attempt + 1 == self.RETRIES:
                    raise ServiceUnavailable(0, "unreachable", f"cannot reach {self.url}: {exc}") from None
            else:
                if status < 400:
                    return payload
                error = self._error(status, payload)
                if not isinstance(error, ServiceUnavailable) or attempt + 1 == self.RETRIES:
                    raise error
            time.sleep(min(0.2 * 2**attempt, 2.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, method: str, url: str, data: bytes | None, headers: Mapping[str, str]) -> tuple[int, Any]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=data, headers=dict(headers))
        if data is not None:
            request.headers["Content-Type"] = "application/json"
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        elif self._credentials is not None:
            SigV4Auth(self._credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        response = self._http.send(request.prepare())
        try:
            payload = json.loads(response.content or b"null")
        except ValueError:
            payload = {"message": response.content[:200].decode(errors="replace")}
        return int(response.status_code), payload

    @staticmethod
    def _error(status: int, payload: Any) -> ApiError:
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict):
            code, message, details = str(error.get("code")), str(error.get("message")), error.get("details")
        else:  # API Gateway's own answers: {"message": "Forbidden"}
            message = str(payload.get("message")) if isinstance(payload, dict) else f"HTTP {status}"
            code, details = message.lower().replace(" ", "_"), None
        return _error_class(status, code)(status, code, message, details)
