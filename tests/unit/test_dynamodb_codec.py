"""The DynamoDB adapter's pure parts: item codec, listing shards, listing cursors."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from jobq.adapters.dynamodb.codec import decode_job, encode_job
from jobq.adapters.dynamodb.listing import Cursor
from jobq.adapters.dynamodb.schema import (
    KEY_ATTRIBUTE,
    LIST_SHARD_ATTRIBUTE,
    TTL_ATTRIBUTE,
    list_shard,
)
from jobq.domain.errors import InvalidCursorError
from jobq.domain.models import AttemptFailure, Job, JobError, JobStatus, ListQuery, new_job_id

NOW = datetime(2026, 3, 4, 5, 6, 7, 891000, tzinfo=UTC)


def minimal_job(**fields: object) -> Job:
    base: dict[str, object] = {
        "job_id": new_job_id(NOW),
        "type": "echo",
        "owner": "arn:aws:iam::000000000000:user/alice",
        "status": JobStatus.QUEUED,
        "payload": {},
        "max_attempts": 3,
        "created_at": NOW,
        "updated_at": NOW,
        "available_at": NOW,
    }
    return Job(**(base | fields))


def full_job() -> Job:
    error = JobError(type="RequestedFailureError", message="boom \u2603", retryable=True)
    return minimal_job(
        type="fail",
        status=JobStatus.RUNNING,
        payload={"times": 2, "nested": {"list": [1, 2.5, None, "x"], "ok": True}, "unicode": "\u00e9\u4e2d"},
        result={"attempts": 2, "values": [1, {"a": None}]},
        error=error,
        history=(
            AttemptFailure(type="RequestedFailureError", message="first", retryable=True, attempt=1, at=NOW),
            AttemptFailure(
                type="JobTimeoutError", message="second", retryable=True, attempt=2, at=NOW + timedelta(seconds=7)
            ),
        ),
        attempts=2,
        max_attempts=5,
        updated_at=NOW + timedelta(seconds=10),
        started_at=NOW + timedelta(seconds=9),
        finished_at=NOW + timedelta(seconds=11),
        available_at=NOW + timedelta(seconds=20, milliseconds=5),
        lease_id="lease-0123456789abcdef",
        lease_expires_at=NOW + timedelta(seconds=330, milliseconds=250),
    )


def test_round_trip_of_a_job_with_everything_set() -> None:
    job = full_job()
    item = encode_job(job, expires_at=NOW + timedelta(days=30))
    assert decode_job(item) == job


def test_round_trip_of_a_minimal_job() -> None:
    job = minimal_job()
    item = encode_job(job, expires_at=NOW + timedelta(days=1))
    assert decode_job(item) == job
    for absent in ("result", "error", "history", "started_at", "finished_at", "lease_id", "lease_expires_at"):
        assert absent not in item


@pytest.mark.parametrize("result", [0, "", [], False, "text", [1, 2], 3.5])
def test_round_trip_of_non_object_results(result: object) -> None:
    job = minimal_job(status=JobStatus.SUCCEEDED, result=result)
    decoded = decode_job(encode_job(job, expires_at=NOW))
    assert decoded.result == result
    assert type(decoded.result) is type(result)


def test_encoded_item_shape() -> None:
    job = full_job()
    expires = NOW + timedelta(days=30)
    item = encode_job(job, expires_at=expires)
    assert item[KEY_ATTRIBUTE] == {"S": job.job_id}
    assert item["status"] == {"S": "running"}
    assert item["attempts"] == {"N": "2"}
    assert item["max_attempts"] == {"N": "5"}
    assert item[TTL_ATTRIBUTE] == {"N": str(int(expires.timestamp()))}
    assert item["created_at"] == {"S": "2026-03-04T05:06:07.891Z"}
    assert item["available_at"] == {"N": str(int((NOW + timedelta(seconds=20, milliseconds=5)).timestamp() * 1000))}
    assert json.loads(item["payload"]["S"]) == job.payload
    assert len(item["history"]["L"]) == 2
    # The partition and index keys are the repository's business, not the codec's.
    assert LIST_SHARD_ATTRIBUTE not in item


def test_decoded_timestamps_are_utc() -> None:
    decoded = decode_job(encode_job(full_job(), expires_at=NOW))
    for moment in (decoded.created_at, decoded.updated_at, decoded.available_at, decoded.lease_expires_at):
        assert moment is not None
        assert moment.utcoffset() == timedelta(0)


# -- list_shard -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shards", [1, 4, 10, 16, 100])
def test_list_shard_is_stable_and_in_range(shards: int) -> None:
    ids = [new_job_id(NOW + timedelta(milliseconds=n)) for n in range(300)]
    for job_id in ids:
        shard = list_shard(job_id, shards)
        assert shard == list_shard(job_id, shards)
        assert len(shard) == 2
        assert 0 <= int(shard) < shards
        assert shard == f"{zlib.crc32(job_id.encode()) % shards:02d}"


def test_list_shard_spreads_jobs_over_all_shards() -> None:
    ids = [new_job_id(NOW + timedelta(milliseconds=n)) for n in range(800)]
    counts: dict[str, int] = {}
    for job_id in ids:
        shard = list_shard(job_id, 8)
        counts[shard] = counts.get(shard, 0) + 1
    assert sorted(counts) == [f"{n:02d}" for n in range(8)]
    assert min(counts.values()) > 800 / 8 / 3


def test_list_shard_known_value() -> None:
    assert list_shard("01KDWPVNG0YE3JFY1T7HT7YKRZ", 4) == f"{zlib.crc32(b'01KDWPVNG0YE3JFY1T7HT7YKRZ') % 4:02d}"
    assert list_shard("01KDWPVNG0YE3JFY1T7HT7YKRZ", 1) == "00"


# -- listing cursor -------------------------------------------------------------------------------

SHARDS = 4
SOME_ID = "01KDWPVNG0YE3JFY1T7HT7YKRZ"


def cursor_for(status: str | None, job_type: str | None = None) -> str:
    return Cursor(status, job_type, [SOME_ID, None, "~", SOME_ID]).encode()


def test_no_cursor_starts_every_shard_from_the_newest() -> None:
    cursor = Cursor.decode(ListQuery(status=JobStatus.QUEUED, type="echo"), SHARDS)
    assert cursor == Cursor("queued", "echo", [None] * SHARDS)


def test_cursor_round_trips_for_the_same_filters() -> None:
    encoded = cursor_for("failed", "echo")
    decoded = Cursor.decode(ListQuery(status=JobStatus.FAILED, type="echo", cursor=encoded), SHARDS)
    assert decoded.positions == [SOME_ID, None, "~", SOME_ID]
    assert decoded.status == "failed"
    assert decoded.type == "echo"


def test_cursor_is_url_safe() -> None:
    encoded = cursor_for("queued", "a.b-c_d")
    assert "=" not in encoded
    assert set(encoded) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    ("issued_status", "issued_type", "query"),
    [
        ("queued", None, ListQuery(status=JobStatus.FAILED)),
        ("queued", None, ListQuery()),
        (None, None, ListQuery(status=JobStatus.QUEUED)),
        ("queued", "echo", ListQuery(status=JobStatus.QUEUED, type="sleep")),
        ("queued", "echo", ListQuery(status=JobStatus.QUEUED)),
    ],
)
def test_cursor_for_other_filters_is_rejected(
    issued_status: str | None, issued_type: str | None, query: ListQuery
) -> None:
    encoded = cursor_for(issued_status, issued_type)
    with pytest.raises(InvalidCursorError, match="other filters"):
        Cursor.decode(query.model_copy(update={"cursor": encoded}), SHARDS)


def _raw(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "Z2FyYmFnZQ",  # base64 of "garbage"
        "",
        "%%%%",
        _raw([1, 2, 3]),
        _raw({"v": 2, "s": None, "t": None, "p": [None] * SHARDS}),
        _raw({"v": 1, "s": None, "t": None, "p": [None] * (SHARDS + 1)}),
        _raw({"v": 1, "s": None, "t": None, "p": "nope"}),
        _raw({"v": 1, "s": None, "t": None, "p": [None, None, None, "not-a-job-id"]}),
        _raw({"v": 1, "s": None, "t": None, "p": [None, None, None, 5]}),
        _raw({"v": 1, "s": None, "t": None}),
        base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),  # nested too deep to decode
    ],
)
def test_garbage_cursors_are_rejected(cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        Cursor.decode(ListQuery(cursor=cursor), SHARDS)


def test_cursor_for_another_shard_count_is_rejected() -> None:
    encoded = cursor_for(None)
    with pytest.raises(InvalidCursorError):
        Cursor.decode(ListQuery(cursor=encoded), SHARDS * 2)
