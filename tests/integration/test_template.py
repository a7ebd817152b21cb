"""template.yaml holds the settings; provisioning and the code agree with it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobq.adapters.dynamodb import schema as dynamodb
from jobq_local.provision import queue_attributes, table_request
from jobq_local.template import NO_VALUE, PhysicalResource, Template
from tests.support.stack import Stack


def _worker_sqs_event(template: Template) -> dict[str, Any]:
    (event,) = [e for e in template.function("WorkerFunction").events if e.type == "SQS"]
    return dict(template.resolve(event.properties | {"Queue": "x"}))


def test_queue_visibility_is_at_least_six_times_the_worker_timeout_plus_window() -> None:
    longest = str(Template().document["Parameters"]["WorkerBatchingWindow"]["MaxValue"])
    template = Template(parameters={"WorkerBatchingWindow": longest})
    worker = template.function("WorkerFunction")
    window = int(_worker_sqs_event(template)["MaximumBatchingWindowInSeconds"])
    assert window == int(longest)
    visibility = int(template.resource("JobsQueue")["Properties"]["VisibilityTimeout"])
    assert visibility >= 6 * worker.timeout + window


def test_worker_event_source_reports_batch_item_failures_with_parameters() -> None:
    template = Template(parameters={"WorkerBatchSize": "7", "WorkerMaxConcurrency": "3", "WorkerBatchingWindow": "2"})
    event = _worker_sqs_event(template)
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["BatchSize"] == "7"
    assert event["MaximumBatchingWindowInSeconds"] == "2"
    assert event["ScalingConfig"] == {"MaximumConcurrency": "3"}


def test_redrive_max_receive_count_is_the_max_attempts_parameter(make_stack: Any) -> None:
    stack: Stack = make_stack(MaxAttempts="4")
    attributes = stack.sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 4
    dlq_arn = stack.sqs.get_queue_attributes(QueueUrl=stack.dlq_url, AttributeNames=["QueueArn"])["Attributes"]
    assert redrive["deadLetterTargetArn"] == dlq_arn["QueueArn"]
    assert stack.environment["JOBQ_MAX_ATTEMPTS"] == "4"
    declared = Template().resource("JobsQueue")["Properties"]
    assert attributes["VisibilityTimeout"] == str(declared["VisibilityTimeout"])
    assert attributes["MessageRetentionPeriod"] == str(declared["MessageRetentionPeriod"])


def test_provisioned_table_has_the_template_keys_index_and_ttl(aws_stack: Stack) -> None:
    description = aws_stack.dynamodb.describe_table(TableName=aws_stack.table_name)["Table"]
    declared = aws_stack.template.properties("JobsTable")
    assert description["KeySchema"] == declared["KeySchema"]
    indexes = {index["IndexName"]: index for index in description["GlobalSecondaryIndexes"]}
    declared_indexes = {index["IndexName"]: index for index in declared["GlobalSecondaryIndexes"]}
    assert (
        set(indexes)
        == set(declared_indexes)
        == {
            dynamodb.OWNER_INDEX,
            dynamodb.STATUS_INDEX,
            dynamodb.OWNER_STATUS_INDEX,
        }
    )
    for name, index in indexes.items():
        assert index["KeySchema"] == declared_indexes[name]["KeySchema"]
        assert index["Projection"] == declared_indexes[name]["Projection"]
    assert [k["AttributeName"] for k in description["KeySchema"]] == [
        dynamodb.LIST_SHARD_ATTRIBUTE,
        dynamodb.KEY_ATTRIBUTE,
    ]
    assert [k["AttributeName"] for k in indexes[dynamodb.OWNER_INDEX]["KeySchema"]] == [
        dynamodb.OWNER_SHARD_ATTRIBUTE,
        dynamodb.KEY_ATTRIBUTE,
    ]
    for name, partition in (
        (dynamodb.STATUS_INDEX, dynamodb.LIST_SHARD_ATTRIBUTE),
        (dynamodb.OWNER_STATUS_INDEX, dynamodb.OWNER_SHARD_ATTRIBUTE),
    ):
        assert [k["AttributeName"] for k in indexes[name]["KeySchema"]] == [partition, dynamodb.STATUS_SORT_ATTRIBUTE]
    ttl = aws_stack.dynamodb.describe_time_to_live(TableName=aws_stack.table_name)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == declared["TimeToLiveSpecification"]["AttributeName"] == dynamodb.TTL_ATTRIBUTE
    assert ttl["TimeToLiveStatus"] == "ENABLED"
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_provisioned_capacity_mode_provisions_the_table_and_every_index_and_scales_each(make_stack: Any) -> None:
    stack: Stack = make_stack(TableCapacityMode="PROVISIONED", TableMinReadCapacity="3", TableMinWriteCapacity="4")
    description = stack.dynamodb.describe_table(TableName=stack.table_name)["Table"]
    assert description["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    capacities = [description["ProvisionedThroughput"]] + [
        index["ProvisionedThroughput"] for index in description["GlobalSecondaryIndexes"]
    ]
    assert len(capacities) == 4
    assert all((c["ReadCapacityUnits"], c["WriteCapacityUnits"]) == (3, 4) for c in capacities)

    template = Template(parameters={"TableCapacityMode": "PROVISIONED"})
    targets = dict(template.resources("AWS::ApplicationAutoScaling::ScalableTarget"))
    scaled = {
        (t["Properties"]["ResourceId"]["Fn::Sub"], t["Properties"]["ScalableDimension"]) for t in targets.values()
    }
    names = [index["IndexName"] for index in template.properties("JobsTable")["GlobalSecondaryIndexes"]]
    resources = [("table/${JobsTable}", "table")] + [(f"table/${{JobsTable}}/index/{n}", "index") for n in names]
    assert scaled == {
        (resource, f"dynamodb:{kind}:{unit}CapacityUnits") for resource, kind in resources for unit in ("Read", "Write")
    }
    policies = [p["Properties"] for _, p in template.resources("AWS::ApplicationAutoScaling::ScalingPolicy")]
    assert sorted(p["ScalingTargetId"]["Ref"] for p in policies) == sorted(targets)
    assert {template.resolve(p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]) for p in policies} == {"70"}
    assert not list(Template().resources("AWS::ApplicationAutoScaling::ScalableTarget"))  # on-demand: none


def test_table_request_and_queue_attributes_come_from_the_template_properties() -> None:
    template = Template()
    template.physical["JobsDeadLetterQueue"] = _fake_queue("dlq")
    request = table_request(template, "JobsTable")
    assert request["GlobalSecondaryIndexes"] == template.properties("JobsTable")["GlobalSecondaryIndexes"]
    attributes = queue_attributes(template.properties("JobsQueue"))
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:dlq",
        "maxReceiveCount": "5",
    }
    assert attributes["SqsManagedSseEnabled"] == "true"


def test_list_shards_setting_matches_the_code_and_runtime_is_recent() -> None:
    template = Template()
    globals_ = template.document["Globals"]["Function"]
    assert globals_["Runtime"] in {"python3.12", "python3.13"}
    assert int(globals_["Environment"]["Variables"]["JOBQ_LIST_SHARDS"]) <= 100


DATA_SERVICES = ("dynamodb:", "sqs:", "kms:", "logs:", "s3:", "sns:")


def _statements(node: Any) -> list[dict[str, Any]]:
    """Every IAM statement in a policy document, both branches of any Fn::If included."""
    if isinstance(node, list):
        return [found for item in node for found in _statements(item)]
    if isinstance(node, dict):
        if "Fn::If" in node:
            return [found for branch in node["Fn::If"][1:] for found in _statements(branch)]
        if "Effect" in node and "Action" in node:
            return [node]
    return []


def _every_statement(template: Template) -> list[dict[str, Any]]:
    statements = []
    for function in template.functions():
        for policy in function.properties.get("Policies", []):
            statements += _statements(policy["Statement"])
    for _, resource in template.resources():
        if resource["Type"] in {"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"}:
            statements += _statements(resource.get("Properties", {}))
    return statements


@pytest.mark.parametrize("kms", ["", "arn:aws:kms:us-east-1:123456789012:key/0b9a3c4e-0000-4000-8000-000000000000"])
def test_iam_statements_name_their_actions_and_resources_for_data_services(kms: str) -> None:
    statements = _every_statement(Template(parameters={"KmsKeyArn": kms}))
    assert len(statements) >= 12
    for statement in statements:
        actions = _listify(statement["Action"])
        assert all("*" not in str(action) for action in actions), statement
        if any(str(action).startswith(DATA_SERVICES) for action in actions):
            resources = _listify(statement["Resource"])
            assert resources, statement
            assert all(not (isinstance(r, str) and "*" in r) for r in resources), statement


def test_the_worker_may_not_change_visibility_on_the_dead_letter_queue() -> None:
    worker = Template().function("WorkerFunction")
    for statement in _statements(worker.properties["Policies"]):
        if "sqs:ChangeMessageVisibility" in _listify(statement["Action"]):
            assert _listify(statement["Resource"]) == [{"Fn::GetAtt": ["JobsQueue", "Arn"]}], statement


@pytest.mark.parametrize(("mode", "expected"), [("iam", "AWS_IAM"), ("jwt", "JWT")])
def test_every_route_but_the_openapi_document_has_the_mode_authorizer(mode: str, expected: str) -> None:
    from jobq_local.http_api import template_routes

    parameters = {"AuthMode": mode, "JwtIssuer": "https://issuer.example", "JwtAudience": "jobq"}
    template = Template(parameters=parameters)
    routes = {spec.route.key: spec.authorization for spec in template_routes(template)}
    assert routes.pop("GET /openapi.json") == "NONE"
    assert routes.pop("GET /docs") == "NONE"
    assert len(routes) >= 7
    assert set(routes.values()) == {expected}, routes
    raw = {
        str(resource["Properties"]["RouteKey"]): resource["Properties"]
        for _, resource in template.resources("AWS::ApiGatewayV2::Route")
    }
    template.physical["JobsApiJwtAuthorizer"] = PhysicalResource(ref="authorizer-id")
    for key, properties in raw.items():
        if key not in {"GET /openapi.json", "GET /docs"}:
            authorizer = template.resolve(properties.get("AuthorizerId", {"Ref": "AWS::NoValue"}))
            assert authorizer == ("authorizer-id" if mode == "jwt" else NO_VALUE), key
    assert any(True for _ in template.resources("AWS::ApiGatewayV2::Authorizer")) == (mode == "jwt")


def test_the_api_stage_logs_access_as_json_and_throttles() -> None:
    template = Template(parameters={"ApiThrottleBurst": "50", "ApiThrottleRate": "20"})
    ((_, stage),) = list(template.resources("AWS::ApiGatewayV2::Stage"))
    settings = stage["Properties"]
    access = json.loads(settings["AccessLogSettings"]["Format"])
    assert {"requestId", "caller", "jwtSubject", "status", "routeKey"} <= set(access)
    assert access["requestId"] == "$context.requestId"
    assert template.resolve(settings["DefaultRouteSettings"]) == {
        "ThrottlingBurstLimit": "50",
        "ThrottlingRateLimit": "20",
    }


def _listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _fake_queue(name: str) -> Any:
    from jobq_local.template import PhysicalResource

    arn = f"arn:aws:sqs:us-east-1:123456789012:{name}"
    return PhysicalResource(ref=f"https://sqs/{name}", attributes={"Arn": arn, "QueueName": name, "QueueUrl": name})


def test_alarms_watch_the_dlq_api_errors_worker_errors_throttles_and_the_backlog_on_the_topic() -> None:
    topic = "arn:aws:sns:us-east-1:123456789012:ops"
    template = Template(parameters={"AlarmTopicArn": topic})
    watched = {}
    for _, alarm in template.resources("AWS::CloudWatch::Alarm"):
        properties = alarm["Properties"]
        watched[(properties["Namespace"], properties["MetricName"])] = properties
        assert template.resolve(properties["AlarmActions"]) == [topic]
    assert set(watched) >= {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/ApiGateway", "5xx"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
    }
    assert watched[("AWS/SQS", "ApproximateAgeOfOldestMessage")]["Threshold"] == {"Ref": "OldestMessageAlarmSeconds"}
