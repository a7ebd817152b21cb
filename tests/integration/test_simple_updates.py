"""The store's UpdateItem: each request answered and applied as moto's own method answers and applies it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from jobq_local import simple_updates

ITEM = {
    "pk": {"S": "job-1"},
    "status": {"S": "queued"},
    "attempts": {"N": "0"},
    "lease_id": {"S": "old"},
    "progress": {"M": {"done": {"N": "1"}}},
    "word": {"S": "text"},
    "tags": {"L": [{"S": "a"}]},
}
CLAIM = (
    "SET #claimed_from = #status, #status = :running, #attempts = #attempts + :one, "
    "#lease_id = :lease, #started_at = :now REMOVE #progress"
)
NAMES = {
    "#status": "status",
    "#claimed_from": "claimed_from",
    "#attempts": "attempts",
    "#lease_id": "lease_id",
    "#started_at": "started_at",
    "#progress": "progress",
    "#word": "word",
    "#tags": "tags",
    "#pk": "pk",
    "#sk": "status_sk",
    "#big": "big",
    "#missing": "missing",
    "#copy": "copy",
}
VALUES = {
    ":running": {"S": "running"},
    ":queued": {"S": "queued"},
    ":one": {"N": "1"},
    ":lease": {"S": "new"},
    ":now": {"S": "2026-12-01T00:00:00Z"},
    ":n": {"N": "7"},
    ":empty": {"S": ""},
    ":huge": {"S": "x" * 410_000},
    ":list": {"L": [{"S": "b"}]},
}

CASES: dict[str, dict[str, Any]] = {
    "the worker's claim": {"UpdateExpression": CLAIM, "ConditionExpression": "#status IN (:queued)"},
    "set and remove": {"UpdateExpression": "SET #word = :lease REMOVE #progress, #missing"},
    "lower-case keywords, REMOVE first": {"UpdateExpression": "remove #progress set #word = :lease"},
    "a number minus one": {"UpdateExpression": "SET #attempts = #attempts - :one"},
    "the condition fails, ALL_OLD asked": {
        "UpdateExpression": "SET #word = :lease",
        "ConditionExpression": "#status = :running",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    },
    "the condition fails": {"UpdateExpression": "SET #word = :lease", "ConditionExpression": "#status = :running"},
    "an undefined value": {"UpdateExpression": "SET #word = :nothing"},
    "an undefined name": {"UpdateExpression": "SET #nobody = :lease"},
    "a key attribute": {"UpdateExpression": "SET #pk = :lease"},
    "one attribute set twice": {"UpdateExpression": "SET #word = :lease, #word = :now"},
    "one attribute set and removed": {"UpdateExpression": "SET #word = :lease REMOVE #word"},
    "an attribute the item lacks": {"UpdateExpression": "SET #word = #missing"},
    "arithmetic on a string": {"UpdateExpression": "SET #word = #word + :one"},
    "an index key of the wrong type": {"UpdateExpression": "SET #sk = :n"},
    "an empty index key": {"UpdateExpression": "SET #sk = :empty"},
    "an index key": {"UpdateExpression": "SET #sk = :lease"},
    "an item grown too large": {"UpdateExpression": "SET #big = :huge, #word = :lease"},
    "a function": {"UpdateExpression": "SET #tags = list_append(#tags, :list)"},
    "a nested path": {"UpdateExpression": "SET #progress.done = :n"},
    "ADD": {"UpdateExpression": "ADD #attempts :one"},
    "an unnamed attribute": {"UpdateExpression": "SET word = :lease"},
    "an item that does not exist": {"UpdateExpression": "SET #word = :lease", "Key": {"pk": {"S": "job-2"}}},
    "all new attributes returned": {"UpdateExpression": CLAIM, "ReturnValues": "ALL_NEW"},
    "the updated old attributes returned": {"UpdateExpression": CLAIM, "ReturnValues": "UPDATED_OLD"},
    "a syntax error": {"UpdateExpression": "SET #word = = :lease"},
    "a key attribute read": {"UpdateExpression": "SET #word = #pk"},
    "an attribute copied, then changed in place": {
        "UpdateExpression": "SET #copy = #progress",
        "then": {"UpdateExpression": "SET #progress.done = :n"},
    },
    "an item grown too large after an earlier attribute is set": {
        "UpdateExpression": "SET #word = :lease, #big = :huge"
    },
}


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name="us-east-1")


def _outcome(client: Any, case: dict[str, Any]) -> tuple[Any, Any]:
    """The answer to each request of ``case`` (and its ``then``) and the items afterwards, attribute order included."""
    index = {
        "IndexName": "ByStatus",
        "KeySchema": [{"AttributeName": "status_sk", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    client.create_table(
        TableName="jobs",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "status_sk")],
        GlobalSecondaryIndexes=[index],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        client.put_item(TableName="jobs", Item=ITEM)
        answers = []
        while case:
            answers.append(_answer(client, {key: value for key, value in case.items() if key != "then"}))
            case = case.get("then", {})
        items = sorted(client.scan(TableName="jobs")["Items"], key=lambda item: item["pk"]["S"])
        return answers, [list(item.items()) for item in items]
    finally:
        client.delete_table(TableName="jobs")


def _answer(client: Any, case: dict[str, Any]) -> Any:
    text = case["UpdateExpression"] + " " + case.get("ConditionExpression", "")
    used = set(re.findall(r"[#:]\w+", text))  # DynamoDB (and moto) refuse unused names and values
    request = {"TableName": "jobs", "Key": {"pk": ITEM["pk"]}} | case
    request["ExpressionAttributeNames"] = {name: NAMES[name] for name in NAMES if name in used}
    if values := {name: VALUES[name] for name in VALUES if name in used}:
        request["ExpressionAttributeValues"] = values
    try:
        answer: Any = client.update_item(**request)
        answer.pop("ResponseMetadata")
    except ClientError as exc:
        return (exc.response["Error"]["Code"], exc.response["Error"]["Message"], exc.response.get("Item"))
    except Exception as exc:  # moto's own failures, such as a KeyError for an undefined name
        return (type(exc).__name__, str(exc))
    return answer


@pytest.mark.parametrize("name", CASES)
def test_each_update_is_answered_and_applied_as_motos_own_update_item_does(
    name: str, dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DynamoDBBackend, "update_item", DynamoDBBackend.update_item)  # moto's, once the test ends
    theirs = _outcome(dynamodb, CASES[name])
    simple_updates.install()
    ours = _outcome(dynamodb, CASES[name])
    assert ours == theirs


def test_the_workers_expressions_take_the_direct_way(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    moto_own = DynamoDBBackend.update_item

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(args[2] if len(args) > 2 else kwargs["update_expression"])
        return moto_own(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", counted)
    simple_updates.install()
    for name in ("the worker's claim", "set and remove", "a number minus one", "an index key", "a function"):
        _outcome(dynamodb, CASES[name])
    assert calls == [CASES["a function"]["UpdateExpression"]]


def test_a_plan_is_made_only_of_simple_actions() -> None:
    assert simple_updates.plan("SET #a = :v, #b = #c + :one REMOVE #d") == (
        simple_updates.Action("SET", "#a", ":v"),
        simple_updates.Action("SET", "#b", "#c", "+", ":one"),
        simple_updates.Action("REMOVE", "#d"),
    )
    refused = ("SET #a = :v SET #b = :w", "SET #a = :v,", "SET", "SET #a = :v + #b", "SET #a.b = :v", "DELETE #s :v")
    for expression in refused:
        assert simple_updates.plan(expression) is None, expression
