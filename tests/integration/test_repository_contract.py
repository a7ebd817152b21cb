"""One contract, two repositories: the in-memory fake the unit tests use and DynamoDB (on moto).

Every case runs against both, so the fake cannot drift from the real thing: claim conditions, leases,
conditional updates and deletes, listing order, filters and cursors.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobq.domain.documents import document_bytes
from jobq.domain.errors import InvalidCursorError
from jobq.domain.models import (
    MAX_RECORD_BYTES,
    AttemptFailure,
    Job,
    JobError,
    JobStatus,
    ListQuery,
    Progress,
    new_job_id,
)
from jobq.domain.ports import (
    Claim,
    ConditionFailedError,
    Expect,
    JobChange,
    JobRepository,
    PageBytes,
    RecordTooLargeError,
)
from tests.support.callers import ALICE, BOB
from tests.support.fakes import InMemoryJobRepository
from tests.support.stack import Stack

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)  # whole milliseconds: what DynamoDB keeps
PAST = NOW - timedelta(seconds=30)
FUTURE = NOW + timedelta(seconds=30)


@pytest.fixture(params=["in-memory", "dynamodb"])
def repo(request: pytest.FixtureRequest, make_stack: Callable[..., Stack]) -> JobRepository:
    if request.param == "in-memory":
        return InMemoryJobRepository()
    make_stack()
    from jobq import wiring
    from jobq.adapters.dynamodb import DynamoDBJobRepository
    from jobq.settings import get_settings

    settings = get_settings()
    return DynamoDBJobRepository(wiring.jobs_table(settings), ttl_days=settings.job_ttl_days)


_ids: Iterator[int] = itertools.count(1)


def a_job(**fields: Any) -> Job:
    """A queued, due echo job with a fresh, time-ordered id; any field overridden."""
    defaults: dict[str, Any] = {
        "job_id": new_job_id(NOW + timedelta(milliseconds=next(_ids))),
        "type": "echo",
        "owner": ALICE,
        "status": JobStatus.QUEUED,
        "payload": {"n": 1},
        "max_attempts": 3,
        "created_at": NOW,
        "updated_at": NOW,
        "available_at": PAST,
    }
    return Job(**(defaults | fields))


def stored(repo: JobRepository, **fields: Any) -> Job:
    job = a_job(**fields)
    repo.insert(job)
    return job


# -- single items -----------------------------------------------------------------------------------


def test_insert_then_get_returns_the_same_job(repo: JobRepository) -> None:
    error = JobError(type="ValueError", message="boom \u2603", retryable=True)
    job = stored(
        repo,
        result={"a": [1, 2.5, None]},
        error=error,
        history=(AttemptFailure.of(error, attempt=1, at=NOW),),
        attempts=1,
    )
    assert repo.get(job.job_id) == job


def test_insert_many_stores_every_job_or_none(repo: JobRepository) -> None:
    jobs = [a_job(payload={"n": n}) for n in range(30)]
    repo.insert_many(jobs)
    assert [repo.get(job.job_id) for job in jobs] == jobs
    too_big = [a_job(), a_job(payload={"blob": "x" * MAX_RECORD_BYTES})]
    with pytest.raises(RecordTooLargeError):
        repo.insert_many(too_big)
    assert repo.get(too_big[0].job_id) is None


def test_get_of_a_missing_job_is_none(repo: JobRepository) -> None:
    assert repo.get(a_job().job_id) is None


def test_insert_of_an_existing_id_fails_with_the_stored_job(repo: JobRepository) -> None:
    job = stored(repo)
    with pytest.raises(ConditionFailedError) as caught:
        repo.insert(job.model_copy(update={"payload": {"other": True}}))
    assert caught.value.current == job


# -- claim ------------------------------------------------------------------------------------------

_LEASES = {
    "none": (None, None),
    "expired": ("old-lease", PAST),
    "ends-now": ("old-lease", NOW),
    "live": ("old-lease", FUTURE),
}
_STATES = [
    (status, attempts, available_at, lease)
    for status in JobStatus
    for attempts in (0, 2, 3)
    for available_at in (PAST, NOW, FUTURE)
    for lease in _LEASES
]


def test_claim_succeeds_exactly_when_the_job_is_claimable(repo: JobRepository) -> None:
    until = NOW + timedelta(seconds=60)
    for status, attempts, available_at, lease in _STATES:
        state = f"{status.value} attempts={attempts}/3 available_at={available_at:%X} lease={lease}"
        lease_id, lease_expires_at = _LEASES[lease]
        job = stored(
            repo,
            status=status,
            attempts=attempts,
            available_at=available_at,
            lease_id=lease_id,
            lease_expires_at=lease_expires_at,
        )
        if job.claimable(NOW):
            claimed = repo.claim(job.job_id, now=NOW, lease_id="new-lease", lease_expires_at=until)
            assert claimed == job.model_copy(
                update={
                    "status": JobStatus.RUNNING,
                    "claimed_from": status,
                    "attempts": attempts + 1,
                    "lease_id": "new-lease",
                    "lease_expires_at": until,
                    "started_at": NOW,
                    "updated_at": NOW,
                }
            ), state
            assert repo.get(job.job_id) == claimed, state
        else:
            with pytest.raises(ConditionFailedError) as caught:
                repo.claim(job.job_id, now=NOW, lease_id="new-lease", lease_expires_at=until)
            assert caught.value.current == job, state
            assert repo.get(job.job_id) == job, state
    claimable = sum(
        a_job(status=s, attempts=n, available_at=t, lease_id=_LEASES[le][0], lease_expires_at=_LEASES[le][1]).claimable(
            NOW
        )
        for s, n, t, le in _STATES
    )
    assert 0 < claimable < len(_STATES)  # the grid has both outcomes


def test_claim_of_a_missing_job_fails_with_no_current(repo: JobRepository) -> None:
    with pytest.raises(ConditionFailedError) as caught:
        repo.claim(a_job().job_id, now=NOW, lease_id="l", lease_expires_at=FUTURE)
    assert caught.value.current is None


def test_two_claims_of_one_delivery_leave_one_winner(repo: JobRepository) -> None:
    job = stored(repo)
    first = repo.claim(job.job_id, now=NOW, lease_id="a", lease_expires_at=FUTURE)
    with pytest.raises(ConditionFailedError) as caught:
        repo.claim(job.job_id, now=NOW, lease_id="b", lease_expires_at=FUTURE)
    assert caught.value.current == first


def test_claim_fresh_claims_exactly_the_claimable_jobs_never_attempted(repo: JobRepository) -> None:
    until = NOW + timedelta(seconds=60)
    jobs = [
        stored(
            repo,
            status=status,
            attempts=attempts,
            available_at=available_at,
            lease_id=_LEASES[lease][0],
            lease_expires_at=_LEASES[lease][1],
        )
        for status, attempts, available_at, lease in _STATES
    ]
    single = stored(repo, max_attempts=1)  # never claimed ahead: a dead invocation would cost its only attempt
    missing = a_job()
    asked = [*jobs, single, missing]
    answers = repo.claim_fresh([Claim(job.job_id, f"lease-{i}", until) for i, job in enumerate(asked)], now=NOW)
    assert len(answers) == len(asked)
    for i, (job, answer) in enumerate(zip(asked, answers, strict=True)):
        state = f"{job.status.value} attempts={job.attempts} available_at={job.available_at:%X} lease={job.lease_id}"
        fresh = job.attempts == 0 and job.max_attempts > 1 and job.status is JobStatus.QUEUED
        if job is not missing and fresh and job.claimable(NOW):
            claimed = job.model_copy(
                update={
                    "status": JobStatus.RUNNING,
                    "claimed_from": JobStatus.QUEUED,
                    "attempts": 1,
                    "lease_id": f"lease-{i}",
                    "lease_expires_at": until,
                    "started_at": NOW,
                    "updated_at": NOW,
                }
            )
            assert answer == claimed, state
            assert repo.get(job.job_id) == claimed, state
        else:
            assert answer is None, state
            assert repo.get(job.job_id) == (None if job is missing else job), state
    assert 0 < sum(answer is not None for answer in answers) < len(asked)  # both outcomes, in one request each 25


def test_claim_fresh_sent_again_answers_its_own_claims_and_no_one_elses(repo: JobRepository) -> None:
    """botocore resends a request whose answer was lost: the statements that applied then fail their
    condition now, and the job, running under the claim's own lease, is still the claim's."""
    mine, theirs = stored(repo), stored(repo)
    claims = [Claim(mine.job_id, "mine", FUTURE), Claim(theirs.job_id, "theirs", FUTURE)]
    first = repo.claim_fresh(claims, now=NOW)
    assert all(job is not None for job in first)
    again = repo.claim_fresh([claims[0], Claim(theirs.job_id, "another", FUTURE)], now=NOW)
    assert again == [first[0], None]
    assert repo.get(theirs.job_id) == first[1]


def test_claim_fresh_clears_the_progress_of_a_retried_job(repo: JobRepository) -> None:
    progress = Progress(done=1, total=2, message="half", updated_at=PAST)
    job = stored(repo, progress=progress, retries=1)
    [claimed] = repo.claim_fresh([Claim(job.job_id, "l", FUTURE)], now=NOW)
    assert claimed is not None
    assert claimed.progress is None
    assert repo.get(job.job_id) == claimed


# -- conditional updates and deletes ----------------------------------------------------------------


def test_update_applies_set_fields_clears_none_and_leaves_unset_alone(repo: JobRepository) -> None:
    job = stored(
        repo,
        status=JobStatus.RUNNING,
        attempts=1,
        lease_id="lease",
        lease_expires_at=FUTURE,
        error=JobError(type="E", message="earlier", retryable=True),
        started_at=NOW,
    )
    entry = AttemptFailure(type="E", message="m", retryable=True, attempt=1, at=NOW)
    later = NOW + timedelta(seconds=5)
    change = JobChange(
        status=JobStatus.SUCCEEDED,
        at=later,
        result={"ok": True},
        error=None,
        finished_at=later,
        history=(entry,),
        release_lease=True,
    )
    updated = repo.update(job.job_id, change, expect=Expect.status(JobStatus.RUNNING, lease_id="lease"))
    assert updated == job.model_copy(
        update={
            "status": JobStatus.SUCCEEDED,
            "updated_at": later,
            "result": {"ok": True},
            "error": None,
            "finished_at": later,
            "history": (entry,),
            "lease_id": None,
            "lease_expires_at": None,
        }
    )
    assert repo.get(job.job_id) == updated


def test_progress_and_cancel_requests_are_stored_cleared_and_reset_by_a_claim(repo: JobRepository) -> None:
    progress = Progress(done=3, total=7.5, message="three \u2603", updated_at=NOW)
    job = stored(repo, progress=progress, cancel_requested=True)
    assert repo.get(job.job_id) == job
    cleared = repo.update(
        job.job_id,
        JobChange(status=JobStatus.QUEUED, at=NOW, progress=None, cancel_requested=False),
        expect=Expect.status(JobStatus.QUEUED),
    )
    assert (cleared.progress, cleared.cancel_requested) == (None, False)
    assert repo.get(job.job_id) == cleared
    asked = repo.update(
        job.job_id,
        JobChange(status=JobStatus.QUEUED, at=NOW, progress=Progress(done=1, updated_at=NOW), cancel_requested=True),
        expect=Expect.status(JobStatus.QUEUED),
    )
    assert asked.progress == Progress(done=1, updated_at=NOW)
    assert asked.cancel_requested
    claimed = repo.claim(job.job_id, now=NOW, lease_id="l", lease_expires_at=FUTURE)
    assert claimed.progress is None  # a new attempt starts with no progress
    assert claimed.cancel_requested  # the request stays: the runner honours it
    assert repo.get(job.job_id) == claimed


def test_update_stores_the_history_it_is_given_and_the_dropped_count(repo: JobRepository) -> None:
    first = AttemptFailure(type="E", message="one", retryable=True, attempt=1, at=NOW)
    second = AttemptFailure(type="E", message="two", retryable=True, attempt=2, at=NOW)
    job = stored(repo, history=(first,))
    change = JobChange(
        status=JobStatus.QUEUED,
        at=NOW,
        history=(first, second),
        attempts=0,
        available_at=FUTURE,
        retries=4,
    )
    updated = repo.update(job.job_id, change, expect=Expect.status(JobStatus.QUEUED))
    assert (updated.history, updated.history_dropped) == ((first, second), 0)
    assert (updated.attempts, updated.available_at, updated.retries) == (0, FUTURE, 4)
    trimmed = repo.update(
        job.job_id,
        JobChange(status=JobStatus.QUEUED, at=NOW, history=(second,), history_dropped=1),
        expect=Expect.status(JobStatus.QUEUED),
    )
    assert (trimmed.history, trimmed.history_dropped, trimmed.retries) == ((second,), 1, 4)
    assert repo.get(job.job_id) == trimmed


def test_a_record_up_to_the_item_limit_is_stored_and_one_over_it_is_refused_whole(repo: JobRepository) -> None:
    job = stored(repo, payload={"blob": "p" * 300_000})
    assert repo.get(job.job_id) == job
    with pytest.raises(RecordTooLargeError):
        repo.insert(a_job(payload={"blob": "p" * MAX_RECORD_BYTES}))
    assert repo.get(job.job_id) == job


@pytest.mark.parametrize(
    "expect",
    [
        Expect.status(JobStatus.QUEUED),
        Expect.status(JobStatus.RUNNING, lease_id="someone-else"),
        Expect.status(JobStatus.RUNNING, attempts=2),
        Expect.status(JobStatus.RUNNING, owner=BOB),
        Expect.status(JobStatus.SUCCEEDED, JobStatus.FAILED),
    ],
    ids=["other-status", "other-lease", "other-attempts", "other-owner", "none-of-several"],
)
def test_update_whose_condition_fails_changes_nothing(repo: JobRepository, expect: Expect) -> None:
    job = stored(repo, status=JobStatus.RUNNING, attempts=1, lease_id="lease", lease_expires_at=FUTURE)
    with pytest.raises(ConditionFailedError) as caught:
        repo.update(job.job_id, JobChange(status=JobStatus.FAILED, at=NOW), expect=expect)
    assert caught.value.current == job
    assert repo.get(job.job_id) == job


def test_update_holds_when_one_of_several_statuses_and_the_attempts_match(repo: JobRepository) -> None:
    job = stored(repo, status=JobStatus.CANCELLED, attempts=2)
    expect = Expect.status(JobStatus.FAILED, JobStatus.CANCELLED, attempts=2, owner=ALICE)
    updated = repo.update(job.job_id, JobChange(status=JobStatus.QUEUED, at=NOW, attempts=0), expect=expect)
    assert (updated.status, updated.attempts) == (JobStatus.QUEUED, 0)


def test_update_of_a_missing_job_fails_with_no_current(repo: JobRepository) -> None:
    with pytest.raises(ConditionFailedError) as caught:
        repo.update(a_job().job_id, JobChange(status=JobStatus.FAILED, at=NOW), expect=Expect.status(JobStatus.QUEUED))
    assert caught.value.current is None


def test_delete_is_conditional(repo: JobRepository) -> None:
    job = stored(repo, attempts=1)
    with pytest.raises(ConditionFailedError):
        repo.delete(job.job_id, expect=Expect.status(JobStatus.QUEUED, attempts=0))
    assert repo.get(job.job_id) == job
    repo.delete(job.job_id, expect=Expect.status(JobStatus.QUEUED, attempts=1))
    assert repo.get(job.job_id) is None


# -- listing ----------------------------------------------------------------------------------------


def _all_pages(repo: JobRepository, query: ListQuery) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = repo.list_jobs(query.model_copy(update={"cursor": cursor}))
        pages.append([job.job_id for job in page.items])
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 50, "the listing does not end"


def test_listing_is_newest_first_and_pages_cover_every_job_once(repo: JobRepository) -> None:
    jobs = [stored(repo) for _ in range(23)]
    pages = _all_pages(repo, ListQuery(limit=5))
    assert [job_id for page in pages for job_id in page] == [job.job_id for job in reversed(jobs)]
    assert all(len(page) == 5 for page in pages[:4])


def test_listing_filters_by_status_and_type(repo: JobRepository) -> None:
    kinds = [(JobStatus.FAILED, "fail"), (JobStatus.SUCCEEDED, "echo"), (JobStatus.FAILED, "echo")] * 4
    jobs = [stored(repo, status=status, type=job_type) for status, job_type in kinds]
    newest_first = list(reversed(jobs))

    failed = _all_pages(repo, ListQuery(status=JobStatus.FAILED, limit=3))
    assert [i for page in failed for i in page] == [j.job_id for j in newest_first if j.status is JobStatus.FAILED]
    echo = _all_pages(repo, ListQuery(type="echo", limit=3))
    assert [i for page in echo for i in page] == [j.job_id for j in newest_first if j.type == "echo"]
    both = _all_pages(repo, ListQuery(status=JobStatus.FAILED, type="echo", limit=100))
    assert both == [[j.job_id for j in newest_first if j.status is JobStatus.FAILED and j.type == "echo"]]


def test_listing_by_failed_or_cancelled_follows_each_status_change(repo: JobRepository) -> None:
    failed = [stored(repo, status=JobStatus.FAILED, owner=ALICE if n % 2 else BOB) for n in range(6)]
    for _ in range(4):
        stored(repo, status=JobStatus.SUCCEEDED)
    cancelled = stored(repo, status=JobStatus.CANCELLED, owner=ALICE)

    def listed(status: JobStatus, owner: str | None = None) -> list[str]:
        return [i for page in _all_pages(repo, ListQuery(status=status, owner=owner, limit=2)) for i in page]

    assert listed(JobStatus.FAILED) == [job.job_id for job in reversed(failed)]
    assert listed(JobStatus.FAILED, ALICE) == [job.job_id for job in reversed(failed) if job.owner == ALICE]
    assert listed(JobStatus.CANCELLED) == [cancelled.job_id]
    retried = repo.update(  # an API retry: failed -> queued
        failed[1].job_id, JobChange(status=JobStatus.QUEUED, at=NOW), expect=Expect.status(JobStatus.FAILED)
    )
    repo.update(  # ... and its next attempt ends cancelled
        retried.job_id, JobChange(status=JobStatus.CANCELLED, at=NOW), expect=Expect.status(JobStatus.QUEUED)
    )
    assert failed[1].job_id not in listed(JobStatus.FAILED)
    assert listed(JobStatus.CANCELLED) == [cancelled.job_id, failed[1].job_id]
    assert listed(JobStatus.CANCELLED, ALICE) == [cancelled.job_id, failed[1].job_id]
    assert listed(JobStatus.CANCELLED, BOB) == []


def test_a_page_stops_before_its_documents_pass_its_byte_limit(repo: JobRepository) -> None:
    jobs = [stored(repo, payload={"blob": "x" * 40_000}) for _ in range(9)]
    small = stored(repo)
    limit = 3 * document_bytes(jobs[0]) + 100
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = repo.list_jobs(ListQuery(limit=100, cursor=cursor), PageBytes(limit, document_bytes))
        pages += 1
        assert page.items, "every page holds at least one job"
        assert sum(document_bytes(job) for job in page.items) <= limit
        seen += [job.job_id for job in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [small.job_id, *(job.job_id for job in reversed(jobs))]  # each once, newest first
    assert pages == 4  # [small + 2 big], then 3, 3, 1: the cut falls where the next job would not fit
    lone = repo.list_jobs(
        ListQuery(limit=100), PageBytes(10, document_bytes)
    )  # one job over the limit still gets a page
    assert [job.job_id for job in lone.items] == [small.job_id]


def test_listing_by_owner_reads_only_that_owners_jobs(repo: JobRepository) -> None:
    mine = [stored(repo, owner=ALICE, status=JobStatus.FAILED if n % 2 else JobStatus.QUEUED) for n in range(7)]
    theirs = [stored(repo, owner=BOB) for _ in range(5)]
    pages = _all_pages(repo, ListQuery(owner=ALICE, limit=3))
    assert [i for page in pages for i in page] == [job.job_id for job in reversed(mine)]
    failed = _all_pages(repo, ListQuery(owner=ALICE, status=JobStatus.FAILED, limit=100))
    assert failed == [[job.job_id for job in reversed(mine) if job.status is JobStatus.FAILED]]
    assert _all_pages(repo, ListQuery(owner=BOB, limit=100)) == [[job.job_id for job in reversed(theirs)]]
    assert _all_pages(repo, ListQuery(owner="arn:aws:iam::000000000000:user/nobody")) == [[]]
    everyone = _all_pages(repo, ListQuery(limit=100))
    assert sorted(everyone[0]) == sorted(job.job_id for job in mine + theirs)


def test_listing_of_nothing_is_one_empty_page(repo: JobRepository) -> None:
    page = repo.list_jobs(ListQuery())
    assert (page.items, page.next_cursor) == ((), None)


@pytest.mark.parametrize("cursor", ["not a cursor", "eyJ2IjogOTl9", "", "%%%"])
def test_a_cursor_the_repository_did_not_issue_is_refused(repo: JobRepository, cursor: str) -> None:
    stored(repo)
    with pytest.raises(InvalidCursorError):
        repo.list_jobs(ListQuery(cursor=cursor))


def test_a_cursor_issued_for_other_filters_is_refused(repo: JobRepository) -> None:
    for _ in range(3):
        stored(repo)
    cursor = repo.list_jobs(ListQuery(limit=1)).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidCursorError):
        repo.list_jobs(ListQuery(limit=1, status=JobStatus.QUEUED, cursor=cursor))
    with pytest.raises(InvalidCursorError):
        repo.list_jobs(ListQuery(limit=1, type="echo", cursor=cursor))
    with pytest.raises(InvalidCursorError):
        repo.list_jobs(ListQuery(limit=1, owner=ALICE, cursor=cursor))
    assert len(repo.list_jobs(ListQuery(limit=1, cursor=cursor)).items) == 1
