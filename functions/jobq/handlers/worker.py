"""Worker function: SQS batch -> Powertools BatchProcessor -> JobRunner, with partial batch responses."""

from __future__ import annotations

# First: the garbage collector pauses while the imports below run (coldinit.done(), the last line, resumes it).
from jobq.handlers import coldinit

# isort: split
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import ValidationError

from jobq.caching import per_process
from jobq.domain.budget import TimeBudget
from jobq.domain.decisions import Defer
from jobq.domain.errors import DependencyUnavailableError
from jobq.domain.models import Delivery, JobMessage
from jobq.domain.ports import VisibilityChange
from jobq.observability import get_logger, instrument
from jobq.wiring import get_job_runner, get_queue

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


class RecordDeferredError(Exception):
    """Reported to the batch processor so the record counts as a batch item failure."""


def parse_delivery(record: SQSRecord) -> Delivery:
    """The job message and receive count of an SQS record; ValidationError for a garbage body."""
    return Delivery(
        message=JobMessage.model_validate_json(record.body or ""),
        receive_count=int(record.attributes.approximate_receive_count or 1),
    )


@per_process
def _entrypoint() -> Callable[[Mapping[str, Any], LambdaContext], dict[str, Any]]:
    runner = get_job_runner()
    queue = get_queue()
    logger = get_logger()

    def handle(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
        # One processor per invocation: its state is per batch (and Lambda runs one invocation at a time).
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        budget = TimeBudget(lambda: context.get_remaining_time_in_millis() / 1000)
        deferred: list[VisibilityChange] = []
        records = list(event["Records"])
        deliveries: dict[str, Delivery] = {}
        for raw in records:
            record = SQSRecord(raw)
            with suppress(ValidationError, ValueError):  # a poison message is answered in its turn, below
                deliveries[record.message_id] = parse_delivery(record)
        claimed = runner.claim_ahead(list(deliveries.values()), budget)

        def record_handler(record: SQSRecord) -> str:
            delivery = deliveries.get(record.message_id)
            if delivery is None:
                # Poison message: no job to fail. Returned at once, so the redrive policy moves it
                # to the dead-letter queue after maxReceiveCount receives, where it can be inspected.
                logger.error("invalid message body", extra={"message_id": record.message_id})
                deferred.append(VisibilityChange(record.receipt_handle, 0))
                raise RecordDeferredError("invalid message body")
            decision = runner.handle(delivery, budget, claimed.pop(delivery.message.job_id, None))
            if isinstance(decision, Defer):
                deferred.append(VisibilityChange(record.receipt_handle, decision.delay_seconds))
                raise RecordDeferredError(decision.reason)
            return decision.reason

        with processor(records=records, handler=record_handler, lambda_context=context):
            processor.process()
        if deferred:
            try:
                refused = queue.change_visibility(deferred)
            except DependencyUnavailableError:
                logger.exception("could not set the visibility of returned messages")
            else:
                if refused:
                    logger.warning("SQS refused visibility changes", extra={"refused": refused})
        return dict(processor.response())

    return instrument(handle)


def lambda_handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point of the worker function."""
    return _entrypoint()(event, context)


coldinit.done()
