"""The jobs queue and the dead-letter queue on SQS (JobQueue, MessageVisibility, DeadLetterQueue)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobq.adapters.aws import unavailable_on_failure
from jobq.domain.errors import DependencyUnavailableError
from jobq.domain.models import JobMessage
from jobq.domain.ports import DeadLetter, VisibilityChange

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

MAX_VISIBILITY_SECONDS = 43200
_BATCH = 10


class SqsJobQueue:
    """The jobs queue and its dead-letter queue."""

    def __init__(self, client: SQSClient, queue_url: str, dead_letter_url: str) -> None:
        self._client = client
        self._queue_url = queue_url
        self._dead_letter_url = dead_letter_url

    def send(self, message: JobMessage, *, delay_seconds: int = 0) -> None:
        with unavailable_on_failure("SQS", "SendMessage"):
            self._client.send_message(
                QueueUrl=self._queue_url,
                MessageBody=message.model_dump_json(exclude_defaults=True),
                DelaySeconds=delay_seconds,
            )

    def send_many(self, messages: Sequence[tuple[JobMessage, int]]) -> None:
        """SendMessageBatch, ten at a time; entries SQS refused are sent once more, then it gives up."""
        for start in range(0, len(messages), _BATCH):
            pending: dict[str, SendMessageBatchRequestEntryTypeDef] = {
                str(index): {
                    "Id": str(index),
                    "MessageBody": message.model_dump_json(exclude_defaults=True),
                    "DelaySeconds": delay,
                }
                for index, (message, delay) in enumerate(messages[start : start + _BATCH])
            }
            for _ in range(2):
                with unavailable_on_failure("SQS", "SendMessageBatch"):
                    response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=list(pending.values()))
                pending = {entry["Id"]: pending[entry["Id"]] for entry in response.get("Failed", [])}
                if not pending:
                    break
            if pending:
                raise DependencyUnavailableError(f"SQS SendMessageBatch refused {len(pending)} message(s)")

    def send_to_dead_letter(self, message: JobMessage) -> None:
        with unavailable_on_failure("SQS", "SendMessage"):
            self._client.send_message(
                QueueUrl=self._dead_letter_url, MessageBody=message.model_dump_json(exclude_defaults=True)
            )

    def change_visibility(self, changes: Sequence[VisibilityChange]) -> int:
        """Apply visibility changes in batches of ten; returns how many SQS refused."""
        return change_visibility(self._client, self._queue_url, changes)


def change_visibility(client: SQSClient, queue_url: str, changes: Sequence[VisibilityChange]) -> int:
    """ChangeMessageVisibilityBatch, ten at a time; returns how many changes SQS refused."""
    refused = 0
    for start in range(0, len(changes), _BATCH):
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {
                "Id": str(index),
                "ReceiptHandle": change.receipt_handle,
                "VisibilityTimeout": max(0, min(change.seconds, MAX_VISIBILITY_SECONDS)),
            }
            for index, change in enumerate(changes[start : start + _BATCH])
        ]
        with unavailable_on_failure("SQS", "ChangeMessageVisibilityBatch"):
            response = client.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)
        refused += len(response.get("Failed", []))
    return refused


class SqsDeadLetterQueue:
    """The dead-letter queue, for listing and redriving."""

    def __init__(self, client: SQSClient, url: str, *, wait_seconds: int = 1) -> None:
        self._client = client
        self._url = url
        self._wait = wait_seconds

    def receive(self, max_messages: int, *, hide_seconds: int) -> list[DeadLetter]:
        with unavailable_on_failure("SQS", "ReceiveMessage"):
            response = self._client.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=max(1, min(10, max_messages)),
                VisibilityTimeout=hide_seconds,
                WaitTimeSeconds=self._wait,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        return [
            DeadLetter(
                message_id=message["MessageId"],
                receipt_handle=message["ReceiptHandle"],
                body=message.get("Body", ""),
                receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            )
            for message in response.get("Messages", [])
        ]

    def delete(self, letter: DeadLetter) -> None:
        with unavailable_on_failure("SQS", "DeleteMessage"):
            self._client.delete_message(QueueUrl=self._url, ReceiptHandle=letter.receipt_handle)

    def put_back(self, letters: Sequence[DeadLetter]) -> None:
        change_visibility(self._client, self._url, [VisibilityChange(letter.receipt_handle, 0) for letter in letters])
