"""Claiming a batch's first attempts ahead: which jobs, with which leases, the request that claims them, and
the writes that renew or hand back a job so claimed."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from jobq.domain.budget import MIN_SLOT_SECONDS
from jobq.domain.errors import DependencyUnavailableError
from jobq.domain.models import Delivery, Job, JobStatus
from jobq.domain.ports import Claim, ConditionFailedError, Expect, JobChange, JobEvents, JobRepository
from jobq.domain.registry import JobRegistry

_log = logging.getLogger(__name__)

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


def claim(
    repository: JobRepository,
    deliveries: Sequence[Delivery],
    registry: JobRegistry,
    *,
    now: datetime,
    available_seconds: float,
    lease_grace_seconds: float,
) -> dict[str, Job]:
    """The jobs ``plan`` picks, claimed in one request, by job id; none if the request fails (each is then
    claimed alone in its turn)."""
    claims = plan(
        deliveries,
        registry,
        now=now,
        available_seconds=available_seconds,
        lease_grace_seconds=lease_grace_seconds,
        lease_id=lambda: uuid.uuid4().hex,
    )
    if not claims:
        return {}
    try:
        claimed = repository.claim_fresh(claims, now=now)
    except DependencyUnavailableError as exc:
        _log.warning("could not claim the batch's jobs at once, claiming one at a time: %s", exc.message)
        return {}
    except Exception:  # noqa: BLE001 - an answer it could not read, say: the rest still run, one at a time
        _log.exception("claiming the batch's jobs at once failed; claiming one at a time")
        return {}
    return {job.job_id: job for job in claimed if job is not None}


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


def release(repository: JobRepository, events: JobEvents, job: Job, now: datetime) -> bool:
    """Hand ``job`` back (``hand_back``; ConditionFailedError if its lease is lost). A cancel asked for while
    it waited its turn ends it there, as for any queued job: True then."""
    try:
        released = repository.update(job.job_id, hand_back(job, now), expect=Expect.holding(job))
    except DependencyUnavailableError as exc:
        _log.warning("could not hand back job %s, claimed but not started: %s", job.job_id, exc.message)
        return False
    if not released.cancel_requested:
        return False
    try:
        cancelled = repository.update(
            job.job_id,
            JobChange.cancel_queued(now),
            expect=Expect.status(JobStatus.QUEUED, attempts=released.attempts),
        )
    except (ConditionFailedError, DependencyUnavailableError):
        return False  # claimed since, or the table is down: the claim that starts it honours the request
    events.cancelled(cancelled)
    return True
