"""Sweeper function: on its schedule, recover jobs whose worker was lost or whose message was lost."""

from __future__ import annotations

# First: the garbage collector pauses while the imports below run (coldinit.done(), the last line, resumes it).
from jobq.handlers import coldinit

# isort: split
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from jobq.caching import per_process
from jobq.observability import get_logger, instrument
from jobq.wiring import get_sweeper

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@per_process
def _entrypoint() -> Callable[[Mapping[str, Any], LambdaContext], dict[str, Any]]:
    sweeper = get_sweeper()
    logger = get_logger()

    def handle(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        report = sweeper.run()
        summary = {key: value for key, value in asdict(report).items() if key != "advanced"}
        logger.info("sweep finished", extra=summary)
        return summary

    return instrument(handle)


def lambda_handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point of the sweeper function."""
    return _entrypoint()(event, context)


coldinit.done()
