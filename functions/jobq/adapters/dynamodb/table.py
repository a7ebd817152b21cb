"""The jobs table as every DynamoDB adapter reaches it: client, name, listing shards, and the reads they share."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from jobq.adapters.aws import unavailable_on_failure
from jobq.adapters.dynamodb.codec import decode_job
from jobq.adapters.dynamodb.schema import (
    KEY_ATTRIBUTE,
    LIST_SHARD_ATTRIBUTE,
    OWNER_INDEX,
    OWNER_SHARD_ATTRIBUTE,
    OWNER_STATUS_INDEX,
    STATUS_INDEX,
    STATUS_SORT_ATTRIBUTE,
    list_shard,
    owner_shard,
    shard_name,
)
from jobq.domain.errors import DependencyUnavailableError
from jobq.domain.models import Job

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

BATCH_GET_MAX = 100


class JobsTable:
    """One DynamoDB table of jobs (JobsTable in template.yaml) and the number of its listing shards."""

    def __init__(self, client: DynamoDBClient, name: str, *, shards: int) -> None:
        self.client = client
        self.name = name
        self.shards = shards

    def key(self, job_id: str) -> dict[str, AttributeValueTypeDef]:
        """The primary key of job ``job_id``: its shard (from the id) and the id."""
        return {LIST_SHARD_ATTRIBUTE: {"S": list_shard(job_id, self.shards)}, KEY_ATTRIBUTE: {"S": job_id}}

    def query_shard(
        self,
        shard: int,
        bound: str | None,
        limit: int,
        job_type: str | None = None,
        *,
        owner: str | None = None,
        newest_first: bool = True,
        status: str | None = None,
    ) -> tuple[list[str], str | None]:
        """One page of a listing shard beyond ``bound`` (older ids if newest first, else newer ones).

        Every owner's jobs from the table's own partition, or with ``owner`` one owner's from OwnerIndex
        (never a filter over other owners' entries). With ``status`` (an indexed one: failed, cancelled),
        only that status's jobs, from the sparse StatusIndex or OwnerStatusIndex. Returns the job ids and the
        bound of the next page (None: the shard ends here).
        """
        key_condition = "#shard = :shard"
        index: str | None
        if owner is None:
            index, partition = (None if status is None else STATUS_INDEX), shard_name(shard)
            names = {"#shard": LIST_SHARD_ATTRIBUTE}
        else:
            index = OWNER_INDEX if status is None else OWNER_STATUS_INDEX
            partition = owner_shard(owner, shard_name(shard))
            names = {"#shard": OWNER_SHARD_ATTRIBUTE}
        values: dict[str, AttributeValueTypeDef] = {":shard": {"S": partition}}
        if status is not None:
            return self._query_status(index, key_condition, names, values, status, bound, limit, job_type)
        if bound is not None:
            key_condition += f" AND #sk {'<' if newest_first else '>'} :bound"
            values[":bound"] = {"S": bound}
            names["#sk"] = KEY_ATTRIBUTE
        extra: dict[str, Any] = {}
        if job_type is not None:
            extra["FilterExpression"] = "#type = :type"
            names["#type"] = "type"
            values[":type"] = {"S": job_type}
        if index is None:  # the table itself: its items whole, but only the id is wanted here
            extra["ProjectionExpression"] = "#id"
            names["#id"] = KEY_ATTRIBUTE
        else:
            extra["IndexName"] = index
        with unavailable_on_failure("DynamoDB", "Query"):
            response = self.client.query(
                TableName=self.name,
                KeyConditionExpression=key_condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=not newest_first,
                Limit=limit,
                **extra,
            )
        ids = [item[KEY_ATTRIBUTE]["S"] for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        return ids, (last[KEY_ATTRIBUTE]["S"] if last else None)

    def _query_status(
        self,
        index: str | None,
        key_condition: str,
        names: dict[str, str],
        values: dict[str, AttributeValueTypeDef],
        status: str,
        bound: str | None,
        limit: int,
        job_type: str | None,
    ) -> tuple[list[str], str | None]:
        """Newest first within ``status``: sort keys between ``<status>#`` and ``<status>#<bound>`` (exclusive)."""
        names["#sk"] = STATUS_SORT_ATTRIBUTE
        values[":lo"] = {"S": f"{status}#"}
        values[":hi"] = {"S": f"{status}#{bound if bound is not None else '~'}"}
        extra: dict[str, Any] = {}
        if job_type is not None:
            extra["FilterExpression"] = "#type = :type"
            names["#type"] = "type"
            values[":type"] = {"S": job_type}
        with unavailable_on_failure("DynamoDB", "Query"):
            assert index is not None
            response = self.client.query(
                TableName=self.name,
                IndexName=index,
                KeyConditionExpression=f"{key_condition} AND #sk BETWEEN :lo AND :hi",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                Limit=limit if bound is None else limit + 1,  # room for the bound itself
                **extra,
            )
        ids = [item[STATUS_SORT_ATTRIBUTE]["S"].split("#", 1)[1] for item in response.get("Items", [])]
        ids = [job_id for job_id in ids if job_id != bound]  # BETWEEN includes the bound itself
        last = response.get("LastEvaluatedKey")
        return ids, (last[STATUS_SORT_ATTRIBUTE]["S"].split("#", 1)[1] if last else None)

    def batch_get(self, job_ids: Sequence[str]) -> dict[str, Job]:
        """The jobs that still exist, by id (BatchGetItem, 100 keys a request, unprocessed keys retried)."""
        found: dict[str, Job] = {}
        unique = list(dict.fromkeys(job_ids))
        for start in range(0, len(unique), BATCH_GET_MAX):
            found.update(self._batch_get_chunk(unique[start : start + BATCH_GET_MAX]))
        return found

    def _batch_get_chunk(self, job_ids: Sequence[str]) -> dict[str, Job]:
        keys: list[Mapping[str, Any]] = [self.key(job_id) for job_id in job_ids]
        found: dict[str, Job] = {}
        for attempt in range(6):
            if not keys:
                break
            if attempt:
                time.sleep(min(0.05 * 2**attempt, 1.0))
            with unavailable_on_failure("DynamoDB", "BatchGetItem"):
                response = self.client.batch_get_item(RequestItems={self.name: {"Keys": keys}})
            for item in response.get("Responses", {}).get(self.name, []):
                job = decode_job(item)
                found[job.job_id] = job
            unprocessed = cast("dict[str, Any]", response.get("UnprocessedKeys") or {})
            keys = list(unprocessed.get(self.name, {}).get("Keys", []))
        if keys:
            raise DependencyUnavailableError("DynamoDB BatchGetItem kept leaving keys unprocessed")
        return found
