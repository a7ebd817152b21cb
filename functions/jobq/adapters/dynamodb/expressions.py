"""UpdateItem expressions: SET/REMOVE clauses and the condition of an ``Expect``, with placeholder names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobq.domain.ports import Expect

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


class UpdateExpression:
    """Builds SET/REMOVE clauses and a status/lease condition with placeholder names."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttributeValueTypeDef] = {}
        self._sets: list[str] = []
        self._removes: list[str] = []

    def _name(self, attribute: str) -> str:
        placeholder = f"#{attribute}"
        self.names[placeholder] = attribute
        return placeholder

    def _value(self, value: AttributeValueTypeDef) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def set(self, attribute: str, value: AttributeValueTypeDef) -> None:
        self._sets.append(f"{self._name(attribute)} = {self._value(value)}")

    def set_or_remove(self, attribute: str, value: AttributeValueTypeDef | None) -> None:
        if value is None:
            self.remove(attribute)
        else:
            self.set(attribute, value)

    def remove(self, *attributes: str) -> None:
        self._removes.extend(self._name(attribute) for attribute in attributes)

    def condition(self, expect: Expect) -> str:
        statuses = ", ".join(self._value({"S": status.value}) for status in sorted(expect.statuses))
        clauses = [f"{self._name('status')} IN ({statuses})"]
        if expect.lease_id is not None:
            clauses.append(f"{self._name('lease_id')} = {self._value({'S': expect.lease_id})}")
        if expect.attempts is not None:
            clauses.append(f"{self._name('attempts')} = {self._value({'N': str(expect.attempts)})}")
        if expect.owner is not None:
            clauses.append(f"{self._name('owner')} = {self._value({'S': expect.owner})}")
        return " AND ".join(clauses)

    def render(self) -> str:
        parts = []
        if self._sets:
            parts.append("SET " + ", ".join(self._sets))
        if self._removes:
            parts.append("REMOVE " + ", ".join(self._removes))
        return " ".join(parts)
