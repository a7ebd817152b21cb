"""What a rehearsal proved, what it worked around and what failed, with the time of each phase."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


class Abort(Exception):
    """A phase could not go on; the phases after it cannot run."""


@dataclass
class Report:
    """Checks and phases as they happen, printed through ``say``; ``summary()`` at the end."""

    say: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    phases: list[tuple[str, float]] = field(default_factory=list)
    proved: list[str] = field(default_factory=list)
    worked_around: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failed and bool(self.proved)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Times the block; an exception in it is recorded as a failure of the phase and raised as Abort."""
        self.say(f"\n== {name}")
        started = self.clock()
        try:
            yield
        except Abort as exc:
            self.failed.append(f"{name}: {exc}")
            raise
        except Exception as exc:
            self.failed.append(f"{name}: {type(exc).__name__}: {exc}")
            raise Abort(str(exc)) from exc
        finally:
            seconds = self.clock() - started
            self.phases.append((name, seconds))
            self.say(f"-- {name}: {seconds:.1f} s")

    def check(self, ok: bool, claim: str, detail: str = "") -> bool:
        """Record ``claim`` as proved, or as failed with ``detail``."""
        if ok:
            self.proved.append(claim)
        else:
            self.failed.append(f"{claim}: NOT SO" + (f" ({detail})" if detail else ""))
        self.say(("  ok    " if ok else "  FAIL  ") + claim + ("" if ok or not detail else f" ({detail})"))
        return ok

    def workaround(self, what: str) -> None:
        self.worked_around.append(what)
        self.say(f"  ~     {what}")

    def skip(self, what: str) -> None:
        self.skipped.append(what)
        self.say(f"  skip  {what}")

    def summary(self, emulator: str, total: float) -> str:
        width = max((len(name) for name, _ in self.phases), default=5)
        lines = [f"deploy rehearsal on {emulator}: {'PASSED' if self.passed else 'FAILED'}", "", "phases:"]
        lines += [f"  {name:<{width}}  {seconds:6.1f} s" for name, seconds in self.phases]
        lines += [f"  {'total':<{width}}  {total:6.1f} s", "", f"proved ({len(self.proved)}):"]
        lines += [f"  + {item}" for item in self.proved] or ["  (nothing)"]
        lines += ["", f"worked around ({emulator}):"]
        lines += [f"  ~ {item}" for item in self.worked_around] or ["  none"]
        if self.skipped:
            lines += ["", "skipped:", *(f"  . {item}" for item in self.skipped)]
        lines += ["", "failed:"]
        lines += [f"  - {item}" for item in self.failed] or ["  none"]
        return "\n".join(lines)
