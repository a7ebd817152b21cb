"""A function's cold init without the garbage collector walking what its imports build.

Each handler module imports this module first: importing it stops automatic collection, and ``done()``,
the handler module's last line, moves every object the imports built (modules, classes, pydantic's and
Powertools' machinery: 69,000-83,000 tracked objects) to the permanent generation, which no later
collection walks, and starts automatic collection again. Without it the imports set off 110-130
collections, each full one walking everything built so far (16 ms of the API's cold init), and every full
collection of every invocation after walked them all again. The imports leave little cyclic garbage
(about 700 objects); frozen with the rest, it stays for the life of the environment.
"""

from __future__ import annotations

import gc


class _Pause:
    """Automatic collection, stopped from this module's import until ``end``, if it was running."""

    def __init__(self) -> None:
        self.active = gc.isenabled()
        if self.active:
            gc.disable()

    def end(self) -> None:
        if self.active:
            self.active = False
            gc.freeze()
            gc.enable()


_pause = _Pause()


def done() -> None:
    """Freeze what the imports built and collect automatically again (once; later calls do nothing)."""
    _pause.end()
