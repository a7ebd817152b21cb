"""Jobs as DynamoDB items and back, and the attribute encodings the repository writes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from jobq.adapters.dynamodb.schema import KEY_ATTRIBUTE, STATUS_SORT_ATTRIBUTE, TTL_ATTRIBUTE, status_sort_key
from jobq.domain.models import AttemptFailure, Job, JobError, JobStatus, Progress, format_timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def encode_job(job: Job, *, expires_at: datetime) -> dict[str, AttributeValueTypeDef]:
    """A job as a DynamoDB item (without the listing-index keys)."""
    item: dict[str, AttributeValueTypeDef] = {
        KEY_ATTRIBUTE: {"S": job.job_id},
        "type": {"S": job.type},
        "owner": {"S": job.owner},
        "status": {"S": job.status.value},
        "payload": json_attribute(job.payload),
        "attempts": {"N": str(job.attempts)},
        "max_attempts": {"N": str(job.max_attempts)},
        "created_at": {"S": format_timestamp(job.created_at)},
        "updated_at": {"S": format_timestamp(job.updated_at)},
        "available_at": {"N": str(millis(job.available_at))},
        TTL_ATTRIBUTE: {"N": str(int(expires_at.timestamp()))},
    }
    if job.result is not None:
        item["result"] = json_attribute(job.result)
    if job.error is not None:
        item["error"] = json_model_attribute(job.error)
    if job.history:
        item["history"] = {"L": [json_model_attribute(entry) for entry in job.history]}
    if job.history_dropped:
        item["history_dropped"] = {"N": str(job.history_dropped)}
    if job.retries:
        item["retries"] = {"N": str(job.retries)}
    for name in ("started_at", "finished_at"):
        value = getattr(job, name)
        if value is not None:
            item[name] = {"S": format_timestamp(value)}
    if (status_key := status_sort_key(job.status, job.job_id)) is not None:
        item[STATUS_SORT_ATTRIBUTE] = {"S": status_key}
    if job.progress is not None:
        item["progress"] = json_model_attribute(job.progress)
    if job.cancel_requested:
        item["cancel_requested"] = {"BOOL": True}
    if job.lease_id is not None:
        item["lease_id"] = {"S": job.lease_id}
    if job.lease_expires_at is not None:
        item["lease_expires_at"] = {"N": str(millis(job.lease_expires_at))}
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
    progress = text("progress")
    lease_until = number("lease_expires_at")
    return Job(
        job_id=str(item[KEY_ATTRIBUTE]["S"]),
        type=str(item["type"]["S"]),
        owner=str(item["owner"]["S"]),
        status=JobStatus(item["status"]["S"]),
        payload=json.loads(item["payload"]["S"]),
        result=None if result is None else json.loads(result),
        error=None if error is None else JobError.model_validate_json(error),
        history=tuple(AttemptFailure.model_validate_json(entry["S"]) for entry in item.get("history", {}).get("L", [])),
        history_dropped=number("history_dropped") or 0,
        retries=number("retries") or 0,
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
        progress=None if progress is None else Progress.model_validate_json(progress),
        cancel_requested=bool(item.get("cancel_requested", {}).get("BOOL", False)),
    )


def json_attribute(value: Any) -> AttributeValueTypeDef:
    """A JSON value as a string attribute.

    UTF-8 as is: escaping non-ASCII characters would triple the stored size of such text. Strings
    that are not valid Unicode (lone surrogates) cannot be stored as UTF-8 and keep their escapes.
    """
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return {"S": text}


def json_model_attribute(model: BaseModel) -> AttributeValueTypeDef:
    """An error, history entry or progress report as a JSON string attribute."""
    return {"S": model.model_dump_json()}


def millis(moment: datetime) -> int:
    """Epoch milliseconds: how times that conditions compare are stored."""
    return int(moment.timestamp() * 1000)


def _from_millis(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def _parse_time(value: str | None) -> datetime:
    if value is None:
        raise ValueError("timestamp missing from job item")
    return datetime.fromisoformat(value)


def _parse_optional_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def item_bytes(item: Mapping[str, Any]) -> int:
    """An item's size as DynamoDB counts it: UTF-8 bytes of every attribute name and value (lists: their members)."""

    def value_bytes(value: Mapping[str, Any]) -> int:
        ((kind, inner),) = value.items()
        if kind == "L":
            return 3 + sum(1 + value_bytes(member) for member in inner)
        if kind == "M":
            return 3 + sum(len(name.encode()) + 1 + value_bytes(member) for name, member in inner.items())
        return len(str(inner).encode())

    return sum(len(name.encode()) + value_bytes(value) for name, value in item.items())
