"""Lambda's SQS event source mapping: long polling, batching, partial batch responses, deletes only what succeeded."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobq_local import LOGGER_NAME
from jobq_local.events import QueueMessage, sqs_event
from jobq_local.functions import Hosted
from jobq_local.template import Template, TemplateError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_log = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class SqsMappingConfig:
    """The SQS event's properties that shape polling and batching."""

    queue_url: str
    queue_arn: str
    batch_size: int
    batching_window: float
    report_batch_item_failures: bool
    max_concurrency: int


class SqsEventSourceMapping:
    """Lambda's SQS poller: long polling, batching, partial batch responses, deletes only what succeeded.

    Records the function reports as failed (or a whole batch, when it raises or returns an invalid
    response) are left alone: they come back when their visibility timeout ends, and the queue's redrive
    policy moves them to the dead-letter queue after maxReceiveCount receives.
    """

    LONG_POLL_SECONDS = 2  # SQS long polling; short enough that Ctrl-C stops the pollers at once

    def __init__(self, function: Hosted, config: SqsMappingConfig, client: SQSClient, *, pollers: int) -> None:
        self.function = function
        self.config = config
        self._client = client
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._poll, name=f"esm-{function.name}-{n}", daemon=True)
            for n in range(max(1, min(pollers, config.max_concurrency)))
        ]
        self.invocations = 0
        self.invoke_seconds = 0.0
        self.restarts = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.LONG_POLL_SECONDS + self.function.spec.timeout)

    def _poll(self) -> None:
        """Receive and process until stopped; whatever escapes a round is logged and the poller carries on."""
        while not self._stop.is_set():
            try:
                batch = self._receive_batch()
                if batch:
                    self.process(batch)
            except BaseException:  # noqa: BLE001 - a poller outlives emulator hiccups and hostile handlers alike
                _log.exception("a poller of %s failed; a new one takes over in 1 s", self.function.name)
                self.restarts += 1
                self._stop.wait(1)

    def _receive_batch(self) -> list[QueueMessage]:
        batch: list[QueueMessage] = []
        window_ends = time.monotonic() + self.config.batching_window
        while not self._stop.is_set() and len(batch) < self.config.batch_size:
            # A long poll either way: for the first message, then for the rest of the window (rounded up to
            # SQS's whole seconds), so that a partial batch waits in one receive instead of many empty ones.
            wait = self.LONG_POLL_SECONDS if not batch else math.ceil(max(0.0, window_ends - time.monotonic()))
            response = self._client.receive_message(
                QueueUrl=self.config.queue_url,
                MaxNumberOfMessages=min(10, self.config.batch_size - len(batch)),
                WaitTimeSeconds=min(wait, self.LONG_POLL_SECONDS),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch.extend(QueueMessage.from_receive(message) for message in response.get("Messages", []))
            if batch and time.monotonic() >= window_ends:
                break
            if not batch:
                window_ends = time.monotonic() + self.config.batching_window
        return batch

    def process(self, batch: list[QueueMessage]) -> None:
        """Invoke the function with one batch and settle its messages as Lambda does."""
        event = sqs_event(batch, queue_arn=self.config.queue_arn, region=self.function.region)
        with self._lock:
            self.invocations += 1
        started = time.monotonic()
        try:
            response = self.function.invoke(event)
        except BaseException:  # noqa: BLE001 - a function error (exit included) fails the whole batch, as in Lambda
            _log.exception("%s raised: the whole batch of %d returns to the queue", self.function.name, len(batch))
            return
        finally:
            with self._lock:
                self.invoke_seconds += time.monotonic() - started
        failed = self.failed_ids(response, batch)
        if failed is None:
            _log.error("%s returned an invalid batch response: the whole batch fails", self.function.name)
            return
        done = [message for message in batch if message.message_id not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            result = self._client.delete_message_batch(
                QueueUrl=self.config.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m.receipt_handle} for n, m in enumerate(chunk)],
            )
            if result.get("Failed"):
                _log.warning("could not delete %d messages", len(result["Failed"]))

    def failed_ids(self, response: Any, batch: list[QueueMessage]) -> set[str] | None:
        """Message ids the response reports as failed; None when the response fails the whole batch."""
        if not self.config.report_batch_item_failures or response is None or response == "":
            return set()
        if not isinstance(response, dict):
            return set()
        items = response.get("batchItemFailures")
        if items is None:
            return set()
        if not isinstance(items, list):
            return None
        known = {message.message_id for message in batch}
        failed: set[str] = set()
        for item in items:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not isinstance(identifier, str) or identifier not in known:
                return None
            failed.add(identifier)
        return failed


def sqs_mappings(template: Template, functions: Mapping[str, Hosted]) -> list[tuple[Hosted, SqsMappingConfig]]:
    """Every SQS event of every function, with the template's batching settings (SAM's defaults otherwise)."""
    mappings = []
    for spec in template.functions():
        for event in spec.events:
            if event.type != "SQS":
                continue
            properties = {key: template.resolve(value) for key, value in event.properties.items() if key != "Enabled"}
            queue_arn = str(properties["Queue"])
            queue_url = _queue_url_for_arn(template, queue_arn)
            config = SqsMappingConfig(
                queue_url=queue_url,
                queue_arn=queue_arn,
                batch_size=int(properties.get("BatchSize", 10)),
                batching_window=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                max_concurrency=int(properties.get("ScalingConfig", {}).get("MaximumConcurrency", 1000)),
            )
            mappings.append((functions[spec.logical_id], config))
    return mappings


def _queue_url_for_arn(template: Template, arn: str) -> str:
    for physical in template.physical.values():
        if physical.attributes.get("Arn") == arn and "QueueUrl" in physical.attributes:
            return physical.attributes["QueueUrl"]
    raise TemplateError(f"no provisioned queue has the ARN {arn}")
