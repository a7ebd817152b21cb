"""PartiQL UPDATE for moto's ``BatchExecuteStatement``, run as moto's own ``update_item``.

moto's PartiQL parser fails on a second SET assignment or a REMOVE, and answers an UPDATE whose WHERE does
not hold (or whose item does not exist) as a success without writing. ``install()`` makes the backend
translate each UPDATE of a small subset (SET, REMOVE, a WHERE of comparisons, ``IS [NOT] MISSING``, NOT, AND,
OR and parentheses, ``RETURNING ALL NEW|OLD *``) into an UpdateExpression and a ConditionExpression, and
leaves every other statement to moto.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Node = tuple[Any, ...]
_TABLE = re.compile(r'\s*UPDATE\s+(?:"([^"]+)"|([A-Za-z_][A-Za-z0-9_.-]*))', re.IGNORECASE)
_TOKEN = re.compile(
    r'\s*(?:"(?P<name>[^"]+)"|\'(?P<str>(?:[^\']|\'\')*)\'|(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)'
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|<>|!=|[=<>+\-(),?*]))"
)
_KEYWORDS = {"SET", "REMOVE", "WHERE", "RETURNING", "AND", "OR", "NOT", "IS", "MISSING"}
_COMPARISONS = {"=", "<>", "!=", "<", "<=", ">", ">="}
_MISSING_KEY = "Where clause does not contain a mandatory equality on all key attributes"


class PartiQLError(ValueError):
    """An UPDATE outside the supported subset, or one DynamoDB would reject."""


@dataclass(frozen=True)
class UpdateCall:
    """One PartiQL UPDATE as the arguments of ``update_item``."""

    table_name: str
    key_conditions: dict[str, dict[str, Any]]
    update_expression: str
    condition_expression: str | None
    names: dict[str, str]
    values: dict[str, dict[str, Any]]
    returning: str | None


class _Parser:
    """A recursive-descent parser over the statement's tokens; ``?`` takes the parameters in order."""

    def __init__(self, text: str, parameters: list[dict[str, Any]]) -> None:
        self.tokens: list[tuple[str, str]] = []
        pos, text = 0, text.rstrip()
        while pos < len(text):
            if not (match := _TOKEN.match(text, pos)):
                raise PartiQLError(f"Unexpected text at {text[pos : pos + 20]!r}")
            kind = match.lastgroup or ""
            value = match.group(kind)
            if kind == "word" and value.upper() in _KEYWORDS:
                kind, value = "kw", value.upper()
            self.tokens.append((kind, value))
            pos = match.end()
        self.pos, self.parameters, self.used = 0, parameters, 0

    def peek(self, kind: str, *values: str) -> bool:
        token = self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")
        return token[0] == kind and (not values or token[1] in values)

    def accept(self, kind: str, *values: str) -> bool:
        found = self.peek(kind, *values)
        self.pos += found
        return found

    def take(self, kind: str, *values: str) -> str:
        if not self.accept(kind, *values):
            found = self.tokens[self.pos][1] if self.pos < len(self.tokens) else "end of statement"
            raise PartiQLError(f"Expected {' or '.join(values) or kind}, found {found!r}")
        return self.tokens[self.pos - 1][1]

    def path(self) -> Node:
        return ("path", self.take("word") if self.peek("word") else self.take("name"))

    def operand(self) -> Node:
        if self.accept("op", "?"):
            if self.used >= len(self.parameters):
                raise PartiQLError("Number of parameters in request and statement don't match.")
            self.used += 1
            return ("value", self.parameters[self.used - 1])
        if self.peek("str"):
            return ("value", {"S": self.take("str").replace("''", "'")})
        sign = "-" if self.accept("op", "-") else ""
        if sign or self.peek("num"):
            return ("value", {"N": sign + self.take("num")})
        return self.path()

    def clauses(self) -> tuple[list[tuple[Node, Node]], list[Node]]:
        sets: list[tuple[Node, Node]] = []
        removes: list[Node] = []
        while self.peek("kw", "SET", "REMOVE"):
            clause = self.take("kw")
            while True:
                path = self.path()
                if clause == "REMOVE":
                    removes.append(path)
                else:
                    self.take("op", "=")
                    value = self.operand()
                    if self.peek("op", "+", "-"):
                        value = ("arith", self.take("op"), value, self.operand())
                    sets.append((path, value))
                if not self.accept("op", ","):
                    break
        if not sets and not removes:
            raise PartiQLError("An UPDATE needs a SET or a REMOVE clause")
        return sets, removes

    def returning(self) -> str | None:
        if not self.accept("kw", "RETURNING"):
            return None
        words = [self.take("word").upper(), self.take("word").upper(), self.take("op", "*")]
        if words[0] != "ALL" or words[1] not in ("NEW", "OLD"):
            raise PartiQLError("Only RETURNING ALL NEW * and RETURNING ALL OLD * are supported")
        return f"ALL_{words[1]}"

    def condition(self, level: int = 0) -> Node:
        if level < 2:  # 0: OR, 1: AND; a parenthesized OR in an OR (AND in an AND) joins its parent
            kind = ("or", "and")[level]
            parts: list[Node] = []
            while not parts or self.accept("kw", kind.upper()):
                part = self.condition(level + 1)
                parts += part[1] if part[0] == kind else [part]
            return parts[0] if len(parts) == 1 else (kind, parts)
        if self.accept("kw", "NOT"):
            return ("not", self.condition(2))
        if self.accept("op", "("):
            inner = self.condition()
            self.take("op", ")")
            return inner
        left = self.operand()
        if left[0] == "path" and self.accept("kw", "IS"):
            negated = self.accept("kw", "NOT")
            self.take("kw", "MISSING")
            return ("missing", left, negated)
        op = self.take("op")
        if op not in _COMPARISONS:
            raise PartiQLError(f"Unsupported operator {op!r}")
        return ("cmp", "<>" if op == "!=" else op, left, self.operand())


class _Renderer:
    """Names become ``#n0, #n1...`` (one per attribute), values ``:v0, :v1...`` (one per occurrence)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, dict[str, Any]] = {}

    def __call__(self, node: Node) -> str:
        kind = node[0]
        if kind == "path":
            placeholder = next((k for k, v in self.names.items() if v == node[1]), f"#n{len(self.names)}")
            self.names[placeholder] = node[1]
            return placeholder
        if kind == "value":
            self.values[f":v{len(self.values)}"] = node[1]
            return f":v{len(self.values) - 1}"
        if kind in ("arith", "cmp"):
            return f"{self(node[2])} {node[1]} {self(node[3])}"
        if kind == "missing":
            return f"attribute_{'exists' if node[2] else 'not_exists'}({self(node[1])})"
        if kind == "not":
            return f"NOT ({self(node[1])})"
        return f" {kind.upper()} ".join(f"({self(p)})" if p[0] in ("and", "or") else self(p) for p in node[1])


def translate_update(
    statement: str, parameters: list[dict[str, Any]], key_attrs: Callable[[str], Sequence[str]]
) -> UpdateCall | None:
    """The ``update_item`` call for one PartiQL UPDATE, or None for any other statement.

    ``key_attrs`` gives a table's key attribute names (it may raise for an unknown table).
    """
    if not re.match(r"\s*UPDATE\b", statement, re.IGNORECASE):
        return None
    if not (table := _TABLE.match(statement)):
        raise PartiQLError("Expected a table name after UPDATE")
    table_name = table.group(1) or table.group(2)
    parser = _Parser(statement[table.end() :], parameters)
    sets, removes = parser.clauses()
    parser.take("kw", "WHERE")
    where = parser.condition()
    returning = parser.returning()
    if not parser.peek("end"):
        raise PartiQLError(f"Unexpected {parser.tokens[parser.pos][1]!r}")
    if parser.used != len(parameters):
        raise PartiQLError("Number of parameters in request and statement don't match.")
    conjuncts = list(where[1]) if where[0] == "and" else [where]
    key = {attr: _take_key(conjuncts, attr) for attr in key_attrs(table_name)}
    render = _Renderer()
    update = ("SET " + ", ".join(f"{render(p)} = {render(v)}" for p, v in sets)) if sets else ""
    if removes:
        update = f"{update} REMOVE {', '.join(render(p) for p in removes)}".strip()
    rest = conjuncts[0] if len(conjuncts) == 1 else ("and", conjuncts)
    condition = render(rest) if conjuncts else None
    return UpdateCall(table_name, key, update, condition, render.names, render.values, returning)


def _take_key(conjuncts: list[Node], attr: str) -> dict[str, Any]:
    """The value of the first ``attr = value`` among the conjuncts, which it leaves out of them."""
    for node in conjuncts:
        if node[0] == "cmp" and node[1] == "=":
            sides = {node[2][0]: node[2][1], node[3][0]: node[3][1]}
            if sides.get("path") == attr and "value" in sides:
                conjuncts.remove(node)
                return dict(sides["value"])
    raise PartiQLError(_MISSING_KEY)


def _error(code: str, message: str) -> dict[str, Any]:
    code = code.rsplit("#", maxsplit=1)[-1].removesuffix("Exception")
    return {"Error": {"Code": "ValidationError" if code == "Validation" else code, "Message": message}}


def _run(backend: Any, statement: dict[str, Any]) -> dict[str, Any] | None:
    """The batch response to one statement, or None if it is not an UPDATE."""
    from moto.core.exceptions import JsonRESTError
    from moto.dynamodb.exceptions import ConditionalCheckFailed

    try:
        call = translate_update(
            statement["Statement"], statement.get("Parameters", []), lambda t: backend.get_table(t).table_key_attrs
        )
        if call is None:
            return None
        table = backend.get_table(call.table_name)
        on_failure = statement.get("ReturnValuesOnConditionCheckFailure")
        old: Any = None
        if "ALL_OLD" in (on_failure, call.returning):
            old = copy.deepcopy(backend.get_item(call.table_name, call.key_conditions))
        condition = "attribute_exists(#key)"  # a PartiQL UPDATE never creates an item
        if call.condition_expression:
            condition += f" AND ({call.condition_expression})"
        try:
            item = backend.update_item(
                table_name=call.table_name,
                key=call.key_conditions,
                update_expression=call.update_expression,
                expression_attribute_names={**call.names, "#key": table.hash_key_attr},
                expression_attribute_values=call.values,
                condition_expression=condition,
                return_values_on_condition_check_failure=on_failure,
            )
        except ConditionalCheckFailed as e:
            error = _error(e.error_type, e.message)
            if on_failure == "ALL_OLD" and old is not None:
                error["Error"]["Item"] = old.to_json()["Attributes"]
            return {"TableName": call.table_name, **error}
    except PartiQLError as e:
        return _error("ValidationError", str(e))
    except JsonRESTError as e:  # ResourceNotFoundException from get_table, moto's ValidationException...
        return _error(e.error_type, e.message)
    response: dict[str, Any] = {"TableName": call.table_name}
    if call.returning:
        response["Item"] = (item if call.returning == "ALL_NEW" else old).to_json()["Attributes"]
    return response


def install() -> Callable[[], None]:
    """Patch moto's ``DynamoDBBackend.batch_execute_statement``; the returned function restores it."""
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.batch_execute_statement

    def batch_execute_statement(self: Any, statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # One statement at a time, in order, so a later statement sees what an earlier one wrote.
        return [_run(self, stmt) or original(self, [stmt])[0] for stmt in statements]

    DynamoDBBackend.batch_execute_statement = batch_execute_statement  # type: ignore[method-assign]

    def restore() -> None:
        DynamoDBBackend.batch_execute_statement = original  # type: ignore[method-assign]

    return restore
