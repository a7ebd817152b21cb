"""Folders the tests hand to the processes they start."""

from __future__ import annotations

from pathlib import Path

HOSTILE_SITE = Path(__file__).resolve().parent / "hostile_site"
"""On PYTHONPATH, its ``sitecustomize`` adds test-only job types to every jobq process (see its docstring)."""
