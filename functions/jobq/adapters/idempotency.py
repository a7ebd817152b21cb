"""IdempotencyStore on Powertools' idempotency utility, persisted in DynamoDB (IdempotencyTable)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)

from jobq.domain.errors import (
    DependencyUnavailableError,
    IdempotencyKeyInProgressError,
    IdempotencyKeyReusedError,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class PowertoolsIdempotencyStore:
    """Records keyed by a hash of the Idempotency-Key; the request itself is the validation payload."""

    def __init__(self, client: DynamoDBClient, table_name: str, *, expires_after_seconds: int) -> None:
        self._persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
        self._config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="request",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expires_after_seconds,
        )

    def register_lambda_context(self, context: Any) -> None:
        """An in-progress record then expires with the invocation, so a crashed request does not lock its key."""
        self._config.register_lambda_context(context)

    def once(self, key: str, fingerprint: Mapping[str, Any], action: Callable[[], str]) -> tuple[str, bool]:
        ran: list[bool] = []

        def submit(submission: dict[str, Any]) -> dict[str, str]:
            ran.append(True)
            return {"result": action()}

        guarded = cast(
            "Callable[..., dict[str, str]]",
            idempotent_function(
                submit,
                data_keyword_argument="submission",
                persistence_store=self._persistence,
                config=self._config,
                key_prefix="jobq#submit",
            ),
        )
        try:
            stored = guarded(submission={"key": key, "request": dict(fingerprint)})
        except IdempotencyValidationError:
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was used with a different request; use a new key for a new job"
            ) from None
        except IdempotencyAlreadyInProgressError:
            raise IdempotencyKeyInProgressError(
                "a request with this Idempotency-Key is still in progress; try again shortly"
            ) from None
        except IdempotencyPersistenceLayerError as exc:
            raise DependencyUnavailableError(f"idempotency store failed: {exc}") from exc
        return str(stored["result"]), bool(ran)
