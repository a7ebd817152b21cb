"""Create template.yaml's queues and tables on an AWS-compatible endpoint, from their own properties."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from jobq_local import LOGGER_NAME
from jobq_local.template import PhysicalResource, Template, TemplateError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

_log = logging.getLogger(LOGGER_NAME)

QUEUE = "AWS::SQS::Queue"
TABLE = "AWS::DynamoDB::Table"

# CloudFormation properties of AWS::SQS::Queue that are SQS queue attributes of the same name.
_QUEUE_ATTRIBUTES = {
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "SqsManagedSseEnabled",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
}
_QUEUE_JSON_ATTRIBUTES = {"RedrivePolicy", "RedriveAllowPolicy"}
_QUEUE_IGNORED = {"Tags", "QueueName"}
_TABLE_PASSTHROUGH = {
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
}
_TABLE_HANDLED = {
    "TableName",
    "SSESpecification",
    "TimeToLiveSpecification",
    "PointInTimeRecoverySpecification",
    "StreamSpecification",
    "DeletionProtectionEnabled",
    "Tags",
    "ProvisionedThroughput",
}


@dataclass(frozen=True)
class Provisioned:
    """What provisioning created: logical id -> physical resource, and the resolved template."""

    template: Template
    resources: Mapping[str, PhysicalResource]

    def ref(self, logical_id: str) -> str:
        return self.resources[logical_id].ref


def physical_name(template: Template, logical_id: str) -> str:
    """Deterministic names, like CloudFormation's ``<stack>-<LogicalId>`` without the random suffix."""
    return f"{template.stack_name}-{logical_id}"


def provision(template: Template, *, dynamodb: DynamoDBClient, sqs: SQSClient) -> Provisioned:
    """Create (or reuse) every queue and table of the template, in dependency order."""
    wanted = {logical_id for logical_id, _ in template.resources(QUEUE)} | {
        logical_id for logical_id, _ in template.resources(TABLE)
    }
    for logical_id in _dependency_order(template, wanted):
        kind = template.resource(logical_id)["Type"]
        if kind == QUEUE:
            template.physical[logical_id] = create_queue(template, logical_id, sqs)
        else:
            template.physical[logical_id] = create_table(template, logical_id, dynamodb)
    return Provisioned(template, {key: template.physical[key] for key in wanted})


def queue_attributes(properties: Mapping[str, Any]) -> dict[str, str]:
    """SQS CreateQueue attributes from AWS::SQS::Queue properties (all values as strings)."""
    unknown = set(properties) - _QUEUE_ATTRIBUTES - _QUEUE_JSON_ATTRIBUTES - _QUEUE_IGNORED
    if unknown:
        raise TemplateError(f"provisioning does not know queue properties: {', '.join(sorted(unknown))}")
    attributes: dict[str, str] = {}
    for name, value in properties.items():
        if name in _QUEUE_ATTRIBUTES:
            attributes[name] = str(value).lower() if isinstance(value, bool) else str(value)
        elif name in _QUEUE_JSON_ATTRIBUTES:
            document = value if isinstance(value, str) else json.dumps(value)
            attributes[name] = document
    return attributes


def create_queue(template: Template, logical_id: str, sqs: SQSClient) -> PhysicalResource:
    """Create one queue; returns its URL as Ref and Arn/QueueName/QueueUrl attributes."""
    properties = template.properties(logical_id)
    name = str(properties.get("QueueName") or physical_name(template, logical_id))
    attributes = queue_attributes(properties)
    try:
        url = sqs.create_queue(QueueName=name, Attributes=cast("Any", attributes))["QueueUrl"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"QueueAlreadyExists", "QueueNameExists"}:
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=cast("Any", attributes))
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return PhysicalResource(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})


def table_request(template: Template, logical_id: str) -> dict[str, Any]:
    """DynamoDB CreateTable arguments from AWS::DynamoDB::Table properties."""
    properties = template.properties(logical_id)
    unknown = set(properties) - _TABLE_PASSTHROUGH - _TABLE_HANDLED
    if unknown:
        raise TemplateError(f"provisioning does not know table properties: {', '.join(sorted(unknown))}")
    request: dict[str, Any] = {key: properties[key] for key in _TABLE_PASSTHROUGH if key in properties}
    request["TableName"] = str(properties.get("TableName") or physical_name(template, logical_id))
    if "ProvisionedThroughput" in properties:
        request["ProvisionedThroughput"] = _capacity_units(properties["ProvisionedThroughput"])
    if "GlobalSecondaryIndexes" in request:
        request["GlobalSecondaryIndexes"] = [
            index | {"ProvisionedThroughput": _capacity_units(index["ProvisionedThroughput"])}
            if "ProvisionedThroughput" in index
            else index
            for index in request["GlobalSecondaryIndexes"]
        ]
    sse = properties.get("SSESpecification")
    if sse:
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))} | {
            key: sse[key] for key in ("SSEType", "KMSMasterKeyId") if key in sse
        }
    stream = properties.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    if "DeletionProtectionEnabled" in properties:
        request["DeletionProtectionEnabled"] = bool(properties["DeletionProtectionEnabled"])
    return request


def _capacity_units(throughput: Mapping[str, Any]) -> dict[str, int]:
    """ProvisionedThroughput with its units as numbers (a parameter's !Ref gives a string; CloudFormation converts)."""
    return {key: int(value) for key, value in throughput.items()}


def create_table(template: Template, logical_id: str, dynamodb: DynamoDBClient) -> PhysicalResource:
    """Create one table with its indexes, TTL and point-in-time recovery."""
    properties = template.properties(logical_id)
    request = table_request(template, logical_id)
    name = request["TableName"]
    try:
        description = dynamodb.create_table(**request)["TableDescription"]
        dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
        description = dynamodb.describe_table(TableName=name)["Table"]
    ttl = properties.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        current = dynamodb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        if current.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    pitr = properties.get("PointInTimeRecoverySpecification")
    if pitr and pitr.get("PointInTimeRecoveryEnabled"):
        enable_point_in_time_recovery(dynamodb, name)
    attributes = {"Arn": description["TableArn"]}
    if description.get("LatestStreamArn"):
        attributes["StreamArn"] = description["LatestStreamArn"]
    return PhysicalResource(ref=name, attributes=attributes)


UNSUPPORTED = {"UnknownOperationException", "UnrecognizedClientException", "NotImplementedError", "NotImplemented"}
"""What an endpoint without an operation answers (DynamoDB Local: UnknownOperationException for PITR)."""


def enable_point_in_time_recovery(dynamodb: DynamoDBClient, table: str) -> bool:
    """Turn PITR on; where the endpoint has no PITR (DynamoDB Local), say so and go on: no local run needs
    backups, and refusing to start would make such an emulator unusable. True if it is on."""
    try:
        dynamodb.update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code not in UNSUPPORTED:
            raise
        _log.warning("%s: this endpoint has no point-in-time recovery (%s); the table has none", table, code)
        return False
    return True


def _dependency_order(template: Template, wanted: set[str]) -> list[str]:
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in ordered:
            return
        if logical_id in visiting:
            raise TemplateError(f"circular reference through {logical_id}")
        visiting.add(logical_id)
        for dependency in sorted(template.dependencies(logical_id) & wanted):
            visit(dependency)
        visiting.discard(logical_id)
        ordered.append(logical_id)

    for logical_id in sorted(wanted):
        visit(logical_id)
    return ordered
