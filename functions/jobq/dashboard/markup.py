"""The dashboard's HTML pieces: its style, the page and error types, escaping and the small renderers."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jobq.domain.documents import JobDocument
from jobq.domain.models import format_timestamp

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:10px 24px;display:flex;gap:24px;align-items:center}
header a{color:#cfd6e4;text-decoration:none}header a.brand{color:#fff;font-weight:600;font-size:16px}
main{padding:18px 24px;max-width:1200px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e3e6eb;vertical-align:top}
th{background:#eef0f4;font-weight:600}
code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#fff;border:1px solid #e3e6eb;padding:8px;overflow:auto}
.s{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff}
.s-queued{background:#6b7280}.s-running{background:#2563eb}.s-succeeded{background:#16a34a}
.s-failed{background:#dc2626}.s-cancelled{background:#a16207}
.counts{display:flex;gap:10px;margin:0 0 14px}.counts a{background:#fff;border:1px solid #e3e6eb;
padding:6px 12px;border-radius:6px;text-decoration:none;color:inherit}.counts b{font-size:18px;display:block}
.bar{width:160px;height:10px;background:#e3e6eb;border-radius:5px;display:inline-block;vertical-align:middle}
.bar span{display:block;height:100%;background:#2563eb;border-radius:5px}
.error{background:#fde8e8;border:1px solid #f5b5b5;padding:10px;border-radius:6px}
.note{color:#5b6475}.nowrap{white-space:nowrap}form.inline{display:inline}button{padding:4px 12px;cursor:pointer}
fieldset{border:1px solid #e3e6eb;background:#fff;margin:8px 0}label{display:block;margin:6px 0}
input[type=text],input[type=number],textarea,select{font:inherit;padding:3px 6px}
"""

SWITCH_FIELDSETS = """
function showType(){var t=document.getElementById('type').value;
document.querySelectorAll('fieldset[data-type]').forEach(function(f){
var on=f.dataset.type===t;f.hidden=!on;f.disabled=!on;});}
document.getElementById('type').addEventListener('change',showType);showType();
"""


class DashboardError(Exception):
    """A page that cannot be shown: its status and message."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Page:
    """An HTML answer, or a redirect (``location``)."""

    status: int
    body: str = ""
    location: str | None = None


def e(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value), quote=True)


def status_badge(status: str) -> str:
    return f'<span class="s s-{e(status)}">{e(status)}</span>'


def progress_bar(job: JobDocument) -> str:
    """A bar when the total is known; ``done`` and the message either way; empty when nothing reported."""
    progress = job.progress
    if progress is None:
        return ""
    text = f"{progress.done:g}" + (f" / {progress.total:g}" if progress.total is not None else "")
    text += f" {progress.message}" if progress.message else ""
    fraction = progress.fraction
    if fraction is None:
        return f'<span class="note">{e(text)}</span>'
    return (
        f'<span class="bar" title="{fraction:.0%}"><span style="width:{fraction * 100:.1f}%"></span></span> '
        f'<span class="note">{e(text)}</span>'
    )


def pretty_json(value: Any) -> str:
    return f"<pre>{e(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"


def when(value: Any) -> str:
    return "-" if value is None else e(format_timestamp(value))


def listed(details: Any) -> Iterable[Any]:
    return details if isinstance(details, list) else ([] if details is None else [details])


def problem_text(item: Any) -> str:
    if isinstance(item, dict) and "msg" in item:
        return f"{'.'.join(str(part) for part in item.get('loc', []))}: {item['msg']}"
    return json.dumps(item, ensure_ascii=False)
