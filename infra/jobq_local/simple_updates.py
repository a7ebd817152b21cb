"""UpdateItem for the store: the simplest UpdateExpressions applied directly, everything else as moto does it.

moto runs every UpdateExpression through a parse, a deep copy of the tree and ten validating and resolving walks
of it before its executor sets a single attribute: about four fifths of an UpdateItem's time in the store, and
the worker makes two UpdateItems a job. Most of jobq's expressions are of the simplest kind: top-level
attributes named by placeholders, set to a value, to another attribute, or to an attribute plus or minus a
number, and removed. For exactly those, on an item that exists, this checks what moto's validators check
(placeholders defined, no key attribute changed or read, no attribute named twice, a path operand present, numbers
for arithmetic, index key types and no empty index key) and sets the attributes as moto's executor would.
Whenever one of those checks would fail, or anything else is asked (a nested path, a function, ADD or DELETE,
an unnamed attribute, a new item, a table with a stream, the legacy parameters), moto's own method runs
instead, and its answer, error or not, is the answer. The condition is moto's own, evaluated first, as there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

_TOKEN = re.compile(r"\s*(?:(#[A-Za-z0-9_]+)|(:[A-Za-z0-9_]+)|([=+\-,])|([A-Za-z]+))")


class Action(NamedTuple):
    """One action of a simple expression: SET ``target`` to ``operand`` (``op`` ``value``), or REMOVE it."""

    clause: str  # "SET" or "REMOVE"
    target: str  # a name placeholder
    operand: str = ""  # a value or name placeholder (SET)
    op: str = ""  # "+" or "-": operand (a name) plus or minus ``value``
    value: str = ""


@lru_cache(maxsize=256)
def plan(expression: str) -> tuple[Action, ...] | None:
    """The actions of an expression of the simple kind, or None when it is of any other."""
    tokens: list[str] = []
    position = 0
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            if expression[position:].strip():
                return None
            break
        tokens.append(match.group().strip())
        position = match.end()
    actions: list[Action] = []
    seen: set[str] = set()
    index = 0
    while index < len(tokens):
        clause = tokens[index].upper()
        if clause not in ("SET", "REMOVE") or clause in seen:
            return None
        seen.add(clause)
        index += 1
        while True:
            parsed = _action(clause, tokens, index)
            if parsed is None:
                return None
            action, index = parsed
            actions.append(action)
            if index < len(tokens) and tokens[index] == ",":
                index += 1
                continue
            break
    return tuple(actions) or None


def _action(clause: str, tokens: list[str], index: int) -> tuple[Action, int] | None:
    def at(offset: int) -> str:
        return tokens[index + offset] if index + offset < len(tokens) else ""

    target = at(0)
    if not target.startswith("#"):
        return None
    if clause == "REMOVE":
        return Action("REMOVE", target), index + 1
    operand = at(2)
    if at(1) != "=" or not operand.startswith((":", "#")):
        return None
    if at(3) in ("+", "-"):
        if not operand.startswith("#") or not at(4).startswith(":"):
            return None
        return Action("SET", target, operand, at(3), at(4)), index + 5
    return Action("SET", target, operand), index + 3


class _NotSimple(Exception):
    """This request is for moto's own method."""


def install() -> None:
    """Route moto's DynamoDB ``update_item`` through ``update_item`` below (in this process)."""
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.update_item
    if getattr(original, "simple_updates", False):
        return

    def update_item_fast(self: Any, *args: Any, **kwargs: Any) -> Any:
        return update_item(original, self, *args, **kwargs)

    update_item_fast.simple_updates = True  # type: ignore[attr-defined]
    DynamoDBBackend.update_item = update_item_fast  # type: ignore[method-assign]


def update_item(
    original: Callable[..., Any],
    backend: Any,
    table_name: str,
    key: dict[str, dict[str, Any]],
    update_expression: str,
    expression_attribute_names: dict[str, Any],
    expression_attribute_values: dict[str, Any],
    attribute_updates: dict[str, Any] | None = None,
    expected: dict[str, Any] | None = None,
    condition_expression: str | None = None,
    return_values_on_condition_check_failure: str | None = None,
) -> Any:
    """moto's ``DynamoDBBackend.update_item``, the simple expressions applied without moto's tree walks."""
    arguments = (table_name, key, update_expression, expression_attribute_names, expression_attribute_values)
    options = {
        "attribute_updates": attribute_updates,
        "expected": expected,
        "condition_expression": condition_expression,
        "return_values_on_condition_check_failure": return_values_on_condition_check_failure,
    }
    actions = plan(update_expression) if update_expression and not attribute_updates and not expected else None
    if actions is None:
        return original(backend, *arguments, **options)
    names, values = expression_attribute_names or {}, expression_attribute_values or {}
    table = backend.get_table(table_name)  # (no such table: moto's own error, as moto's method raises first)
    try:
        item = _item(table, key, actions, names)
        _check_condition(item, condition_expression, names, values, return_values_on_condition_check_failure)
        _write(item, _changes(table, actions, names, values, item))
    except _NotSimple:
        return original(backend, *arguments, **options)
    return item


def _item(table: Any, key: dict[str, dict[str, Any]], actions: tuple[Action, ...], names: dict[str, Any]) -> Any:
    """The item to update, when the request is of the simple kind and the item exists."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    key_names = {table.hash_key_attr} | ({table.range_key_attr} if table.range_key_attr else set())
    if table.stream_shard is not None or set(key) != key_names:
        raise _NotSimple
    attributes = [names.get(action.target) for action in actions]
    read = {names.get(action.operand) for action in actions if action.operand.startswith("#")}
    if (
        None in attributes
        or len(set(attributes)) != len(attributes)
        or {*attributes, *read} & set(table.table_key_attrs)
    ):
        raise _NotSimple  # an undefined placeholder, an attribute named twice, a key attribute (target or operand)
    hash_value = DynamoType(key[table.hash_key_attr])
    range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    item = table.get_item(hash_value, range_value)
    if item is None:
        raise _NotSimple  # UpdateItem creates the item: moto's way
    return item


def _check_condition(
    item: Any, condition: str | None, names: dict[str, Any], values: dict[str, Any], on_failure: str | None
) -> None:
    """moto's condition check, as moto's update_item makes it (before the expression is validated)."""
    from moto.dynamodb.comparisons import create_condition_expression_parser
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    if not create_condition_expression_parser(condition, names, values).parse().expr(item):
        if on_failure == "ALL_OLD":
            raise ConditionalCheckFailed(item=item.to_json()["Attributes"])
        raise ConditionalCheckFailed


def _changes(
    table: Any, actions: tuple[Action, ...], names: dict[str, Any], values: dict[str, Any], item: Any
) -> list[tuple[str, Any]]:
    """Each attribute and its new value (None: removed), every operand read from the item as it was."""
    key_types = {definition["AttributeName"]: definition["AttributeType"] for definition in table.attr}
    changes: list[tuple[str, Any]] = []
    for action in actions:
        attribute = str(names[action.target])
        new = None if action.clause == "REMOVE" else _operand(action, names, values, item)
        if new is not None and attribute in key_types and (new.type != key_types[attribute] or _empty(new)):
            raise _NotSimple  # an index key of the wrong type, or empty: moto's error
        changes.append((attribute, new))
    return changes


def _empty(value: Any) -> bool:
    return value.type in ("S", "B") and not value.value


def _write(item: Any, changes: list[tuple[str, Any]]) -> None:
    """Set and remove the attributes as moto's executor does; an item grown too large is left as it was."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge

    before = list(item.attrs.items())
    try:
        for attribute, new in changes:
            if new is None:
                item.attrs.pop(attribute, None)
            else:
                item.attrs[attribute] = new
    except ItemSizeTooLarge:
        dict.clear(item.attrs)  # as it was, in its order, for moto's own method to fail as it fails
        dict.update(item.attrs, before)
        raise _NotSimple from None


def _operand(action: Action, names: dict[str, Any], values: dict[str, Any], item: Any) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    def read(placeholder: str) -> Any:
        if placeholder.startswith(":"):
            if placeholder not in values:
                raise _NotSimple
            return DynamoType(values[placeholder])
        attribute = names.get(placeholder)
        if attribute is None or attribute not in item.attrs:
            raise _NotSimple  # undefined, or an attribute the item lacks: moto's error
        return item.attrs[attribute]  # the same value, not a copy: moto's executor shares it too

    left = read(action.operand)
    if not action.op:
        return left
    right = read(action.value)
    if left.type != "N" or right.type != "N":
        raise _NotSimple
    return left + right if action.op == "+" else left - right
