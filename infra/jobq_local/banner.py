"""What ``make run`` prints once the local runtime is up: where everything is and how to try it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from jobq_local.auth import SigV4Authorizer

if TYPE_CHECKING:
    from jobq_local.runtime import LocalRuntime


def banner(runtime: LocalRuntime) -> str:
    """The HTTP API, the AWS endpoint, the resources and functions, the authorizer and commands to paste."""
    info = runtime.endpoints()
    api = runtime.api
    external = runtime.external
    width = max(len(name) for name in info["resources"]) if info["resources"] else 10
    lines = [
        "",
        "jobq is running locally"
        + (f" against {runtime.emulator or 'an AWS endpoint'}" if external.given else " (embedded AWS emulator: moto)"),
        f"  HTTP API        {info['api_url']}",
        f"  AWS endpoint    {external.describe() if external.given else info['emulator_url']}"
        + ("" if external.given else "  (aws --endpoint-url / awslocal)"),
        "  resources:",
        *(f"    {name:<{width}}  {ref}" for name, ref in info["resources"].items()),
        "  functions:",
        *(f"    {route.key:<28} -> {function.name}" for route, function in api.routes.items()),
        *(
            f"    SQS {m.config.queue_url.rsplit('/', 1)[-1]} (batch {m.config.batch_size}) -> {m.function.name}"
            for m in runtime.mappings
        ),
        *(f"    every {s.interval:g} s -> {s.function.name}" for s in runtime.schedules),
        f"  auth            {api.authorizer.name}" + auth_note(runtime),
        "  try:",
        f"    curl -s{curl_auth(runtime)} -X POST {info['api_url']}/jobs -H 'content-type: application/json' "
        '-d \'{"type": "echo", "payload": {"hello": "world"}}\'',
        f"    curl -s{curl_auth(runtime)} {info['api_url']}/jobs/<job_id>",
        *awslocal_lines(runtime, info["resources"]),
        "  Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def awslocal_lines(runtime: LocalRuntime, resources: Mapping[str, str]) -> list[str]:
    """Against LocalStack: the awslocal commands (LocalStack's AWS CLI, which reads AWS_ENDPOINT_URL too) that
    show the queues and the table, for the services LocalStack serves here."""
    if not (runtime.emulator or "").startswith("LocalStack") or "JobsQueue" not in resources:
        return []
    served = {service for service, url in runtime.service_endpoints.items() if url == runtime.emulator_url}
    lines = ["  awslocal (LocalStack's AWS CLI) shows them too:"]
    if "sqs" in served:
        lines += [
            "    awslocal sqs list-queues",
            f"    awslocal sqs get-queue-attributes --queue-url {resources['JobsQueue']} --attribute-names All",
        ]
    if "dynamodb" in served:
        lines += [
            f"    awslocal dynamodb describe-table --table-name {resources['JobsTable']}",
            f"    awslocal dynamodb scan --table-name {resources['JobsTable']} --max-items 5",
        ]
    return lines if len(lines) > 1 else []


def auth_note(runtime: LocalRuntime) -> str:
    """How a caller passes the runtime's authorizer, in a few words."""
    if runtime.no_auth:
        return "  (--no-auth: OPEN to anyone on this machine; demos only)"
    if isinstance(runtime.api.authorizer, SigV4Authorizer):
        admins = ", ".join(runtime.admins) or "none"
        return f"  (SigV4: any access key id, secret key 'test'; admin keys: {admins})"
    return "  (JWT: Authorization: Bearer <token> from the JWKS given)"


def curl_auth(runtime: LocalRuntime) -> str:
    """What curl needs to pass the authorizer, ready to paste."""
    assert runtime.template is not None
    if not isinstance(runtime.api.authorizer, SigV4Authorizer):
        return "" if runtime.no_auth else " -H 'authorization: Bearer <token>'"
    return f' --aws-sigv4 "aws:amz:{runtime.template.region}:execute-api" --user "alice:test"'
