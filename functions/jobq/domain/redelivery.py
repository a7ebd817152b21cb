"""What becomes of a delivered message that is not simply done: it comes back after a delay, or its failed job's
message goes to the dead-letter queue. Both count with the queue's maxReceiveCount (``max_receive_count``)."""

from __future__ import annotations

import logging

from jobq.domain.decisions import Ack, Decision, Defer
from jobq.domain.errors import DependencyUnavailableError
from jobq.domain.models import Delivery, Job, JobMessage
from jobq.domain.ports import DeadLetterRoute, JobEvents, JobQueue

_log = logging.getLogger(__name__)

MAX_SQS_DELAY_SECONDS = 900


class Redelivery:
    """Defers and dead-letters messages, one receive short of the queue's own redrive where that matters."""

    def __init__(self, *, queue: JobQueue, events: JobEvents, max_receive_count: int) -> None:
        self._queue = queue
        self._events = events
        self._max_receive_count = max_receive_count

    def dead_letter(self, job: Job, delivery: Delivery) -> Decision:
        """A failed job's message goes to the DLQ: by redrive if this was its last receive, else sent."""
        if delivery.receive_count >= self._max_receive_count:
            self._events.dead_lettered(job, DeadLetterRoute.REDRIVE)
            return Defer(0, "failed: the queue's redrive moves the message to the dead-letter queue")
        try:
            self._queue.send_to_dead_letter(JobMessage.of(job))
        except DependencyUnavailableError:
            _log.exception("could not send failed job %s to the dead-letter queue", job.job_id)
            return Ack("failed; the dead-letter queue was unavailable")
        self._events.dead_lettered(job, DeadLetterRoute.SENT)
        return Ack("failed and sent to the dead-letter queue")

    def defer(self, delivery: Delivery, delay: int, reason: str) -> Decision:
        """Have the message come again after ``delay``: hand it back, or, when one more receive would
        dead-letter it, enqueue a fresh copy and acknowledge this one."""
        if delivery.receive_count < self._max_receive_count:
            self._events.deferred(delivery.message.job_id, delay, reason)
            return Defer(delay, reason)
        try:
            self._queue.send(delivery.message, delay_seconds=min(delay, MAX_SQS_DELAY_SECONDS))
        except DependencyUnavailableError:
            _log.exception("could not re-enqueue job %s; its message may reach the DLQ", delivery.message.job_id)
            return Defer(delay, reason)
        self._events.deferred(delivery.message.job_id, delay, f"{reason} (fresh message)")
        return Ack(f"{reason}: re-enqueued as a fresh message")
