"""Many jobs in the moto stack's table, and a count of the DynamoDB reads a request makes.

Used by the listing tests (a few thousand jobs) and ``bench/listing.py`` (tens of thousands).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from jobq.domain.models import Job, JobError, JobStatus, new_job_id
from jobq.domain.ports import Expect, JobChange
from tests.support.callers import ALICE

T0 = datetime(2026, 6, 1, tzinfo=UTC)


@dataclass
class Reads:
    """DynamoDB read requests and the items they returned."""

    requests: Counter[str] = field(default_factory=Counter)
    items: int = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def fill(succeeded: int, failed: int, *, owner: str = ALICE) -> list[str]:
    """Store ``succeeded`` succeeded jobs and ``failed`` failed ones (failed by a status change, as the worker
    fails them), spread over time; the failed jobs' ids, newest first."""
    from jobq import wiring
    from jobq.adapters.dynamodb import DynamoDBJobRepository
    from jobq.settings import get_settings

    settings = get_settings()
    repository = DynamoDBJobRepository(wiring.jobs_table(settings), ttl_days=settings.job_ttl_days)
    every = max(1, (succeeded + failed) // max(1, failed))
    failed_ids: list[str] = []
    for n in range(succeeded + failed):
        at = T0 + timedelta(milliseconds=n)
        will_fail = len(failed_ids) < failed and n % every == every // 2
        job = Job(
            job_id=new_job_id(at),
            type="echo",
            owner=owner,
            status=JobStatus.QUEUED if will_fail else JobStatus.SUCCEEDED,
            payload={"n": n},
            result=None if will_fail else {"n": n},
            attempts=1,
            max_attempts=3,
            created_at=at,
            updated_at=at,
            available_at=at,
        )
        repository.insert(job)
        if will_fail:
            error = JobError(type="ValueError", message=f"job {n} broke", retryable=False)
            change = JobChange(status=JobStatus.FAILED, at=at, error=error, finished_at=at)
            repository.update(job.job_id, change, expect=Expect.status(JobStatus.QUEUED))
            failed_ids.append(job.job_id)
    return list(reversed(failed_ids))


@contextmanager
def counting_reads() -> Iterator[Reads]:
    """Count the reads of the functions' DynamoDB client (Query, GetItem, BatchGetItem, Scan) while inside."""
    from jobq.adapters.aws import dynamodb_client

    reads = Reads()

    def count(event_name: str, parsed: dict[str, Any], **kwargs: Any) -> None:
        operation = event_name.rsplit(".", 1)[1]
        if operation not in {"Query", "GetItem", "BatchGetItem", "Scan"}:
            return
        reads.requests[operation] += 1
        if "Items" in parsed:
            reads.items += len(parsed["Items"])
        elif "Item" in parsed:
            reads.items += 1
        for items in parsed.get("Responses", {}).values():
            reads.items += len(items)

    events = dynamodb_client().meta.events
    events.register("after-call.dynamodb", count)
    try:
        yield reads
    finally:
        events.unregister("after-call.dynamodb", count)
