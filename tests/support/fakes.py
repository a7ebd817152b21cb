"""In-memory implementations of the domain's ports, with the same conditional-write semantics."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeGuard

from jobq.domain.errors import DependencyUnavailableError, InvalidCursorError
from jobq.domain.models import (
    JOB_ID_PATTERN,
    MAX_RECORD_BYTES,
    Job,
    JobMessage,
    JobPage,
    JobStatus,
    ListQuery,
    record_bytes,
)
from jobq.domain.ports import (
    UNSET,
    Claim,
    ConditionFailedError,
    DeadLetterRoute,
    Expect,
    JobChange,
    JobEvents,
    PageBytes,
    RecordTooLargeError,
    SweepMarks,
)


def _fresh_and_claimable(job: Job | None, now: datetime) -> TypeGuard[Job]:
    """What ``claim_fresh`` requires: queued and due, never attempted, and allowed more than one attempt."""
    if job is None or job.status is not JobStatus.QUEUED:
        return False
    return job.attempts == 0 and job.max_attempts > 1 and job.claimable(now)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


class InMemoryJobRepository:
    """JobRepository in a dict; every write checks its condition under a lock, like DynamoDB."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.unavailable = False
        self.writes = 0
        self.claim_requests = 0  # claim_fresh calls
        self._lock = threading.Lock()

    def _check_available(self) -> None:
        if self.unavailable:
            raise DependencyUnavailableError("DynamoDB is down (fake)")

    def insert(self, job: Job) -> None:
        self._check_available()
        with self._lock:
            if job.job_id in self.jobs:
                raise ConditionFailedError(self.jobs[job.job_id])
            _check_size(job)
            self.jobs[job.job_id] = job
            self.writes += 1

    def insert_many(self, jobs: Any) -> None:
        self._check_available()
        with self._lock:
            for job in jobs:
                _check_size(job)  # all or none
            for job in jobs:
                self.jobs[job.job_id] = job
                self.writes += 1

    def get(self, job_id: str) -> Job | None:
        self._check_available()
        return self.jobs.get(job_id)

    def claim(self, job_id: str, *, now: datetime, lease_id: str, lease_expires_at: datetime) -> Job:
        self._check_available()
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or not job.claimable(now):
                raise ConditionFailedError(job)
            return self._start_attempt(job, now, lease_id, lease_expires_at)

    def _start_attempt(self, job: Job, now: datetime, lease_id: str, lease_expires_at: datetime) -> Job:
        """A claim's writes (the caller holds the lock and has checked the condition)."""
        claimed = job.model_copy(
            update={
                "status": JobStatus.RUNNING,
                "claimed_from": job.status,
                "attempts": job.attempts + 1,
                "lease_id": lease_id,
                "lease_expires_at": lease_expires_at,
                "started_at": now,
                "updated_at": now,
                "progress": None,
            }
        )
        self.jobs[job.job_id] = claimed
        self.writes += 1
        return claimed

    def claim_fresh(self, claims: Sequence[Claim], *, now: datetime) -> list[Job | None]:
        self._check_available()
        self.claim_requests += 1
        claimed: list[Job | None] = []
        with self._lock:
            for claim in claims:
                job = self.jobs.get(claim.job_id)
                if job is not None and job.status is JobStatus.RUNNING and job.lease_id == claim.lease_id:
                    claimed.append(job)  # its own claim, applied by an earlier try of the request
                elif _fresh_and_claimable(job, now):
                    claimed.append(self._start_attempt(job, now, claim.lease_id, claim.lease_expires_at))
                else:
                    claimed.append(None)
        return claimed

    def update(self, job_id: str, change: JobChange, *, expect: Expect) -> Job:
        self._check_available()
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or not expect.holds_for(job):
                raise ConditionFailedError(job)
            fields: dict[str, Any] = {"status": change.status, "updated_at": change.at}
            for name in (
                "result",
                "error",
                "finished_at",
                "available_at",
                "attempts",
                "history",
                "history_dropped",
                "retries",
                "progress",
                "cancel_requested",
                "started_at",
                "lease_expires_at",
            ):
                value = getattr(change, name)
                if value is not UNSET:
                    fields[name] = value
            if change.release_lease:
                fields["lease_id"] = None
                fields["lease_expires_at"] = None
            updated = job.model_copy(update=fields)
            _check_size(updated)  # all or nothing, as DynamoDB
            self.jobs[job_id] = updated
            self.writes += 1
            return updated

    def delete(self, job_id: str, *, expect: Expect) -> None:
        self._check_available()
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None or not expect.holds_for(job):
                raise ConditionFailedError(job)
            del self.jobs[job_id]

    def list_jobs(self, query: ListQuery, page_bytes: PageBytes | None = None) -> JobPage:
        self._check_available()
        filters = {"s": query.status.value if query.status else None, "t": query.type, "o": query.owner}
        after = None
        if query.cursor is not None:
            try:
                data = json.loads(base64.urlsafe_b64decode(query.cursor.encode()))
            except ValueError:
                raise InvalidCursorError("cursor is not one this API issued") from None
            if not isinstance(data, dict) or not re.fullmatch(JOB_ID_PATTERN, str(data.get("after"))):
                raise InvalidCursorError("cursor is not one this API issued")
            if {"s": data.get("s"), "t": data.get("t"), "o": data.get("o")} != filters:
                raise InvalidCursorError("cursor was issued for other filters; pass the same status and type")
            after = data["after"]
        matching = [
            job
            for job in sorted(self.jobs.values(), key=lambda j: j.job_id, reverse=True)
            if (query.status is None or job.status is query.status)
            and (query.type is None or job.type == query.type)
            and (query.owner is None or job.owner == query.owner)
            and (after is None or job.job_id < after)
        ]
        page = matching[: query.limit]
        if page_bytes is not None:
            used = 0
            for count, job in enumerate(page):
                grown = page_bytes.fits(used, job, first=count == 0)
                if grown is None:
                    page = page[:count]
                    break
                used = grown
        more = len(matching) > len(page)
        cursor = None
        if more and page:
            cursor = base64.urlsafe_b64encode(json.dumps(filters | {"after": page[-1].job_id}).encode()).decode()
        return JobPage(items=tuple(page), next_cursor=cursor)


def _check_size(job: Job) -> None:
    if record_bytes(job) > MAX_RECORD_BYTES:
        raise RecordTooLargeError(f"item size has exceeded the maximum allowed size ({record_bytes(job)} bytes)")


@dataclass
class FakeQueue:
    """JobQueue that records what was sent."""

    sent: list[tuple[JobMessage, int]] = field(default_factory=list)
    dead_letters: list[JobMessage] = field(default_factory=list)
    unavailable: bool = False

    def send(self, message: JobMessage, *, delay_seconds: int = 0) -> None:
        if self.unavailable:
            raise DependencyUnavailableError("SQS is down (fake)")
        self.sent.append((message, delay_seconds))

    def send_many(self, messages: Any) -> None:
        if self.unavailable:
            raise DependencyUnavailableError("SQS is down (fake)")
        self.sent.extend(messages)

    def send_to_dead_letter(self, message: JobMessage) -> None:
        if self.unavailable:
            raise DependencyUnavailableError("SQS is down (fake)")
        self.dead_letters.append(message)


class RecordingEvents(JobEvents):
    """JobEvents that keeps ``(event, job_id, details)`` tuples and the scope each was raised in."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.scope: tuple[str, str] | None = None

    @contextmanager
    def job_scope(self, job_id: str, job_type: str) -> Iterator[None]:
        previous, self.scope = self.scope, (job_id, job_type)
        try:
            yield
        finally:
            self.scope = previous

    def names(self, job_id: str | None = None) -> list[str]:
        return [name for name, jid, _ in self.events if job_id is None or jid == job_id]

    def _add(self, name: str, job_id: str, **details: Any) -> None:
        self.events.append((name, job_id, details | {"scope": self.scope}))

    def submitted(self, job: Job) -> None:
        self._add("submitted", job.job_id)

    def started(self, job: Job) -> None:
        self._add("started", job.job_id, attempt=job.attempts)

    def succeeded(self, job: Job, duration_ms: float) -> None:
        self._add("succeeded", job.job_id)

    def retry_scheduled(self, job: Job, delay_seconds: float, duration_ms: float) -> None:
        self._add("retry_scheduled", job.job_id, delay=delay_seconds)

    def failed(self, job: Job, duration_ms: float | None) -> None:
        self._add("failed", job.job_id)

    def dead_lettered(self, job: Job, route: DeadLetterRoute) -> None:
        self._add("dead_lettered", job.job_id, route=route)

    def skipped(self, job_id: str, reason: str) -> None:
        self._add("skipped", job_id, reason=reason)

    def deferred(self, job_id: str, delay_seconds: float, reason: str) -> None:
        self._add("deferred", job_id, delay=delay_seconds, reason=reason)

    def cancelled(self, job: Job) -> None:
        self._add("cancelled", job.job_id)

    def cancel_requested(self, job: Job) -> None:
        self._add("cancel_requested", job.job_id)

    def requeued(self, job: Job, reason: str) -> None:
        self._add("requeued", job.job_id, reason=reason)

    def resent(self, job: Job, reason: str) -> None:
        self._add("resent", job.job_id, reason=reason)


def run_inline(func: Any, seconds: float) -> Any:
    """A call_with_time_limit that just calls (unit tests that do not test timeouts)."""
    return func()


class InMemoryIdempotencyStore:
    """IdempotencyStore in a dict, with the same outcomes as the Powertools-backed one."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[dict[str, Any], str | None]] = {}

    def once(self, key: str, fingerprint: Any, action: Any) -> tuple[str, bool]:
        from jobq.domain.errors import IdempotencyKeyInProgressError, IdempotencyKeyReusedError

        if key in self.records:
            stored_fingerprint, result = self.records[key]
            if stored_fingerprint != dict(fingerprint):
                raise IdempotencyKeyReusedError("this Idempotency-Key was used with a different request")
            if result is None:
                raise IdempotencyKeyInProgressError("in progress")
            return result, False
        self.records[key] = (dict(fingerprint), None)
        try:
            result = action()
        except BaseException:
            del self.records[key]
            raise
        self.records[key] = (dict(fingerprint), result)
        return result, True


class InMemorySweepIndex:
    """SweepIndex over an InMemoryJobRepository: shards by the same hash as the DynamoDB table's partitions."""

    def __init__(self, repository: InMemoryJobRepository, shards: int = 4) -> None:
        self._repo = repository
        self.shard_count = shards
        self.stored: dict[int, str] = {}
        self.watching: dict[int, tuple[str, ...]] = {}
        self.version = 0
        self.scanned: list[tuple[int, str | None]] = []

    def _shard_of(self, job_id: str) -> int:
        from jobq.adapters.dynamodb import list_shard

        return int(list_shard(job_id, self.shard_count))

    def scan_shard(self, shard: int, *, after: str | None, limit: int) -> list[str]:
        self.scanned.append((shard, after))
        ids = sorted(j for j in self._repo.jobs if self._shard_of(j) == shard and (after is None or j > after))
        return ids[:limit]

    def get_many(self, job_ids: Any) -> dict[str, Job]:
        return {j: self._repo.jobs[j] for j in job_ids if j in self._repo.jobs}

    def marks(self) -> SweepMarks:
        return SweepMarks(dict(self.stored), self.version, dict(self.watching))

    def save_marks(self, before: SweepMarks, after: Any, watching: Any) -> bool:
        if self.stored != dict(before.positions) or self.version != before.version:
            return False
        self.stored = dict(after)
        self.watching = {shard: tuple(ids) for shard, ids in watching.items() if ids}
        self.version += 1
        return True

    def lower_mark(self, job_id: str) -> None:
        self.version += 1
        shard = self._shard_of(job_id)
        if shard in self.stored and self.stored[shard] > job_id[:-1]:
            self.stored[shard] = job_id[:-1]


class FakeDeadLetterQueue:
    """DeadLetterQueue in a list; ``hidden`` holds what a receive took until it is put back or deleted."""

    def __init__(self) -> None:
        from jobq.domain.ports import DeadLetter

        self._make = DeadLetter
        self.visible: list[Any] = []
        self.hidden: list[Any] = []
        self.deleted: list[Any] = []
        self._counter = 0

    def add(self, body: str) -> None:
        self._counter += 1
        self.visible.append(self._make(message_id=f"m{self._counter}", receipt_handle=f"r{self._counter}", body=body))

    def receive(self, max_messages: int, *, hide_seconds: int) -> list[Any]:
        taken, self.visible = self.visible[:max_messages], self.visible[max_messages:]
        self.hidden.extend(taken)
        return taken

    def delete(self, letter: Any) -> None:
        self.hidden.remove(letter)
        self.deleted.append(letter)

    def put_back(self, letters: Any) -> None:
        for letter in letters:
            self.hidden.remove(letter)
            self.visible.append(letter)
