"""The files a local runtime hands to the process that started it: never read half-written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobq_local.__main__ import write_whole


def test_a_runtime_file_appears_whole_never_written_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "ready.json"
    written_in_place: list[bool] = []
    original = Path.write_text

    def spy(self: Path, text: str, *args: Any, **kwargs: Any) -> int:
        written_in_place.append(self == target)  # a reader that waits for target to exist would see it partial
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", spy)
    write_whole(target, json.dumps({"api_url": "http://127.0.0.1:3000"}))
    write_whole(target, json.dumps({"api_url": "http://127.0.0.1:3001"}))  # over an existing one, too
    assert written_in_place == [False, False]
    assert json.loads(target.read_text()) == {"api_url": "http://127.0.0.1:3001"}
    assert list(tmp_path.iterdir()) == [target]  # nothing left beside it
