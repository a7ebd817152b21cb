"""The embedded store (jobq_local.store): moto's server with a queue's attributes computed when read."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import responses
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.models import DynamoDBBackend
from moto.sqs.models import Queue

from jobq_local.process import free_port
from jobq_local.store import QueueAttributes, plain_attribute_value, speed_up_moto

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:dead"

ITEM = {
    "id": {"S": "1"},
    "empty": {"S": ""},
    "n": {"N": "-12.50"},
    "yes": {"BOOL": True},
    "no": {"BOOL": False},
    "nothing": {"NULL": True},
    "strings": {"SS": ["a", "b"]},
    "numbers": {"NS": ["1", "2.5"]},
    "list": {"L": [{"S": "x"}, {"N": "1"}, {"L": []}, {"M": {"deep": {"BOOL": True}}}]},
    "map": {"M": {"a": {"S": "é"}, "b": {"M": {}}, "c": {"L": [{"NULL": True}]}}},
    "blob": {"B": b"\x00\xff"},
    "blobs": {"BS": [b"a", b"b"]},
    "nested_blob": {"L": [{"S": "x"}, {"B": b"\x01"}]},
}
"""Every kind of attribute value, binary ones included (which moto's serializer base64-encodes)."""


@pytest.mark.parametrize(
    ("name", "attributes"),
    [
        ("plain", {}),
        ("tuned", {"VisibilityTimeout": "90", "DelaySeconds": "3", "MessageRetentionPeriod": "1209600"}),
        ("redriven", {"RedrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 5})}),
        ("fifo.fifo", {"FifoQueue": "true", "ContentBasedDeduplication": "true"}),
        ("encrypted", {"KmsMasterKeyId": "alias/aws/sqs", "SqsManagedSseEnabled": "false"}),
    ],
)
def test_the_same_attributes_as_moto_computes_them(name: str, attributes: dict[str, str]) -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        if "RedrivePolicy" in attributes:
            sqs.create_queue(QueueName="dead")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        for n in range(5):
            sqs.send_message(QueueUrl=url, MessageBody=str(n), **({"MessageGroupId": "g"} if "fifo" in name else {}))
        sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)
        from moto.sqs.models import sqs_backends

        queue = sqs_backends["123456789012"]["us-east-1"].queues[name]
        lazy = QueueAttributes(queue)
        assert dict(lazy) == queue.attributes
        if name in {"plain", "redriven", "encrypted"}:  # (delayed messages and a busy FIFO group show none)
            assert lazy.get("ApproximateNumberOfMessages") == 3
        assert lazy.get("NoSuchAttribute") is None
        assert "QueueArn" in lazy


def test_the_store_process_serves_queues_and_tables() -> None:
    """The store answers as moto's server does: a deep queue's attributes, a table's items."""
    port = free_port()
    store = subprocess.Popen(
        [sys.executable, "-m", "jobq_local.store", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        sqs = boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="a",
            aws_secret_access_key="b",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                url = sqs.create_queue(QueueName="deep")["QueueUrl"]
                break
            except Exception:
                assert time.monotonic() < deadline, "the store did not start"
                time.sleep(0.1)
        for _ in range(150):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": "x"} for n in range(10)])
        depth = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        assert depth["Attributes"]["ApproximateNumberOfMessages"] == "1500"
        every = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert {"QueueArn", "VisibilityTimeout", "ApproximateNumberOfMessagesNotVisible"} <= set(every)
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="a",
            aws_secret_access_key="b",
        )
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName="t", Item={"id": {"S": "1"}})
        assert dynamodb.get_item(TableName="t", Key={"id": {"S": "1"}})["Item"] == {"id": {"S": "1"}}
        assert Queue.attributes.fget is not QueueAttributes  # the patch lives in the store process only
    finally:
        store.terminate()
        store.wait(timeout=10)


def _table_t() -> Any:
    """A client of moto in-process (inside ``mock_aws``) with table ``t``, keyed by ``id``."""
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def _store_item(item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """What GetItem, an UpdateItem (ALL_NEW) and a Query answer for ``item`` on moto in-process."""
    with mock_aws():
        dynamodb = _table_t()
        dynamodb.put_item(TableName="t", Item=item)
        got = dynamodb.get_item(TableName="t", Key={"id": {"S": "1"}}, ConsistentRead=True)["Item"]
        updated = dynamodb.update_item(
            TableName="t",
            Key={"id": {"S": "1"}},
            UpdateExpression="SET #n = #n + :one, #extra = :extra REMOVE #no",
            ConditionExpression="#yes = :yes",
            ExpressionAttributeNames={"#n": "n", "#extra": "extra", "#no": "no", "#yes": "yes"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":extra": {"L": [{"S": "e"}]}, ":yes": {"BOOL": True}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        queried = dynamodb.query(
            TableName="t", KeyConditionExpression="id = :id", ExpressionAttributeValues={":id": {"S": "1"}}
        )["Items"][0]
        return got, updated, queried


def _undo_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """Have ``monkeypatch`` undo what ``speed_up_moto`` changes in this process once the test ends."""
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.parsing import ast_nodes, expressions, validators

    parser: Any = expressions.UpdateExpressionParser  # type: ignore[attr-defined]
    traverser: Any = ast_nodes.DepthFirstTraverser  # type: ignore[attr-defined]
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", BaseJSONSerializer._serialize_type_structure)
    monkeypatch.setattr(parser, "make", parser.make)
    for name in ("nodes_to_be_processed", "process", "traverse_node_recursively"):
        monkeypatch.setattr(traverser, name, getattr(traverser, name))
    for checks in (validators.ActionCountValidator, validators.OverlappingPathsValidator):
        monkeypatch.setattr(checks, "traverse", checks.traverse)
    monkeypatch.setattr(ast_nodes.Node, "__deepcopy__", None, raising=False)  # type: ignore[attr-defined]
    monkeypatch.setattr(Queue, "attributes", Queue.attributes)
    monkeypatch.setattr(
        ConditionExpressionParser, "_lex_condition_expression", ConditionExpressionParser._lex_condition_expression
    )
    monkeypatch.setattr(responses, "method_names_from_class", responses.method_names_from_class)  # type: ignore[attr-defined]
    monkeypatch.setattr(DynamoDBBackend, "update_item", DynamoDBBackend.update_item)


UPDATES = [
    ("SET #n = #n + :one, #e = :l", "#yes = :yes"),
    ("SET #l = list_append(#l, :l), #m.#a = :one REMOVE #no", None),
    ("SET #e = if_not_exists(#e, :one) ADD #n :one", "attribute_exists(#yes)"),
    ("REMOVE #no, #l[0]", "#n < :one"),
    ("SET #n = #n + :one REMOVE #n", None),  # overlapping paths: an error
    ("SET #n = :one SET #e = :one", None),  # two SET clauses: an error
    ("SET #yes = #yes + :one", None),  # a number added to a boolean: an error
    ("SET #id = :one", None),  # the key: an error
    ("SET #e = :missing", None),  # an undefined value: an error
    ("SET #n = :one", "#n = :l"),  # a failed condition
    ("SET #m.#a = :one, #l = :l, #m.#a = :l", None),  # a nested path set twice: an error
    ("REMOVE #no SET #n = :one REMOVE #e", None),  # two REMOVE clauses: an error
    ("ADD #n :one ADD #e :one", None),  # two ADD clauses: an error
    ("SET #e = :one, #l = :l REMOVE #e", None),  # a path set and removed: an error
    ("SET #unknown = :one", None),  # a name not defined: an error
]
"""UpdateItem requests, valid and not, that go through moto's parser, validators and executor."""


def _updates() -> list[Any]:
    """What moto answers to each of UPDATES (the item's attributes or the error), on one item each."""
    answers: list[Any] = []
    with mock_aws():
        dynamodb = _table_t()
        names = {
            "#n": "n",
            "#e": "extra",
            "#no": "no",
            "#yes": "yes",
            "#l": "list",
            "#m": "map",
            "#a": "a",
            "#id": "id",
        }
        values = {":one": {"N": "1"}, ":l": {"L": [{"S": "e"}]}, ":yes": {"BOOL": True}}
        for update, condition in UPDATES:
            dynamodb.put_item(TableName="t", Item={k: v for k, v in ITEM.items() if "blob" not in k})
            used = set(re.findall(r"[#:]\w+", update + (condition or "")))
            request: dict[str, Any] = {
                "TableName": "t",
                "Key": {"id": {"S": "1"}},
                "UpdateExpression": update,
                "ExpressionAttributeNames": {k: v for k, v in names.items() if k in used},
                "ExpressionAttributeValues": {k: v for k, v in values.items() if k in used},
                "ReturnValues": "ALL_NEW",
            }
            if condition:
                request["ConditionExpression"] = condition
            try:
                answers.append(dynamodb.update_item(**request)["Attributes"])
            except ClientError as exc:
                answers.append(exc.response["Error"])
            except KeyError as exc:  # moto's own failure on an undefined name (DynamoDB: a ValidationException)
                answers.append({"Code": "KeyError", "Message": str(exc)})
    return answers


def test_update_expressions_validate_and_apply_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _updates()
    assert sum(isinstance(answer, dict) and "Code" in answer for answer in before) == 11  # the invalid ones
    _undo_after(monkeypatch)
    speed_up_moto()
    assert _updates() == before


CONDITIONS = [
    ("#n < :one", {"#n": "n"}, {":one": {"N": "1"}}),
    ("#n < :one", {"#n": "n"}, {":one": {"N": "-100"}}),  # the same text, other values: fails
    ("#n < :one", {"#n": "yes"}, {":one": {"N": "1"}}),  # the same text, other names: a type mismatch, fails
    ("attribute_exists(#a) AND (#b = :s OR size(#l) > :one)", {"#a": "n", "#b": "extra", "#l": "list"},
     {":s": {"S": "x"}, ":one": {"N": "0"}}),
    ("#n BETWEEN :lo AND :hi", {"#n": "n"}, {":lo": {"N": "-20"}, ":hi": {"N": "0"}}),
    ("#yes IN (:t, :f)", {"#yes": "yes"}, {":t": {"BOOL": True}, ":f": {"BOOL": False}}),
    ("NOT attribute_not_exists(#m.#a)", {"#m": "map", "#a": "a"}, {}),
]  # fmt: skip
"""ConditionExpressions (some texts repeated with other names and values) through moto's lexer and parser."""


def _conditions() -> list[Any]:
    """What moto answers to a DeleteItem under each of CONDITIONS (the item deleted, or the error)."""
    answers: list[Any] = []
    with mock_aws():
        dynamodb = _table_t()
        for condition, names, values in CONDITIONS:
            dynamodb.put_item(TableName="t", Item={k: v for k, v in ITEM.items() if "blob" not in k})
            request: dict[str, Any] = {"TableName": "t", "Key": {"id": {"S": "1"}}, "ConditionExpression": condition}
            request |= {"ExpressionAttributeNames": names} | ({"ExpressionAttributeValues": values} if values else {})
            try:
                answers.append(dynamodb.delete_item(**request, ReturnValues="ALL_OLD")["Attributes"]["id"])
            except ClientError as exc:
                answers.append(exc.response["Error"]["Code"])
    return answers


def test_condition_expressions_lexed_once_answer_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _conditions()
    assert before.count({"S": "1"}) == 5
    assert before.count("ConditionalCheckFailedException") == 2
    _undo_after(monkeypatch)
    speed_up_moto()
    assert _conditions() == before
    assert _conditions() == before  # the second time from the lexed-expression cache


def test_plain_attribute_values_are_those_moto_would_copy_unchanged() -> None:
    plain = {name: value for name, value in ITEM.items() if "blob" not in name}
    assert all(plain_attribute_value(value) for value in plain.values())
    assert not any(plain_attribute_value(ITEM[name]) for name in ("blob", "blobs", "nested_blob"))
    for odd in ({"S": 1}, {"N": 2}, {"BOOL": "true"}, {"NULL": False}, {"SS": [1]}, {"S": "a", "N": "1"}, {}, "S"):
        assert not plain_attribute_value(odd), odd


def test_responses_are_the_same_with_the_store_fast_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """GetItem, UpdateItem (expression, condition) and Query answer as moto does, binary attributes included."""
    from moto.core.serialize import BaseJSONSerializer
    from moto.dynamodb.parsing import expressions

    parser: Any = expressions.UpdateExpressionParser  # type: ignore[attr-defined]
    before = _store_item(ITEM)
    monkeypatch.setattr(BaseJSONSerializer, "_serialize_type_structure", BaseJSONSerializer._serialize_type_structure)
    monkeypatch.setattr(parser, "make", parser.make)
    _undo_after(monkeypatch)
    speed_up_moto()
    assert _store_item(ITEM) == before
    assert _store_item(ITEM) == before  # the second time from the parsed-expression cache
    assert Decimal(before[1]["n"]["N"]) == Decimal("-11.5")
    assert before[1]["extra"] == {"L": [{"S": "e"}]}
    assert "no" not in before[1]
    assert before[0]["blob"] == {"B": b"\x00\xff"}


def test_a_parsed_expression_tree_copies_as_the_generic_deep_copy_does(monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    from moto.dynamodb.parsing import expressions
    from moto.dynamodb.parsing.ast_nodes import Node

    parser: Any = expressions.UpdateExpressionParser  # type: ignore[attr-defined]
    tree = parser.make("SET #a = #a + :one, #b = list_append(#b, :l) REMOVE #c, #d[1].e")
    generic = copy.deepcopy(tree)
    _undo_after(monkeypatch)
    speed_up_moto()
    quick = copy.deepcopy(tree)

    def shape(node: Any, parent: Any = None) -> Any:
        if not isinstance(node, Node):
            return node
        assert node.parent is parent  # every copied node points at its copied parent
        return (type(node).__name__, node.type, [shape(child, node) for child in node.children or []])

    assert quick is not tree
    assert shape(quick, tree.parent) == shape(generic, tree.parent) == shape(tree, tree.parent)


JSON_CALLS = [
    ("dynamodb", "DynamoDB_20120810.PutItem", {"TableName": "t", "Item": {"id": {"S": "1"}, "b": {"B": "AAE="}}}, "/"),
    ("dynamodb", "DynamoDB_20120810.GetItem", {"TableName": "t", "Key": {"id": {"S": "1"}}}, "/"),
    (
        "dynamodb",
        "DynamoDB_20120810.PutItem",
        {"TableName": "t", "Item": {"id": {"S": "1"}}, "ConditionExpression": "attribute_not_exists(id)"},
        "/",
    ),  # a failed condition: 400
    ("dynamodb", "DynamoDB_20120810.GetItem", {"TableName": "nope", "Key": {"id": {"S": "1"}}}, "/"),  # 400
    ("sqs", "AmazonSQS.GetQueueUrl", {"QueueName": "q"}, "/"),
    ("sqs", "AmazonSQS.GetQueueAttributes", {"QueueUrl": "http://127.0.0.1:4566/123456789012/q"}, "/123456789012/q"),
    ("sqs", "AmazonSQS.GetQueueUrl", {"QueueName": "missing"}, "/"),  # 400
]
"""JSON-protocol calls, answered and refused, that the store serves without Flask."""


def test_json_protocol_calls_answer_without_flask_exactly_as_through_it() -> None:
    """Status, headers (but the random request id and its date) and body, call by call, and an unknown action
    raising on both sides."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.test import Client

    from jobq_local.store import CachedDispatcher

    def post(client: Client, service: str, target: str, body: dict[str, Any], path: str) -> Any:
        credential = f"test/20261201/us-east-1/{service}/aws4_request"
        return client.post(
            path,
            base_url="http://127.0.0.1:4566",
            data=json.dumps(body),
            headers={
                "X-Amz-Target": target,
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": f"AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=x",
            },
        )

    def answer(response: Any) -> tuple[int, dict[str, str], bytes]:
        headers = {k: v for k, v in response.headers.items() if k.lower() not in {"x-amzn-requestid", "date"}}
        return response.status_code, headers, response.get_data()

    with mock_aws():
        store = CachedDispatcher()
        fast, flask = Client(store), Client(DomainDispatcherApplication(create_backend_app))
        table = {"TableName": "t", "BillingMode": "PAY_PER_REQUEST"}
        table |= {"KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}
        table |= {"AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]}
        assert post(fast, "dynamodb", "DynamoDB_20120810.CreateTable", table, "/").status_code == 200
        assert post(fast, "sqs", "AmazonSQS.CreateQueue", {"QueueName": "q"}, "/").status_code == 200
        statuses = []
        for call in JSON_CALLS:
            ours = answer(post(fast, *call))
            assert ours == answer(post(flask, *call)), call
            statuses.append(ours[0])
        assert statuses == [200, 200, 400, 400, 200, 200, 400]
        # Looked up once each: "/" of DynamoDB's app, "/" and the queue's path of SQS's, all moto's dispatch.
        assert sorted(path for _, path in store._handlers) == ["/", "/", "/123456789012/q"]
        assert {handler.__name__ for handler in store._handlers.values()} == {"dispatch"}
        for client in (fast, flask):
            with pytest.raises(Exception, match="Nope"):
                post(client, "dynamodb", "DynamoDB_20120810.Nope", {}, "/")
