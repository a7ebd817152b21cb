"""Functions' JSON log lines (Powertools) as short, readable terminal lines."""

from __future__ import annotations

import io
import json
import sys
import threading
from typing import Any, TextIO

_HIDDEN = {
    "level", "message", "timestamp", "service", "location", "cold_start", "function_arn",
    "function_memory_size", "function_request_id", "function_name", "correlation_id", "xray_trace_id",
    "sampling_rate", "job_id", "job_type",
}  # fmt: skip
_COLOURS = {"DEBUG": "\033[2m", "INFO": "", "WARNING": "\033[33m", "ERROR": "\033[31m", "CRITICAL": "\033[31m"}


def pretty(line: str, *, colour: bool) -> str | None:
    """One readable line for a Powertools JSON line; None to drop it (EMF metric blobs); other text as is."""
    stripped = line.strip()
    if not stripped.startswith("{"):
        return line.rstrip("\n")
    try:
        record: dict[str, Any] = json.loads(stripped)
    except ValueError:
        return line.rstrip("\n")
    if "_aws" in record:
        return None
    if "level" not in record or "message" not in record:
        return stripped
    clock = str(record.get("timestamp", ""))[11:23]
    function = record.get("function_name", record.get("service", ""))
    level = str(record["level"])
    job = f" [{record['job_type']} {record['job_id']}]" if "job_id" in record and "job_type" in record else ""
    extras = " ".join(f"{k}={_short(v)}" for k, v in record.items() if k not in _HIDDEN)
    text = f"{clock} {function:<15} {level:<7}{job} {record['message']}" + (f"  {extras}" if extras else "")
    if colour and _COLOURS.get(level):
        return f"{_COLOURS[level]}{text}\033[0m"
    return text


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return text if len(text) <= 200 else text[:197] + "..."


class PrettyStream(io.TextIOBase):
    """A text stream that rewrites whole JSON log lines before they reach ``target``."""

    def __init__(self, target: TextIO, *, colour: bool | None = None) -> None:
        self._target = target
        self._colour = target.isatty() if colour is None else colour
        self._buffer = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._buffer += text
            while "\n" in self._buffer:
                line, self._buffer = self._buffer.split("\n", 1)
                shown = pretty(line, colour=self._colour)
                if shown is not None:
                    self._target.write(shown + "\n")
            self._target.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self._target.flush()


def install(*, raw: bool) -> None:
    """Send this process's stdout through the prettifier (unless ``raw``)."""
    if not raw:
        sys.stdout = PrettyStream(sys.__stdout__ or sys.stdout)
