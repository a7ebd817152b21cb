"""The jobs table's attribute and index names (template.yaml's JobsTable declares the same) and its shards."""

from __future__ import annotations

import zlib

from jobq.domain.models import JobStatus

KEY_ATTRIBUTE = "job_id"
"""The table's sort key (and every index's): the time-ordered job id."""
LIST_SHARD_ATTRIBUTE = "list_shard"
"""The table's partition key: ``crc32(job_id) % shards``, so a job's key follows from its id, and the
table's own partitions are the admin listing (newest first), with no index write per job."""
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


SWEEPER_PARTITION = "#sweeper"
"""The partition of the sweeper's marks item: no shard's, so no listing reads it."""


def list_shard(job_id: str, shards: int) -> str:
    """The listing-index partition of a job: a stable hash of its id."""
    return shard_name(zlib.crc32(job_id.encode()) % shards)


def owner_shard(owner: str, shard: str) -> str:
    """The owner-index partition of a job: its owner and its listing shard, so one owner's jobs spread too."""
    return f"{owner}#{shard}"


def shard_name(shard: int) -> str:
    """The partition key value of shard number ``shard``."""
    return f"{shard:02d}"
