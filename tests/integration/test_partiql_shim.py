"""jobq_local.partiql: PartiQL UPDATE in moto's BatchExecuteStatement, run as moto's update_item."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from jobq.adapters.dynamodb.repository import CLAIM_FRESH_STATEMENT
from jobq_local.partiql import PartiQLError, UpdateCall, install, translate_update

TABLE = "jobq_jobs"
CLAIM = CLAIM_FRESH_STATEMENT.format(table=TABLE)
NOW_MS = 1_700_000_000_000
NOW_ISO = "2023-11-14T22:13:20Z"


def claim(job_id: str, shard: str = "s0") -> dict[str, Any]:
    """The claim statement jobq's worker sends for one job."""
    values = ["queued", "running", 1, "lease-1", NOW_MS + 30_000, NOW_ISO, NOW_ISO, shard, job_id, "queued", 0, 1]
    values.append(NOW_MS)
    parameters = [{"N": str(v)} if isinstance(v, int) else {"S": v} for v in values]
    return {"Statement": CLAIM, "Parameters": parameters, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}


def job(job_id: str, *, status: str = "queued", available_at: int = NOW_MS - 1) -> dict[str, Any]:
    return {
        "list_shard": {"S": "s0"},
        "job_id": {"S": job_id},
        "status": {"S": status},
        "attempts": {"N": "0"},
        "max_attempts": {"N": "3"},
        "available_at": {"N": str(available_at)},
        "progress": {"S": "half"},
    }


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    restore = install()
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName=TABLE,
                KeySchema=[
                    {"AttributeName": "list_shard", "KeyType": "HASH"},
                    {"AttributeName": "job_id", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "list_shard", "AttributeType": "S"},
                    {"AttributeName": "job_id", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            yield client
    finally:
        restore()


def get(ddb: Any, job_id: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = ddb.get_item(
        TableName=TABLE, Key={"list_shard": {"S": "s0"}, "job_id": {"S": job_id}}
    ).get("Item")
    return item


def test_claim_of_a_queued_due_job_returns_the_new_item(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item=job("j1"))
    [response] = ddb.batch_execute_statement(Statements=[claim("j1")])["Responses"]
    assert "Error" not in response
    assert response["TableName"] == TABLE
    expected = {
        **job("j1"),
        "claimed_from": {"S": "queued"},
        "status": {"S": "running"},
        "attempts": {"N": "1"},
        "lease_id": {"S": "lease-1"},
        "lease_expires_at": {"N": str(NOW_MS + 30_000)},
        "started_at": {"S": NOW_ISO},
        "updated_at": {"S": NOW_ISO},
    }
    del expected["progress"]
    assert response["Item"] == expected
    assert get(ddb, "j1") == expected


def test_claim_of_a_running_job_fails_with_the_old_item(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item=job("j1", status="running"))
    [response] = ddb.batch_execute_statement(Statements=[claim("j1")])["Responses"]
    assert response["Error"] == {
        "Code": "ConditionalCheckFailed",
        "Message": "The conditional request failed",
        "Item": job("j1", status="running"),
    }
    assert get(ddb, "j1") == job("j1", status="running")


def test_claim_of_a_job_not_yet_due_fails(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item=job("j1", available_at=NOW_MS + 1))
    [response] = ddb.batch_execute_statement(Statements=[claim("j1")])["Responses"]
    assert response["Error"]["Code"] == "ConditionalCheckFailed"
    assert response["Error"]["Item"] == job("j1", available_at=NOW_MS + 1)
    assert get(ddb, "j1") == job("j1", available_at=NOW_MS + 1)


def test_claim_of_a_missing_job_fails_without_an_item_and_creates_nothing(ddb: Any) -> None:
    [response] = ddb.batch_execute_statement(Statements=[claim("nope")])["Responses"]
    assert response["Error"] == {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"}
    assert get(ddb, "nope") is None
    assert ddb.scan(TableName=TABLE)["Count"] == 0


def test_returning_all_old_and_no_item_on_failure_unless_asked(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item=job("j1"))
    ddb.put_item(TableName=TABLE, Item=job("j2", status="running"))
    statement = (
        f'UPDATE "{TABLE}" SET "status"=? WHERE "list_shard"=? AND "job_id"=? AND "status"=? RETURNING ALL OLD *'
    )

    def update(job_id: str) -> dict[str, Any]:
        parameters = [{"S": "done"}, {"S": "s0"}, {"S": job_id}, {"S": "queued"}]
        return {"Statement": statement, "Parameters": parameters}

    responses = ddb.batch_execute_statement(Statements=[update("j1"), update("j2")])["Responses"]
    assert responses[0] == {"TableName": TABLE, "Item": job("j1")}
    assert responses[1] == {
        "TableName": TABLE,
        "Error": {"Code": "ConditionalCheckFailed", "Message": "The conditional request failed"},
    }
    assert get(ddb, "j1") == {**job("j1"), "status": {"S": "done"}}


def test_statements_of_one_request_answer_in_order(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item=job("j1"))
    ddb.put_item(TableName=TABLE, Item=job("j2", status="running"))
    ddb.put_item(TableName=TABLE, Item=job("j3"))
    responses = ddb.batch_execute_statement(Statements=[claim("j1"), claim("j2"), claim("j3")])["Responses"]
    assert [r.get("Error", {}).get("Code") for r in responses] == [None, "ConditionalCheckFailed", None]
    assert [r.get("Item", r.get("Error", {}).get("Item"))["job_id"]["S"] for r in responses] == ["j1", "j2", "j3"]
    assert [get(ddb, j)["status"]["S"] for j in ("j1", "j2", "j3")] == ["running"] * 3  # type: ignore[index]


def test_other_statements_still_go_to_moto(ddb: Any) -> None:
    ddb.put_item(TableName=TABLE, Item=job("j1"))
    # moto's own parser wants a bare table name and spaces around "=" (it keeps the quotes of "t", and
    # reads "k"=? as one filter name).
    select = {
        "Statement": f'SELECT * FROM {TABLE} WHERE "list_shard" = ? AND "job_id" = ?',
        "Parameters": [{"S": "s0"}, {"S": "j1"}],
    }
    responses = ddb.batch_execute_statement(Statements=[select, claim("j1"), select])["Responses"]
    assert responses[0] == {"TableName": TABLE, "Item": job("j1")}
    assert "Error" not in responses[1]
    assert responses[2]["Item"]["status"] == {"S": "running"}  # the claim ran before the second select


def test_unknown_table_and_invalid_update_are_per_statement_errors(ddb: Any) -> None:
    missing = {"Statement": 'UPDATE "nope" SET "a"=? WHERE "k"=?', "Parameters": [{"S": "1"}, {"S": "2"}]}
    no_where = {"Statement": f'UPDATE "{TABLE}" SET "a"=?', "Parameters": [{"S": "1"}]}
    no_key = {"Statement": f'UPDATE "{TABLE}" SET "a"=? WHERE "list_shard"=?', "Parameters": [{"S": "1"}] * 2}
    responses = ddb.batch_execute_statement(Statements=[missing, no_where, no_key])["Responses"]
    assert [r["Error"]["Code"] for r in responses] == ["ResourceNotFound", "ValidationError", "ValidationError"]
    assert responses[2]["Error"]["Message"] == (
        "Where clause does not contain a mandatory equality on all key attributes"
    )


def test_restore_puts_back_moto_method() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.batch_execute_statement
    restore = install()
    assert original is not DynamoDBBackend.batch_execute_statement
    restore()
    assert DynamoDBBackend.batch_execute_statement is original


def keys(_table: str) -> list[str]:
    return ["pk"]


def test_translate_numbers_names_and_parameters_in_order() -> None:
    call = translate_update(
        'UPDATE "t" SET "a"=?, "b"="b" + ?, c = c - 2 REMOVE "d", e WHERE "pk"=? AND "a" <> ? AND "b" != "c"',
        [{"S": "x"}, {"N": "1"}, {"S": "k"}, {"S": "y"}],
        keys,
    )
    assert call == UpdateCall(
        table_name="t",
        key_conditions={"pk": {"S": "k"}},
        update_expression="SET #n0 = :v0, #n1 = #n1 + :v1, #n2 = #n2 - :v2 REMOVE #n3, #n4",
        condition_expression="#n0 <> :v3 AND #n1 <> #n2",
        names={"#n0": "a", "#n1": "b", "#n2": "c", "#n3": "d", "#n4": "e"},
        values={":v0": {"S": "x"}, ":v1": {"N": "1"}, ":v2": {"N": "2"}, ":v3": {"S": "y"}},
        returning=None,
    )


def test_translate_conditions() -> None:
    call = translate_update(
        "update t set a = 'it''s' set b = -1.5 where (x < y or not z is missing) and pk = 'k' "
        "and w is not missing and (v >= ? and u > 0) returning all old *",
        [{"N": "3"}],
        keys,
    )
    assert call is not None
    assert call.key_conditions == {"pk": {"S": "k"}}
    assert call.update_expression == "SET #n0 = :v0, #n1 = :v1"
    assert call.condition_expression == (
        "(#n2 < #n3 OR NOT (attribute_not_exists(#n4))) AND attribute_exists(#n5) AND #n6 >= :v2 AND #n7 > :v3"
    )
    assert call.values == {":v0": {"S": "it's"}, ":v1": {"N": "-1.5"}, ":v2": {"N": "3"}, ":v3": {"N": "0"}}
    assert call.returning == "ALL_OLD"


def test_translate_key_only_where_has_no_condition() -> None:
    call = translate_update('UPDATE "t" SET "a"=? WHERE ? = "pk" RETURNING ALL NEW *', [{"S": "1"}, {"S": "k"}], keys)
    assert call is not None
    assert (call.key_conditions, call.condition_expression, call.returning) == ({"pk": {"S": "k"}}, None, "ALL_NEW")


def test_translate_finds_the_key_in_a_parenthesized_conjunction() -> None:
    call = translate_update(
        'UPDATE t SET a=? WHERE (b=? AND ("pk"=? AND c=?))', [{"S": str(i)} for i in range(4)], keys
    )
    assert call is not None
    assert (call.key_conditions, call.condition_expression) == ({"pk": {"S": "2"}}, "#n1 = :v1 AND #n2 = :v2")
    assert call.values == {":v0": {"S": "0"}, ":v1": {"S": "1"}, ":v2": {"S": "3"}}


def test_translate_leaves_other_statements_to_moto() -> None:
    assert translate_update('SELECT * FROM "t" WHERE "pk"=?', [{"S": "k"}], keys) is None
    assert translate_update("INSERT INTO t VALUE {'pk': 'k'}", [], keys) is None


@pytest.mark.parametrize(
    ("statement", "parameters", "message"),
    [
        ('UPDATE "t" SET "a"=?', [{"S": "1"}], "Expected WHERE"),
        ('UPDATE "t" WHERE "pk"=?', [{"S": "1"}], "SET or a REMOVE"),
        ('UPDATE "t" SET "a"=? WHERE "a"=?', [{"S": "1"}] * 2, "mandatory equality on all key attributes"),
        ('UPDATE "t" SET "a"=? WHERE "pk"=? OR "a"=?', [{"S": "1"}] * 3, "mandatory equality"),
        ('UPDATE "t" SET "a"=? WHERE "pk"=?', [{"S": "1"}], "Number of parameters"),
        ('UPDATE "t" SET "a"=? WHERE "pk"=?', [{"S": "1"}] * 3, "Number of parameters"),
        ('UPDATE "t" SET "a"=? WHERE "pk"=? RETURNING MODIFIED NEW *', [{"S": "1"}] * 2, "RETURNING ALL"),
        ('UPDATE "t" SET "a"=? WHERE "pk"=? RETURNING ALL NEW', [{"S": "1"}] * 2, "Expected *"),
        ('UPDATE "t" SET "a"=? WHERE begins_with("a", ?)', [{"S": "1"}] * 2, "Unsupported operator"),
        ('UPDATE "t" SET "a"."b"=? WHERE "pk"=?', [{"S": "1"}] * 2, "Unexpected text"),
        ('UPDATE "t" SET "a"=? WHERE "pk"=? ;', [{"S": "1"}] * 2, "Unexpected text"),
    ],
)
def test_translate_rejects_updates_outside_the_subset(
    statement: str, parameters: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(PartiQLError, match=message):
        translate_update(statement, parameters, keys)
