"""Is an emulator ready? Run inside its network namespace (nothing outside reaches it), exit 0 if so.

python -m emulators.probe ready URL SERVICE...   LocalStack: its health names the services, its init is done
python -m emulators.probe dynamodb URL           DynamoDB answers ListTables
python -m emulators.probe sqs URL                SQS answers ListQueues
"""

from __future__ import annotations

import sys

from emulators.processes import aws_json_call, http_json


def localstack_ready(url: str, services: list[str]) -> bool:
    status, health = http_json(url + "/_localstack/health")
    states = health.get("services", {}) if isinstance(health, dict) else {}
    if status != 200 or any(states.get(name) not in {"available", "running"} for name in services):
        return False
    status, init = http_json(url + "/_localstack/init/ready")
    return status == 200 and isinstance(init, dict) and init.get("completed") is True


def ready(argv: list[str]) -> bool:
    what, url, *services = argv
    if what == "ready":
        return localstack_ready(url, services)
    if what == "dynamodb":
        status, body = aws_json_call(url, "dynamodb", "DynamoDB_20120810.ListTables")
        return status == 200 and "TableNames" in body
    if what == "sqs":
        return aws_json_call(url, "sqs", "AmazonSQS.ListQueues")[0] == 200
    raise SystemExit(__doc__)


if __name__ == "__main__":
    try:
        sys.exit(0 if ready(sys.argv[1:]) else 1)
    except OSError:
        sys.exit(1)
