"""A status-filtered listing reads in proportion to its page, not to the table (through the API function)."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.callers import ADMIN, ALICE
from tests.support.listing_reads import counting_reads, fill
from tests.support.stack import Stack

SHARDS = 16


def test_failed_jobs_among_thousands_of_succeeded_ones_cost_reads_for_the_failed_ones(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(AdminPrincipals=ADMIN)
    failed = fill(succeeded=2000, failed=10)
    for caller in (ADMIN, ALICE):  # every owner's (StatusIndex), and one caller's own (OwnerStatusIndex)
        with counting_reads() as reads:
            page = stack.api("GET", "/jobs", query="status=failed&limit=100", caller=caller)
        assert page.status == 200, page.body
        assert [job["job_id"] for job in page.body["items"]] == failed
        assert page.body["next_cursor"] is None
        # One query per shard (16), one BatchGetItem: 10 index entries and 10 items, not 2,010.
        assert reads.requests == {"Query": SHARDS, "BatchGetItem": 1}, reads.requests
        assert reads.items == 2 * len(failed)


def test_a_status_the_indexes_do_not_hold_still_reads_at_most_a_thousand_items_a_page(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(AdminPrincipals=ADMIN)
    fill(succeeded=1200, failed=0)
    with counting_reads() as reads:
        page = stack.api("GET", "/jobs", query="status=running&limit=100", caller=ADMIN)
    assert page.body["items"] == []
    assert page.body["next_cursor"] is not None  # not done: the next page reads on
    assert reads.items <= 2 * 1000 + SHARDS * 101


def test_a_page_of_big_jobs_stays_under_what_lambda_and_api_gateway_return(
    make_stack: Callable[..., Stack],
) -> None:
    """35 jobs of 190 KB made one 13.3 MB answer to GET /jobs?limit=100; Lambda returns at most 6 MB."""
    stack = make_stack()
    submitted = {stack.submit("echo", {"blob": '"quoted" ' * 21_000})["job_id"] for _ in range(35)}
    seen: list[str] = []
    query = "limit=100"
    pages = 0
    while True:
        page = stack.api("GET", "/jobs", query=query)
        pages += 1
        assert page.status == 200
        assert page.response_bytes < 6 * 1024 * 1024, page.response_bytes
        seen += [job["job_id"] for job in page.body["items"]]
        if page.body["next_cursor"] is None:
            break
        query = f"limit=100&cursor={page.body['next_cursor']}"
    assert sorted(seen) == sorted(submitted)
    assert len(seen) == len(set(seen))
    assert pages >= 2
