"""Lambda SnapStart: what environments restored from one snapshot must not share.

jobq builds no client, connection, lease id or random generator while a function initialises (every one
is made on first use, after a restore), so a snapshot holds imported modules only. The one shared state
left is the ``random`` module's generator, seeded when it was imported: botocore draws its retry jitter
from it, and restored environments would draw the same sequence. The after-restore hook reseeds it.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def reseed() -> None:
    """Seed ``random``'s module generator from the OS again."""
    random.seed()


def register_hooks() -> bool:
    """Register the after-restore hook with Lambda's ``snapshot_restore_py``; False where it is absent."""
    try:
        from snapshot_restore_py import register_after_restore  # type: ignore[import-not-found]
    except ImportError:  # outside Lambda's managed Python runtimes
        return False
    register: Callable[[Callable[[], None]], object] = register_after_restore
    register(reseed)
    return True
