"""SweepIndex on the jobs table: the listing index's shards oldest first, and the sweeper's marks in one item."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from jobq.adapters.aws import error_code, unavailable_on_failure
from jobq.adapters.dynamodb.schema import KEY_ATTRIBUTE, LIST_SHARD_ATTRIBUTE, SWEEPER_PARTITION, list_shard
from jobq.adapters.dynamodb.table import JobsTable
from jobq.domain.models import Job
from jobq.domain.ports import SweepMarks

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

SWEEPER_ITEM_KEY = "#sweeper"
_VERSION = "marks_version"
"""The item holding the sweeper's per-shard marks; not a job (no index keys, not a job id)."""


MARKS_KEY: dict[str, AttributeValueTypeDef] = {  # the marks item's primary key
    LIST_SHARD_ATTRIBUTE: {"S": SWEEPER_PARTITION},
    KEY_ATTRIBUTE: {"S": SWEEPER_ITEM_KEY},
}


def _mark_attribute(shard: int) -> str:
    return f"mark_{shard:02d}"


def _watch_attribute(shard: int) -> str:
    return f"watch_{shard:02d}"


class DynamoDBSweepIndex:
    """SweepIndex on the jobs table: its shard partitions oldest first, marks in one small item."""

    def __init__(self, table: JobsTable) -> None:
        self._jobs = table
        self._client = table.client
        self._table = table.name

    @property
    def shard_count(self) -> int:
        return self._jobs.shards

    def scan_shard(self, shard: int, *, after: str | None, limit: int) -> list[str]:
        ids: list[str] = []
        bound = after
        while len(ids) < limit:
            page, bound = self._jobs.query_shard(shard, bound, min(1000, limit - len(ids)), newest_first=False)
            ids.extend(page)
            if bound is None:
                break
        return ids

    def get_many(self, job_ids: Sequence[str]) -> dict[str, Job]:
        return self._jobs.batch_get(job_ids)

    def marks(self) -> SweepMarks:
        with unavailable_on_failure("DynamoDB", "GetItem"):
            response = self._client.get_item(TableName=self._table, Key=MARKS_KEY, ConsistentRead=True)
        item = response.get("Item") or {}
        positions = {
            shard: str(item[_mark_attribute(shard)]["S"])
            for shard in range(self.shard_count)
            if _mark_attribute(shard) in item
        }
        watching = {
            shard: tuple(str(item[_watch_attribute(shard)]["S"]).split())
            for shard in range(self.shard_count)
            if _watch_attribute(shard) in item
        }
        return SweepMarks(positions, int(item[_VERSION]["N"]) if _VERSION in item else 0, watching)

    def save_marks(self, before: SweepMarks, after: Mapping[int, str], watching: Mapping[int, tuple[str, ...]]) -> bool:
        changed = sorted(shard for shard in after if after[shard] != before.positions.get(shard))
        rewatched = sorted(
            shard
            for shard in range(self.shard_count)
            if tuple(watching.get(shard, ())) != tuple(before.watching.get(shard, ()))
        )
        if not changed and not rewatched:
            return True
        names: dict[str, str] = {"#version": _VERSION}
        values: dict[str, AttributeValueTypeDef] = {":zero": {"N": "0"}, ":one": {"N": "1"}}
        sets = ["#version = if_not_exists(#version, :zero) + :one"]
        if before.version:
            values[":version"] = {"N": str(before.version)}
        removes: list[str] = []
        for shard in changed:
            names[f"#m{shard}"] = _mark_attribute(shard)
            values[f":new{shard}"] = {"S": after[shard]}
            sets.append(f"#m{shard} = :new{shard}")
        for shard in rewatched:
            names[f"#w{shard}"] = _watch_attribute(shard)
            if watching.get(shard):
                values[f":watch{shard}"] = {"S": " ".join(watching[shard])}
                sets.append(f"#w{shard} = :watch{shard}")
            else:
                removes.append(f"#w{shard}")
        condition = "#version = :version" if before.version else "attribute_not_exists(#version)"
        with unavailable_on_failure("DynamoDB", "UpdateItem"):
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=MARKS_KEY,
                    UpdateExpression="SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else ""),
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
                Key=MARKS_KEY,
                UpdateExpression="SET #version = if_not_exists(#version, :zero) + :one",
                ExpressionAttributeNames={"#version": _VERSION},
                ExpressionAttributeValues={":zero": {"N": "0"}, ":one": {"N": "1"}},
            )
            # ... then the mark, in case one was saved past the job before that.
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=MARKS_KEY,
                    UpdateExpression="SET #m = :below",
                    ConditionExpression="#m > :below",
                    ExpressionAttributeNames={"#m": _mark_attribute(shard)},
                    ExpressionAttributeValues={":below": {"S": below}},
                )
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
