"""The jobs table's attribute and index names (template.yaml's JobsTable declares the same) and its shards."""

from __future__ import annotations

import zlib

from jobq.domain.models import JobStatus

KEY_ATTRIBUTE = "job_id"
LIST_INDEX = "ListIndex"
LIST_SHARD_ATTRIBUTE = "list_shard"
LIST_SORT_ATTRIBUTE = "list_sk"
OWNER_INDEX = "OwnerIndex"
OWNER_SHARD_ATTRIBUTE = "owner_shard"
STATUS_INDEX = "StatusIndex"
OWNER_STATUS_INDEX = "OwnerStatusIndex"
STATUS_SORT_ATTRIBUTE = "status_sk"
TTL_ATTRIBUTE = "expires_at"

INDEXED_STATUSES = frozenset({JobStatus.FAILED, JobStatus.CANCELLED})
"""Statuses in the sparse status indexes: what an operator looks for among many succeeded jobs.

A job carries ``status_sk`` only while in one of them, so a job that succeeds never writes these indexes.
"""


def status_sort_key(status: JobStatus, job_id: str) -> str | None:
    """``status_sk`` of a job in ``status``: ``<status>#<job_id>``, or None when the status is not indexed."""
    return f"{status.value}#{job_id}" if status in INDEXED_STATUSES else None


def list_shard(job_id: str, shards: int) -> str:
    """The listing-index partition of a job: a stable hash of its id."""
    return shard_name(zlib.crc32(job_id.encode()) % shards)


def owner_shard(owner: str, shard: str) -> str:
    """The owner-index partition of a job: its owner and its listing shard, so one owner's jobs spread too."""
    return f"{owner}#{shard}"


def shard_name(shard: int) -> str:
    """The partition key value of shard number ``shard``."""
    return f"{shard:02d}"
