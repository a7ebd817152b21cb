"""JobRepository on DynamoDB: one item per job, every state change a conditional write."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, cast

from botocore.exceptions import ClientError

from jobq.adapters.aws import error_code, unavailable_on_failure
from jobq.adapters.dynamodb.codec import (
    decode_job,
    encode_job,
    item_bytes,
    json_attribute,
    json_model_attribute,
    millis,
)
from jobq.adapters.dynamodb.expressions import UpdateExpression
from jobq.adapters.dynamodb.schema import (
    KEY_ATTRIBUTE,
    LIST_SHARD_ATTRIBUTE,
    OWNER_SHARD_ATTRIBUTE,
    STATUS_SORT_ATTRIBUTE,
    TTL_ATTRIBUTE,
    list_shard,
    owner_shard,
    status_sort_key,
)
from jobq.adapters.dynamodb.table import JobsTable
from jobq.domain.errors import DependencyUnavailableError
from jobq.domain.models import MAX_RECORD_BYTES, Job, JobPage, JobStatus, ListQuery, format_timestamp
from jobq.domain.ports import UNSET, Claim, ConditionFailedError, Expect, JobChange, PageBytes, RecordTooLargeError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        BatchStatementRequestTypeDef,
        BatchStatementResponseTypeDef,
        WriteRequestTypeDef,
    )

_log = logging.getLogger(__name__)
BATCH_WRITE_MAX = 25

CLAIM_CONDITION = (
    "#attempts < #max_attempts AND ("
    "(#status = :queued AND #available_at <= :now) OR "
    "(#status = :running AND #lease_expires_at < :now))"
)
"""Queued and due, or running with an expired lease; and attempts left (the domain's ``claimable``)."""

BATCH_STATEMENTS_MAX = 25
"""Statements in one BatchExecuteStatement request, DynamoDB's limit."""

# Every value a bound parameter; the table's name is the stack's own.
CLAIM_FRESH_STATEMENT = (
    'UPDATE "{table}" SET "claimed_from"=?, "status"=?, "attempts"=?, "lease_id"=?, "lease_expires_at"=?, '  # noqa: S608
    '"started_at"=?, "updated_at"=? REMOVE "progress" '
    f'WHERE "{LIST_SHARD_ATTRIBUTE}"=? AND "{KEY_ATTRIBUTE}"=? AND "status"=? AND "attempts"=? '
    'AND "max_attempts">? AND "available_at"<=? RETURNING ALL NEW *'
)
"""``claim``'s writes for a job's first attempt, as PartiQL: the one DynamoDB request that makes several
conditional writes, each on its own (a transaction would be all or nothing and bill twice the write units).
Never a job of one attempt: should its invocation die before reaching it, that attempt would count as lost."""


class DynamoDBJobRepository:
    """Jobs in one DynamoDB table (see JobsTable in template.yaml)."""

    def __init__(self, table: JobsTable, *, ttl_days: int) -> None:
        self._table = table
        self._client = table.client
        self._ttl = timedelta(days=ttl_days)

    def _item(self, job: Job) -> dict[str, AttributeValueTypeDef]:
        """The new job's item with its index keys; RecordTooLargeError over the item limit."""
        item = encode_job(job, expires_at=job.updated_at + self._ttl)
        shard = list_shard(job.job_id, self._table.shards)
        item[LIST_SHARD_ATTRIBUTE] = {"S": shard}
        item[OWNER_SHARD_ATTRIBUTE] = {"S": owner_shard(job.owner, shard)}
        size = item_bytes(item)
        if size > MAX_RECORD_BYTES:  # checked before sending: emulators do not all refuse it
            raise RecordTooLargeError(f"item size has exceeded the maximum allowed size ({size} bytes)")
        return item

    def insert_many(self, jobs: Sequence[Job]) -> None:
        """BatchWriteItem, 25 a request, unprocessed items retried; if some stay unwritten, the written ones
        are deleted again. (Puts in a batch take no condition: the ids are fresh ULIDs, 80 random bits each.)"""
        items = [self._item(job) for job in jobs]  # every size checked before anything is written
        written: list[Job] = []
        try:
            for start in range(0, len(items), BATCH_WRITE_MAX):
                self._batch_write([{"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE_MAX]])
                written.extend(jobs[start : start + BATCH_WRITE_MAX])
        except DependencyUnavailableError:
            self._forget(written)
            raise

    def _forget(self, jobs: Sequence[Job]) -> None:
        keys: list[WriteRequestTypeDef] = [{"DeleteRequest": {"Key": self._table.key(job.job_id)}} for job in jobs]
        for start in range(0, len(keys), BATCH_WRITE_MAX):
            try:
                self._batch_write(keys[start : start + BATCH_WRITE_MAX])
            except DependencyUnavailableError:
                _log.exception("%d jobs of a failed batch are left queued; the sweeper will resend them", len(keys))
                return

    def _batch_write(self, requests: list[WriteRequestTypeDef]) -> None:
        pending = requests
        for attempt in range(6):
            if attempt:
                time.sleep(min(0.05 * 2**attempt, 1.0))
            with unavailable_on_failure("DynamoDB", "BatchWriteItem"):
                response = self._client.batch_write_item(RequestItems={self._table.name: pending})
            pending = list(cast("dict[str, Any]", response.get("UnprocessedItems") or {}).get(self._table.name, []))
            if not pending:
                return
        raise DependencyUnavailableError(f"DynamoDB BatchWriteItem kept {len(pending)} item(s) unprocessed")

    def insert(self, job: Job) -> None:
        item = self._item(job)
        with unavailable_on_failure("DynamoDB", "PutItem"):
            try:
                self._client.put_item(
                    TableName=self._table.name,
                    Item=item,
                    ConditionExpression="attribute_not_exists(#id)",
                    ExpressionAttributeNames={"#id": KEY_ATTRIBUTE},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                _raise_specific(exc)

    def get(self, job_id: str) -> Job | None:
        with unavailable_on_failure("DynamoDB", "GetItem"):
            response = self._client.get_item(
                TableName=self._table.name, Key=self._table.key(job_id), ConsistentRead=True
            )
        item = response.get("Item")
        return decode_job(item) if item else None

    def claim(self, job_id: str, *, now: datetime, lease_id: str, lease_expires_at: datetime) -> Job:
        now_iso = {"S": format_timestamp(now)}
        with unavailable_on_failure("DynamoDB", "UpdateItem"):
            try:
                response = self._client.update_item(
                    TableName=self._table.name,
                    Key=self._table.key(job_id),
                    UpdateExpression=(
                        "SET #claimed_from = #status, #status = :running, #attempts = #attempts + :one, "
                        "#lease_id = :lease, #lease_expires_at = :until, #started_at = :now_iso, "
                        "#updated_at = :now_iso REMOVE #progress"
                    ),
                    ConditionExpression=CLAIM_CONDITION,
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
                        "#progress": "progress",
                    },
                    ExpressionAttributeValues={
                        ":running": {"S": JobStatus.RUNNING.value},
                        ":queued": {"S": JobStatus.QUEUED.value},
                        ":one": {"N": "1"},
                        ":lease": {"S": lease_id},
                        ":until": {"N": str(millis(lease_expires_at))},
                        ":now": {"N": str(millis(now))},
                        ":now_iso": now_iso,
                    },
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                _raise_specific(exc)
        return decode_job(response["Attributes"])

    def claim_fresh(self, claims: Sequence[Claim], *, now: datetime) -> list[Job | None]:
        statement = CLAIM_FRESH_STATEMENT.format(table=self._table.name)
        now_iso: AttributeValueTypeDef = {"S": format_timestamp(now)}
        queued: AttributeValueTypeDef = {"S": JobStatus.QUEUED.value}
        claimed: list[Job | None] = []
        for start in range(0, len(claims), BATCH_STATEMENTS_MAX):
            statements: list[BatchStatementRequestTypeDef] = []
            chunk = claims[start : start + BATCH_STATEMENTS_MAX]
            for claim in chunk:
                key = self._table.key(claim.job_id)
                parameters: list[AttributeValueTypeDef] = [
                    queued,
                    {"S": JobStatus.RUNNING.value},
                    {"N": "1"},
                    {"S": claim.lease_id},
                    {"N": str(millis(claim.lease_expires_at))},
                    now_iso,
                    now_iso,
                    key[LIST_SHARD_ATTRIBUTE],
                    key[KEY_ATTRIBUTE],
                    queued,
                    {"N": "0"},
                    {"N": "1"},
                    {"N": str(millis(now))},
                ]
                statements.append(
                    {"Statement": statement, "Parameters": parameters, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
                )
            with unavailable_on_failure("DynamoDB", "BatchExecuteStatement"):
                response = self._client.batch_execute_statement(Statements=statements)
            answers = response["Responses"]
            if len(answers) != len(chunk):  # one answer a statement, in order: anything else is not trusted
                _log.warning("BatchExecuteStatement answered %d of %d statements", len(answers), len(chunk))
                answers = [{}] * len(chunk)
            for claim, answer in zip(chunk, answers, strict=True):
                claimed.append(_claimed(claim, answer))
        return claimed

    def update(self, job_id: str, change: JobChange, *, expect: Expect) -> Job:
        expression = UpdateExpression()
        expression.set("status", {"S": change.status.value})
        # In the sparse status indexes while failed or cancelled; out of them otherwise (removing an absent
        # attribute writes no index).
        status_key = status_sort_key(change.status, job_id)
        expression.set_or_remove(STATUS_SORT_ATTRIBUTE, None if status_key is None else {"S": status_key})
        expression.set("updated_at", {"S": format_timestamp(change.at)})
        expression.set(TTL_ATTRIBUTE, {"N": str(int((change.at + self._ttl).timestamp()))})
        if change.result is not UNSET:
            expression.set_or_remove("result", None if change.result is None else json_attribute(change.result))
        if change.error is not UNSET:
            expression.set_or_remove("error", None if change.error is None else json_model_attribute(change.error))
        _set_times(expression, change)
        if change.attempts is not UNSET:
            expression.set("attempts", {"N": str(change.attempts)})
        if change.history is not UNSET:
            expression.set("history", {"L": [json_model_attribute(entry) for entry in change.history]})
        if change.history_dropped is not UNSET:
            expression.set("history_dropped", {"N": str(change.history_dropped)})
        if change.retries is not UNSET:
            expression.set("retries", {"N": str(change.retries)})
        if change.progress is not UNSET:
            expression.set_or_remove(
                "progress", None if change.progress is None else json_model_attribute(change.progress)
            )
        if change.cancel_requested is not UNSET:
            expression.set_or_remove("cancel_requested", {"BOOL": True} if change.cancel_requested else None)
        if change.release_lease:
            expression.remove("lease_id", "lease_expires_at")
        condition = expression.condition(expect)
        with unavailable_on_failure("DynamoDB", "UpdateItem"):
            try:
                response = self._client.update_item(
                    TableName=self._table.name,
                    Key=self._table.key(job_id),
                    UpdateExpression=expression.render(),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=expression.names,
                    ExpressionAttributeValues=expression.values,
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                _raise_specific(exc)
        return decode_job(response["Attributes"])

    def delete(self, job_id: str, *, expect: Expect) -> None:
        expression = UpdateExpression()
        condition = expression.condition(expect)
        with unavailable_on_failure("DynamoDB", "DeleteItem"):
            try:
                self._client.delete_item(
                    TableName=self._table.name,
                    Key=self._table.key(job_id),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=expression.names,
                    ExpressionAttributeValues=expression.values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as exc:
                _raise_specific(exc)

    def list_jobs(self, query: ListQuery, page_bytes: PageBytes | None = None) -> JobPage:
        # The API's alone: the worker and the sweeper never list, and their cold start skips the listing.
        from jobq.adapters.dynamodb.listing import list_page

        return list_page(self._table, query, page_bytes)


def _set_times(expression: UpdateExpression, change: JobChange) -> None:
    """The change's moments: finished, started, due, and the lease's expiry."""
    if change.finished_at is not UNSET:
        finished: AttributeValueTypeDef | None = (
            None if change.finished_at is None else {"S": format_timestamp(change.finished_at)}
        )
        expression.set_or_remove("finished_at", finished)
    if change.started_at is not UNSET:
        expression.set("started_at", {"S": format_timestamp(change.started_at)})
    if change.available_at is not UNSET:
        expression.set("available_at", {"N": str(millis(change.available_at))})
    if change.lease_expires_at is not UNSET:
        expression.set("lease_expires_at", {"N": str(millis(change.lease_expires_at))})


def _claimed(claim: Claim, answer: BatchStatementResponseTypeDef) -> Job | None:
    """The job a ``claim_fresh`` statement claimed, from its answer; None if it claimed none.

    A statement whose condition failed answers an Error with the item as it was: the claim's own lease in it
    means an earlier try of the same request applied it (botocore resends a request whose answer was lost).
    An emulator that answers neither an error nor the item (moto's own PartiQL does so for a failed
    condition) has claimed nothing.
    """
    error = answer.get("Error")
    item = answer.get("Item") or (error or {}).get("Item")
    job = decode_job(item) if item else None
    if job is None or job.job_id != claim.job_id:
        return None
    if error is None or (job.status is JobStatus.RUNNING and job.lease_id == claim.lease_id):
        return job
    return None


def _raise_specific(exc: ClientError) -> NoReturn:
    """A failed condition as ConditionFailedError, an oversized item as RecordTooLargeError, else ``exc``."""
    code = error_code(exc)
    if code == "ConditionalCheckFailedException":
        old = cast("Mapping[str, Any] | None", exc.response.get("Item"))
        raise ConditionFailedError(decode_job(old) if old else None) from None
    message = str(exc.response.get("Error", {}).get("Message", ""))
    if code == "ValidationException" and "size" in message.lower():
        raise RecordTooLargeError(message) from None
    raise exc
