"""EventBridge ``rate(...)`` schedules: a function invoked with a scheduled event at a fixed rate."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping

from jobq_local import LOGGER_NAME
from jobq_local.events import scheduled_event
from jobq_local.functions import Hosted
from jobq_local.template import Template, TemplateError

_log = logging.getLogger(LOGGER_NAME)

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """Seconds between runs of an EventBridge ``rate(...)`` expression."""
    match = _RATE.match(expression.strip())
    if not match:
        raise TemplateError(f"the local runtime runs rate(...) schedules only, not {expression!r}")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


class Schedule:
    """Invokes a function with an EventBridge scheduled event at a fixed rate."""

    def __init__(self, function: Hosted, name: str, interval: float, rule_arn: str) -> None:
        self.function = function
        self.name = name
        self.interval = interval
        self.rule_arn = rule_arn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"schedule-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.function.spec.timeout + 1)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            event = scheduled_event(self.rule_arn, region=self.function.region, account_id=self.function.account_id)
            try:
                self.function.invoke(event)
            except Exception:  # noqa: BLE001 - a failed run does not stop the schedule
                _log.exception("scheduled run of %s failed", self.function.name)


def schedules(template: Template, functions: Mapping[str, Hosted], *, every: float | None = None) -> list[Schedule]:
    """Every Schedule / ScheduleV2 event whose state is enabled; at its rate, or ``every`` seconds if given (the
    runtime's ``--schedules-every``: tests and demos that cannot wait a minute for the sweeper)."""
    found = []
    for spec in template.functions():
        for event in spec.events:
            if event.type not in {"Schedule", "ScheduleV2"}:
                continue
            properties = template.resolve(dict(event.properties))
            if properties.get("Enabled") is False or str(properties.get("State", "ENABLED")).upper() == "DISABLED":
                continue
            expression = str(properties.get("Schedule") or properties.get("ScheduleExpression"))
            rule_arn = f"arn:aws:events:{template.region}:{template.account_id}:rule/{spec.logical_id}{event.name}"
            interval = rate_seconds(expression) if every is None else every
            found.append(Schedule(functions[spec.logical_id], event.name, interval, rule_arn))
    return found
