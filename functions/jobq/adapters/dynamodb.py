"""JobRepository on DynamoDB: one item per job, conditional writes, a sharded listing index."""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import re
import time
import zlib
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from jobq.adapters.aws import error_code, unavailable_on_failure
from jobq.domain.errors import DependencyUnavailableError, InvalidCursorError
from jobq.domain.models import (
    JOB_ID_PATTERN,
    AttemptFailure,
    Job,
    JobError,
    JobPage,
    JobStatus,
    ListQuery,
    format_timestamp,
)
from jobq.domain.ports import UNSET, ConditionFailedError, Expect, JobChange, RecordTooLargeError, SweepMarks

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = Mapping[str, AttributeValueTypeDef]

# Names that template.yaml's JobsTable declares; tests check the two agree.
KEY_ATTRIBUTE = "job_id"
LIST_INDEX = "ListIndex"
LIST_SHARD_ATTRIBUTE = "list_shard"
LIST_SORT_ATTRIBUTE = "list_sk"
TTL_ATTRIBUTE = "expires_at"

_CURSOR_VERSION = 1
_EXHAUSTED = "~"
_JOB_ID = re.compile(JOB_ID_PATTERN)
_BATCH_GET_MAX = 100
_UNFILTERED_EXAMINE_FACTOR = 2  # room for index entries whose items are already gone (TTL)
_FILTERED_EXAMINE_LIMIT = 1000  # a status-filtered page reads at most this many jobs, then returns a cursor
_FILTERED_CHUNK = 25


def list_shard(job_id: str, shards: int) -> str:
    """The listing-index partition of a job: a stable hash of its id."""
    return f"{zlib.crc32(job_id.encode()) % shards:02d}"


class DynamoDBJobRepository:
    """Jobs in one DynamoDB table (see JobsTable in template.yaml)."""

    def __init__(self, client: DynamoDBClient, table_name: str, *, ttl_days: int, shards: int) -> None:
        self._client = client
        self._table = table_name
        self._ttl = timedelta(days=ttl_days)
        self._shards = shards

    # -- single items -------------------------------------------------------------------------

    def insert(self, job: Job) -> None:
        item = encode_job(job, expires_at=job.updated_at + self._ttl)
        item[LIST_SHARD_ATTRIBUTE] = {"S": list_shard(job.job_id, self._shards)}
        item[LIST_SORT_ATTRIBUTE] = {"S": job.job_id}
        with unavailable_on_failure("DynamoDB", "PutItem"):
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#id)",
                    ExpressionAttributeNames={"#id": KEY_ATTRIBUTE},
                )
            except ClientError as exc:
                self._raise_specific(exc)

    def get(self, job_id: str) -> Job | None:
        with unavailable_on_failure("DynamoDB", "GetItem"):
            response = self._client.get_item(
                TableName=self._table, Key={KEY_ATTRIBUTE: {"S": job_id}}, ConsistentRead=True
            )
        item = response.get("Item")
        return decode_job(item) if item else None

    def claim(self, job_id: str, *, now: datetime, lease_id: str, lease_expires_at: datetime) -> Job:
        now_iso = {"S": format_timestamp(now)}
        with unavailable_on_failure("DynamoDB", "UpdateItem"):
            try:
                response = self._client.update_item(
                    TableName=self._table,
                    Key={KEY_ATTRIBUTE: {"S": job_id}},
                    UpdateExpression=(
                        "SET #claimed_from = #status, #status = :running, #attempts = #attempts + :one, "
                        "#lease_id = :lease, #lease_expires_at = :until, #started_at = :now_iso, #updated_at = :now_iso"
                    ),
                    ConditionExpression=(
                        "#attempts < #max_attempts AND ("
                        "(#status = :queued AND #available_at <= :now) OR "
                        "(#status = :running AND #lease_expires_at < :now))"
                    ),
                    ExpressionAttributeNames={
                        "#status": "status",
                        "#claimed_from": "claimed_from",
                        "#attempts": "attempts",
                        "#max_attempts": "max_attempts",
                        "#lease_id": "lease_id",
                        "#lease_expires_at": "lease_expires_at",
                        "#started_at": "started_at",
                        "#updated_at": "updated_at",
                        "#available_at": "available_at",
                    },
                    ExpressionAttributeValues={
                        ":running": {"S": JobStatus.RUNNING.value},
                        ":queued": {"S": JobStatus.QUEUED.value},
                        ":one": {"N": "1"},
                        ":lease": {"S": lease_id},
                        ":until": {"N": str(_millis(lease_expires_at))},
                        ":now": {"N": str(_millis(now))},
                        ":now_iso": now_iso,
                    },
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                self._raise_specific(exc)
        return decode_job(response["Attributes"])

    def update(self, job_id: str, change: JobChange, *, expect: Expect) -> Job:
        expression = _UpdateExpression()
        expression.set("status", {"S": change.status.value})
        expression.set("updated_at", {"S": format_timestamp(change.at)})
        expression.set(TTL_ATTRIBUTE, {"N": str(int((change.at + self._ttl).timestamp()))})
        if change.result is not UNSET:
            expression.set_or_remove("result", None if change.result is None else _json(change.result))
        if change.error is not UNSET:
            expression.set_or_remove("error", None if change.error is None else _json_model(change.error))
        if change.finished_at is not UNSET:
            finished: AttributeValueTypeDef | None = (
                None if change.finished_at is None else {"S": format_timestamp(change.finished_at)}
            )
            expression.set_or_remove("finished_at", finished)
        if change.available_at is not UNSET:
            expression.set("available_at", {"N": str(_millis(change.available_at))})
        if change.attempts is not UNSET:
            expression.set("attempts", {"N": str(change.attempts)})
        if change.append_history:
            expression.append("history", *(_json_model(entry) for entry in change.append_history))
        if change.release_lease:
            expression.remove("lease_id", "lease_expires_at")
        condition = expression.condition(expect)
        with unavailable_on_failure("DynamoDB", "UpdateItem"):
            try:
                response = self._client.update_item(
                    TableName=self._table,
                    Key={KEY_ATTRIBUTE: {"S": job_id}},
                    UpdateExpression=expression.render(),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=expression.names,
                    ExpressionAttributeValues=expression.values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                self._raise_specific(exc)
        return decode_job(response["Attributes"])

    def delete(self, job_id: str, *, expect: Expect) -> None:
        expression = _UpdateExpression()
        condition = expression.condition(expect)
        with unavailable_on_failure("DynamoDB", "DeleteItem"):
            try:
                self._client.delete_item(
                    TableName=self._table,
                    Key={KEY_ATTRIBUTE: {"S": job_id}},
                    ConditionExpression=condition,
                    ExpressionAttributeNames=expression.names,
                    ExpressionAttributeValues=expression.values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                self._raise_specific(exc)

    @staticmethod
    def _raise_specific(exc: ClientError) -> None:
        code = error_code(exc)
        if code == "ConditionalCheckFailedException":
            old = cast("Mapping[str, Any] | None", exc.response.get("Item"))
            raise ConditionFailedError(decode_job(old) if old else None) from None
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if code == "ValidationException" and "size" in message.lower():
            raise RecordTooLargeError(message) from None
        raise exc

    # -- listing ------------------------------------------------------------------------------

    def list_jobs(self, query: ListQuery, *, shards: int) -> JobPage:
        """Newest first across all shards (a k-way merge), status filtered after reading the items."""
        cursor = _Cursor.decode(query, shards)
        merge = _ShardMerge(self, cursor, query, page_size=min(100, query.limit + 1))
        wanted = query.limit
        budget = wanted * _UNFILTERED_EXAMINE_FACTOR if query.status is None else _FILTERED_EXAMINE_LIMIT
        items: list[Job] = []
        examined = 0
        while len(items) < wanted and examined < budget:
            remaining = wanted - len(items)
            chunk = remaining if query.status is None else max(remaining, _FILTERED_CHUNK)
            candidates = merge.take(min(_BATCH_GET_MAX, chunk))
            if not candidates:
                break
            jobs = self._batch_get([entry.job_id for entry in candidates])
            for entry in candidates:
                examined += 1
                merge.consume(entry)
                job = jobs.get(entry.job_id)
                if job is not None and (query.status is None or job.status is query.status):
                    items.append(job)
                    if len(items) == wanted:
                        break
        next_cursor = None if merge.exhausted() else merge.cursor().encode()
        return JobPage(items=tuple(items), next_cursor=next_cursor)

    def _query_shard(
        self,
        shard: str,
        bound: str | None,
        limit: int,
        job_type: str | None = None,
        *,
        newest_first: bool = True,
    ) -> tuple[list[str], str | None]:
        """One page of a shard beyond ``bound`` (older ids if newest first, else newer ones).

        Returns the job ids and the bound of the next page (None: the shard ends here).
        """
        key_condition = "#shard = :shard"
        values: dict[str, AttributeValueTypeDef] = {":shard": {"S": shard}}
        names = {"#shard": LIST_SHARD_ATTRIBUTE}
        if bound is not None:
            key_condition += f" AND #sk {'<' if newest_first else '>'} :bound"
            values[":bound"] = {"S": bound}
            names["#sk"] = LIST_SORT_ATTRIBUTE
        extra: dict[str, Any] = {}
        if job_type is not None:
            extra["FilterExpression"] = "#type = :type"
            names["#type"] = "type"
            values[":type"] = {"S": job_type}
        with unavailable_on_failure("DynamoDB", "Query"):
            response = self._client.query(
                TableName=self._table,
                IndexName=LIST_INDEX,
                KeyConditionExpression=key_condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=not newest_first,
                Limit=limit,
                **extra,
            )
        ids = [item[LIST_SORT_ATTRIBUTE]["S"] for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return ids, (last[LIST_SORT_ATTRIBUTE]["S"] if last else None)

    def _batch_get(self, job_ids: Sequence[str]) -> dict[str, Job]:
        keys: list[Mapping[str, Any]] = [{KEY_ATTRIBUTE: {"S": job_id}} for job_id in dict.fromkeys(job_ids)]
        found: dict[str, Job] = {}
        for attempt in range(6):
            if not keys:
                break
            if attempt:
                time.sleep(min(0.05 * 2**attempt, 1.0))
            with unavailable_on_failure("DynamoDB", "BatchGetItem"):
                response = self._client.batch_get_item(RequestItems={self._table: {"Keys": keys}})
            for item in response.get("Responses", {}).get(self._table, []):
                job = decode_job(item)
                found[job.job_id] = job
            unprocessed = cast("dict[str, Any]", response.get("UnprocessedKeys") or {})
            keys = list(unprocessed.get(self._table, {}).get("Keys", []))
        if keys:
            raise DependencyUnavailableError("DynamoDB BatchGetItem kept leaving keys unprocessed")
        return found


# -- listing internals --------------------------------------------------------------------------


@dataclass
class _Cursor:
    """Per shard: the last list_sk handed out (None: from the newest; ``~``: nothing left)."""

    status: str | None
    type: str | None
    positions: list[str | None]

    def encode(self) -> str:
        raw = json.dumps({"v": _CURSOR_VERSION, "s": self.status, "t": self.type, "p": self.positions})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, query: ListQuery, shards: int) -> _Cursor:
        status = query.status.value if query.status else None
        if query.cursor is None:
            return cls(status, query.type, [None] * shards)
        try:
            padded = query.cursor + "=" * (-len(query.cursor) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise InvalidCursorError("cursor is not one this API issued") from None
        if not isinstance(data, dict) or data.get("v") != _CURSOR_VERSION:
            raise InvalidCursorError("cursor is not one this API issued")
        positions = data.get("p")
        if (
            not isinstance(positions, list)
            or len(positions) != shards
            or not all(p is None or p == _EXHAUSTED or (isinstance(p, str) and _JOB_ID.match(p)) for p in positions)
        ):
            raise InvalidCursorError("cursor is not one this API issued")
        if data.get("s") != status or data.get("t") != query.type:
            raise InvalidCursorError("cursor was issued for other filters; pass the same status and type")
        return cls(status, query.type, positions)


@dataclass(frozen=True)
class _Entry:
    shard: int
    job_id: str


@dataclass
class _Shard:
    name: str
    position: str | None  # resume after this list_sk (None: from the newest)
    next_before: str | None  # where the next query of this shard starts
    more_pages: bool
    buffer: deque[str] = field(default_factory=deque)
    outstanding: int = 0  # entries taken but not yet consumed


class _ShardMerge:
    """K-way merge of the shards' newest-first streams, tracking how far each was handed out."""

    def __init__(self, repo: DynamoDBJobRepository, cursor: _Cursor, query: ListQuery, page_size: int) -> None:
        self._repo = repo
        self._cursor = cursor
        self._type = query.type
        self._page = page_size
        self._shards = [
            _Shard(
                name=f"{index:02d}",
                position=position,
                next_before=None if position == _EXHAUSTED else position,
                more_pages=position != _EXHAUSTED,
            )
            for index, position in enumerate(cursor.positions)
        ]
        self._heap: list[tuple[_Desc, int]] = []
        for index in range(len(self._shards)):
            self._fill(index)

    def _fill(self, index: int) -> None:
        """Put shard ``index``'s next entry on the heap, querying the shard if its buffer is empty."""
        shard = self._shards[index]
        while not shard.buffer and shard.more_pages:
            ids, shard.next_before = self._repo._query_shard(shard.name, shard.next_before, self._page, self._type)
            shard.more_pages = shard.next_before is not None
            shard.buffer.extend(ids)
        if shard.buffer:
            heapq.heappush(self._heap, (_Desc(shard.buffer[0]), index))

    def take(self, count: int) -> list[_Entry]:
        """Up to ``count`` next entries, newest first; each must then be consumed in order, or not."""
        taken: list[_Entry] = []
        while self._heap and len(taken) < count:
            _, index = heapq.heappop(self._heap)
            shard = self._shards[index]
            taken.append(_Entry(index, shard.buffer.popleft()))
            shard.outstanding += 1
            self._fill(index)
        return taken

    def consume(self, entry: _Entry) -> None:
        """``entry`` was handed out (or filtered out): the cursor moves past it."""
        shard = self._shards[entry.shard]
        shard.position = entry.job_id
        shard.outstanding -= 1

    def exhausted(self) -> bool:
        """Every shard read to its end and everything taken consumed."""
        return all(self._done(shard) for shard in self._shards)

    @staticmethod
    def _done(shard: _Shard) -> bool:
        return not shard.buffer and not shard.more_pages and shard.outstanding == 0

    def cursor(self) -> _Cursor:
        """Where the next page resumes, per shard."""
        positions: list[str | None] = []
        for shard in self._shards:
            if self._done(shard):
                positions.append(_EXHAUSTED)
            elif shard.outstanding or shard.buffer:
                positions.append(shard.position)
            else:
                # Everything the queries returned was consumed; what lies before next_before was filtered out.
                positions.append(shard.next_before)
        return _Cursor(self._cursor.status, self._cursor.type, positions)


class _Desc:
    """Orders strings descending inside heapq's min-heap."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value


# -- item codec ---------------------------------------------------------------------------------


def encode_job(job: Job, *, expires_at: datetime) -> dict[str, AttributeValueTypeDef]:
    """A job as a DynamoDB item (without the listing-index keys)."""
    item: dict[str, AttributeValueTypeDef] = {
        KEY_ATTRIBUTE: {"S": job.job_id},
        "type": {"S": job.type},
        "status": {"S": job.status.value},
        "payload": _json(job.payload),
        "attempts": {"N": str(job.attempts)},
        "max_attempts": {"N": str(job.max_attempts)},
        "created_at": {"S": format_timestamp(job.created_at)},
        "updated_at": {"S": format_timestamp(job.updated_at)},
        "available_at": {"N": str(_millis(job.available_at))},
        TTL_ATTRIBUTE: {"N": str(int(expires_at.timestamp()))},
    }
    if job.result is not None:
        item["result"] = _json(job.result)
    if job.error is not None:
        item["error"] = _json_model(job.error)
    if job.history:
        item["history"] = {"L": [_json_model(entry) for entry in job.history]}
    for name in ("started_at", "finished_at"):
        value = getattr(job, name)
        if value is not None:
            item[name] = {"S": format_timestamp(value)}
    if job.lease_id is not None:
        item["lease_id"] = {"S": job.lease_id}
    if job.lease_expires_at is not None:
        item["lease_expires_at"] = {"N": str(_millis(job.lease_expires_at))}
    return item


def decode_job(item: Mapping[str, Any]) -> Job:
    """A DynamoDB item as a job."""

    def text(name: str) -> str | None:
        value = item.get(name)
        return None if value is None else str(value["S"])

    def number(name: str) -> int | None:
        value = item.get(name)
        return None if value is None else int(value["N"])

    error = text("error")
    result = text("result")
    lease_until = number("lease_expires_at")
    return Job(
        job_id=str(item[KEY_ATTRIBUTE]["S"]),
        type=str(item["type"]["S"]),
        status=JobStatus(item["status"]["S"]),
        payload=json.loads(item["payload"]["S"]),
        result=None if result is None else json.loads(result),
        error=None if error is None else JobError.model_validate_json(error),
        history=tuple(AttemptFailure.model_validate_json(entry["S"]) for entry in item.get("history", {}).get("L", [])),
        attempts=int(item["attempts"]["N"]),
        max_attempts=int(item["max_attempts"]["N"]),
        created_at=_parse_time(text("created_at")),
        updated_at=_parse_time(text("updated_at")),
        started_at=_parse_optional_time(text("started_at")),
        finished_at=_parse_optional_time(text("finished_at")),
        available_at=_from_millis(int(item["available_at"]["N"])),
        lease_id=text("lease_id"),
        claimed_from=JobStatus(claimed_from) if (claimed_from := text("claimed_from")) else None,
        lease_expires_at=None if lease_until is None else _from_millis(lease_until),
    )


class _UpdateExpression:
    """Builds SET/REMOVE clauses and a status/lease condition with placeholder names."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValueTypeDef] = {}
        self._sets: list[str] = []
        self._removes: list[str] = []

    def _name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def _value(self, value: AttributeValueTypeDef) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: AttributeValueTypeDef) -> None:
        self._sets.append(f"{self._name(attribute)} = {self._value(value)}")

    def set_or_remove(self, attribute: str, value: AttributeValueTypeDef | None) -> None:
        if value is None:
            self.remove(attribute)
        else:
            self.set(attribute, value)

    def append(self, attribute: str, *elements: AttributeValueTypeDef) -> None:
        name = self._name(attribute)
        empty = self._value({"L": []})
        self._sets.append(f"{name} = list_append(if_not_exists({name}, {empty}), {self._value({'L': list(elements)})})")

    def remove(self, *attributes: str) -> None:
        self._removes.extend(self._name(attribute) for attribute in attributes)

    def condition(self, expect: Expect) -> str:
        statuses = ", ".join(self._value({"S": status.value}) for status in sorted(expect.statuses))
        clauses = [f"{self._name('status')} IN ({statuses})"]
        if expect.lease_id is not None:
            clauses.append(f"{self._name('lease_id')} = {self._value({'S': expect.lease_id})}")
        if expect.attempts is not None:
            clauses.append(f"{self._name('attempts')} = {self._value({'N': str(expect.attempts)})}")
        return " AND ".join(clauses)

    def render(self) -> str:
        parts = []
        if self._sets:
            parts.append("SET " + ", ".join(self._sets))
        if self._removes:
            parts.append("REMOVE " + ", ".join(self._removes))
        return " ".join(parts)


def _json(value: Any) -> AttributeValueTypeDef:
    # UTF-8 as is: escaping non-ASCII (\uXXXX) would triple the stored size of such text. Strings
    # that are not valid Unicode (lone surrogates) cannot be stored as UTF-8 and keep their escapes.
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return {"S": text}


def _json_model(model: JobError) -> AttributeValueTypeDef:
    return {"S": model.model_dump_json()}


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


def _parse_time(value: str | None) -> datetime:
    if value is None:
        raise ValueError("timestamp missing from job item")
    return datetime.fromisoformat(value)


def _parse_optional_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


# -- sweeper --------------------------------------------------------------------------------------

SWEEPER_ITEM_KEY = "#sweeper"
_VERSION = "marks_version"
"""The item holding the sweeper's per-shard marks; not a job (no index keys, not a job id)."""


def _mark_attribute(shard: int) -> str:
    return f"mark_{shard:02d}"


class DynamoDBSweepIndex:
    """SweepIndex on the jobs table: ListIndex shards oldest first, marks in one small item."""

    def __init__(self, repository: DynamoDBJobRepository) -> None:
        self._repo = repository
        self._client = repository._client
        self._table = repository._table

    @property
    def shard_count(self) -> int:
        return self._repo._shards

    def scan_shard(self, shard: int, *, after: str | None, limit: int) -> list[str]:
        ids: list[str] = []
        bound = after
        while len(ids) < limit:
            page, bound = self._repo._query_shard(
                f"{shard:02d}", bound, min(1000, limit - len(ids)), newest_first=False
            )
            ids.extend(page)
            if bound is None:
                break
        return ids

    def get_many(self, job_ids: Sequence[str]) -> dict[str, Job]:
        found: dict[str, Job] = {}
        for start in range(0, len(job_ids), _BATCH_GET_MAX):
            found.update(self._repo._batch_get(job_ids[start : start + _BATCH_GET_MAX]))
        return found

    def marks(self) -> SweepMarks:
        with unavailable_on_failure("DynamoDB", "GetItem"):
            response = self._client.get_item(
                TableName=self._table, Key={KEY_ATTRIBUTE: {"S": SWEEPER_ITEM_KEY}}, ConsistentRead=True
            )
        item = response.get("Item") or {}
        positions = {
            shard: str(item[_mark_attribute(shard)]["S"])
            for shard in range(self.shard_count)
            if _mark_attribute(shard) in item
        }
        return SweepMarks(positions, int(item[_VERSION]["N"]) if _VERSION in item else 0)

    def save_marks(self, before: SweepMarks, after: Mapping[int, str]) -> bool:
        changed = sorted(shard for shard in after if after[shard] != before.positions.get(shard))
        if not changed:
            return True
        names: dict[str, str] = {"#version": _VERSION}
        values: dict[str, AttributeValueTypeDef] = {":zero": {"N": "0"}, ":one": {"N": "1"}}
        sets = ["#version = if_not_exists(#version, :zero) + :one"]
        if before.version:
            values[":version"] = {"N": str(before.version)}
        for shard in changed:
            names[f"#m{shard}"] = _mark_attribute(shard)
            values[f":new{shard}"] = {"S": after[shard]}
            sets.append(f"#m{shard} = :new{shard}")
        condition = "#version = :version" if before.version else "attribute_not_exists(#version)"
        with unavailable_on_failure("DynamoDB", "UpdateItem"):
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={KEY_ATTRIBUTE: {"S": SWEEPER_ITEM_KEY}},
                    UpdateExpression="SET " + ", ".join(sets),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    return False
                raise
        return True

    def lower_mark(self, job_id: str) -> None:
        shard = int(list_shard(job_id, self.shard_count))
        below = job_id[:-1]  # sorts just before job_id: the next sweep reads the job again
        with unavailable_on_failure("DynamoDB", "UpdateItem"):
            # First the version, so a sweep that saw the job terminal cannot save a mark past it ...
            self._client.update_item(
                TableName=self._table,
                Key={KEY_ATTRIBUTE: {"S": SWEEPER_ITEM_KEY}},
                UpdateExpression="SET #version = if_not_exists(#version, :zero) + :one",
                ExpressionAttributeNames={"#version": _VERSION},
                ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
            )
            # ... then the mark, in case one was saved past the job before that.
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key={KEY_ATTRIBUTE: {"S": SWEEPER_ITEM_KEY}},
                    UpdateExpression="SET #m = :below",
                    ConditionExpression="#m > :below",
                    ExpressionAttributeNames={"#m": _mark_attribute(shard)},
                    ExpressionAttributeValues={":below": {"S": below}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
