"""Listing jobs newest first: a k-way merge of the listing index's shards, and the cursor that resumes it."""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import re
from collections import deque
from dataclasses import dataclass, field

from jobq.adapters.dynamodb.schema import INDEXED_STATUSES
from jobq.adapters.dynamodb.table import BATCH_GET_MAX, JobsTable
from jobq.domain.errors import InvalidCursorError
from jobq.domain.models import JOB_ID_PATTERN, Job, JobPage, ListQuery
from jobq.domain.ports import PageBytes

_CURSOR_VERSION = 1
_EXHAUSTED = "~"
_JOB_ID = re.compile(JOB_ID_PATTERN)
_UNFILTERED_EXAMINE_FACTOR = 2  # room for index entries whose items are already gone (TTL)
_FILTERED_EXAMINE_LIMIT = 1000  # a status-filtered page reads at most this many jobs, then returns a cursor
_FILTERED_CHUNK = 25


def list_page(table: JobsTable, query: ListQuery, page_bytes: PageBytes | None = None) -> JobPage:
    """Newest first across all shards (a k-way merge).

    A status the sparse status indexes hold (failed, cancelled) is read from them: in proportion to the
    page. Other statuses are filtered after reading the items, at most 1,000 of them a page. A page also
    stops where ``page_bytes`` says; its cursor resumes after the last job it holds.
    """
    cursor = Cursor.decode(query, table.shards)
    merge = ShardMerge(table, cursor, query, page_size=min(100, query.limit + 1))
    wanted = query.limit
    scanned = query.status is not None and query.status not in INDEXED_STATUSES
    budget = _FILTERED_EXAMINE_LIMIT if scanned else wanted * _UNFILTERED_EXAMINE_FACTOR
    items: list[Job] = []
    size = 0
    examined = 0
    full = False
    while not full and len(items) < wanted and examined < budget:
        remaining = wanted - len(items)
        chunk = max(remaining, _FILTERED_CHUNK) if scanned else remaining
        candidates = merge.take(min(BATCH_GET_MAX, chunk))
        if not candidates:
            break
        jobs = table.batch_get([entry.job_id for entry in candidates])
        for entry in candidates:
            job = jobs.get(entry.job_id)
            # An index entry can lag its item (a GSI is eventually consistent): the item's status decides.
            matches = job is not None and (query.status is None or job.status is query.status)
            if matches and job is not None and page_bytes is not None:
                grown = page_bytes.fits(size, job, first=not items)
                if grown is None:
                    full = True  # this job starts the next page: not consumed
                    break
                size = grown
            examined += 1
            merge.consume(entry)
            if matches and job is not None:
                items.append(job)
                if len(items) == wanted:
                    break
    next_cursor = None if merge.exhausted() else merge.cursor().encode()
    return JobPage(items=tuple(items), next_cursor=next_cursor)


@dataclass
class Cursor:
    """Per shard: the last job id handed out (None: from the newest; ``~``: nothing left)."""

    status: str | None
    type: str | None
    positions: list[str | None]
    owner: str | None = None

    def encode(self) -> str:
        raw = json.dumps({"v": _CURSOR_VERSION, "s": self.status, "t": self.type, "o": self.owner, "p": self.positions})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, query: ListQuery, shards: int) -> Cursor:
        status = query.status.value if query.status else None
        if query.cursor is None:
            return cls(status, query.type, [None] * shards, query.owner)
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
        if data.get("s") != status or data.get("t") != query.type or data.get("o") != query.owner:
            raise InvalidCursorError("cursor was issued for other filters; pass the same status, type and owner")
        return cls(status, query.type, positions, query.owner)


@dataclass(frozen=True)
class _Entry:
    shard: int
    job_id: str


@dataclass
class _Shard:
    index: int
    position: str | None  # resume after this job id (None: from the newest)
    next_before: str | None  # where the next query of this shard starts
    more_pages: bool
    buffer: deque[str] = field(default_factory=deque)
    outstanding: int = 0  # entries taken but not yet consumed


class ShardMerge:
    """K-way merge of the shards' newest-first streams, tracking how far each was handed out."""

    def __init__(self, table: JobsTable, cursor: Cursor, query: ListQuery, page_size: int) -> None:
        self._table = table
        self._cursor = cursor
        self._type = query.type
        self._owner = query.owner
        self._status = query.status.value if query.status in INDEXED_STATUSES and query.status else None
        self._page = page_size
        self._shards = [
            _Shard(
                index=index,
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
            ids, shard.next_before = self._table.query_shard(
                shard.index, shard.next_before, self._page, self._type, owner=self._owner, status=self._status
            )
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

    def cursor(self) -> Cursor:
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
        return Cursor(self._cursor.status, self._cursor.type, positions, self._cursor.owner)


class _Desc:
    """Orders strings descending inside heapq's min-heap."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value
