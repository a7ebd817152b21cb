"""A status-filtered listing reads in proportion to its page, not to the table (through the API function)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def test_a_succeeded_job_costs_four_write_units_index_writes_included(make_stack: Callable[..., Stack]) -> None:
    """SPEC section 8: at most 4. Counted from what is written: each write's item size in 1 KB units, plus
    one unit for each index whose key the write adds, changes or removes (a GSI's projection is keys + type)."""
    import math

    from jobq.adapters.aws import dynamodb_client
    from jobq.adapters.dynamodb.codec import item_bytes

    stack = make_stack()
    declared = stack.template.properties("JobsTable")["GlobalSecondaryIndexes"]
    index_keys = [{key["AttributeName"] for key in index["KeySchema"]} for index in declared]
    writes: list[tuple[str, dict[str, Any]]] = []

    def record(event_name: str, params: dict[str, Any], **kwargs: Any) -> None:
        operation = event_name.rsplit(".", 1)[1]
        if operation in {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}:
            writes.append((operation, params))

    events = dynamodb_client().meta.events
    events.register("before-parameter-build.dynamodb", record)
    try:
        job = stack.submit("echo", {"n": 1})
        stack.drain()
    finally:
        events.unregister("before-parameter-build.dynamodb", record)
    assert stack.job(job["job_id"])["status"] == "succeeded"
    item = stack.dynamodb.get_item(TableName=stack.table_name, Key=_key(stack, job["job_id"]))["Item"]
    assert [operation for operation, _ in writes] == ["PutItem", "UpdateItem", "UpdateItem"]
    units = 0
    put = writes[0][1]["Item"]
    units += math.ceil(item_bytes(put) / 1024) + sum(keys <= set(put) for keys in index_keys)
    present = set(put)
    for _, update in writes[1:]:
        names = update["ExpressionAttributeNames"]
        sets, _, removes = update["UpdateExpression"].partition(" REMOVE ")
        set_names = {names[token] for token in sets.replace(",", " ").split() if token in names}
        removed = {names[token] for token in removes.replace(",", " ").split() if token in names} & present
        after = (present | set_names) - removed
        written = [keys for keys in index_keys if (keys & (set_names | removed)) and (keys <= present or keys <= after)]
        assert written == [], f"a status change wrote an index: {written}"
        present = after
        units += math.ceil(item_bytes(item) / 1024)
    assert units == 4


def _key(stack: Stack, job_id: str) -> dict[str, Any]:
    from jobq import wiring
    from jobq.settings import get_settings

    return wiring.jobs_table(get_settings()).key(job_id)
