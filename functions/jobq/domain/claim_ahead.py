"""Claiming a batch's first attempts ahead: which jobs, with which leases, and the writes that renew or hand
back a job so claimed. The runner makes the requests; this module decides what they hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from jobq.domain.budget import MIN_SLOT_SECONDS
from jobq.domain.models import Delivery, Job, JobStatus
from jobq.domain.ports import Claim, JobChange
from jobq.domain.registry import JobRegistry

RENEW_AFTER_SECONDS = 1.0
"""How long a job claimed ahead may wait its turn before it is renewed (re-read, its lease from now)."""


def plan(
    deliveries: Sequence[Delivery],
    registry: JobRegistry,
    *,
    now: datetime,
    available_seconds: float,
    lease_grace_seconds: float,
    lease_id: Callable[[], str],
) -> list[Claim]:
    """The claims of a batch's jobs, in order, one per job of a registered type, while their timeouts with
    those of the jobs before them fit in ``available_seconds`` (the first job, any). Each lease covers those
    timeouts, so that it holds while the job waits its turn and expires soon after the invocation could
    have finished the job. None for a batch of one, or with less time than a job's smallest slot."""
    claims: dict[str, Claim] = {}
    waited = 0.0
    for delivery in deliveries:
        job_id = delivery.message.job_id
        job_type = registry.get(delivery.message.type)
        if job_type is None or job_id in claims:
            continue
        waited += job_type.timeout_seconds
        if claims and waited > available_seconds:  # it might not start, should those before it take their timeouts
            break
        lease = min(waited, available_seconds) + lease_grace_seconds
        claims[job_id] = Claim(job_id, lease_id(), now + timedelta(seconds=lease))
    if len(claims) < 2 or available_seconds < MIN_SLOT_SECONDS:
        return []
    return list(claims.values())


def renewal(job: Job, now: datetime, *, timeout: float, lease_grace_seconds: float) -> JobChange | None:
    """The write that renews ``job`` before it starts, if it waited its turn for longer than
    ``RENEW_AFTER_SECONDS``: the lease and ``started_at`` from now (conditional on the lease, it also reads the
    record back: a takeover or a cancel request made while it waited is seen). None if it did not wait so long."""
    if (now - job.updated_at).total_seconds() <= RENEW_AFTER_SECONDS:
        return None
    return JobChange(
        status=JobStatus.RUNNING,
        at=now,
        started_at=now,
        lease_expires_at=now + timedelta(seconds=timeout + lease_grace_seconds),
    )


def hand_back(job: Job, now: datetime) -> JobChange:
    """The write that hands back a job claimed ahead that its invocation has no time left for: queued again,
    the attempt it never started uncounted."""
    return JobChange(status=JobStatus.QUEUED, at=now, attempts=job.attempts - 1, release_lease=True)
