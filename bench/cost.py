"""Cost per million echo jobs at us-east-1 list prices, single and batch submit (`make cost ARGS="--jobs 500"`).

Runs the local-runtime benchmark twice (``POST /jobs``, then ``POST /jobs/batch`` with 25 jobs a request) and
prices what it counted there: API Gateway requests, Lambda requests and GB-seconds (each function's memory and
architecture from template.yaml, durations as measured), DynamoDB read and write request units, SQS requests.
DynamoDB units are counted from the requests: an item read strongly consistent costs one read unit per 4 KB,
a write one write unit per 1 KB, and a write to an item in an index costs the index's write too.

Single submit runs twice: with the template's defaults (each job invoked as soon as it is queued) and with a
one-second WorkerBatchingWindow (several jobs an invocation). Each run is priced with the table on-demand
(TableCapacityMode=PAY_PER_REQUEST, the default) and provisioned (PROVISIONED): there a consumed unit costs
the hourly capacity price over the share of capacity auto scaling keeps in use (TableTargetUtilization), the
cost of a steady load; the minimum capacity's idle hours are a monthly floor, not a cost per job.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.local_runtime import run
from jobq_local.runtime import DEFAULT_POLLERS
from jobq_local.template import Template

PRICES_DATE = "2026-11-24"
"""When the prices below were read from the AWS pricing pages (us-east-1, on-demand, first tier)."""
PRICES = {
    "api_gateway_http_request": 1.00 / 1e6,  # HTTP API, first 300 million a month
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm64": 0.0000133334,
    "lambda_gb_second_x86_64": 0.0000166667,
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand write request unit
    "dynamodb_read_unit": 0.125 / 1e6,  # on-demand read request unit
    "dynamodb_write_capacity_hour": 0.00065,  # provisioned write capacity unit for an hour
    "dynamodb_read_capacity_hour": 0.00013,  # provisioned read capacity unit for an hour
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk
}

ITEM_WRITE_UNITS = {"PutItem": 2, "UpdateItem": 1, "BatchWriteItem": 2, "DeleteItem": 2}
"""Write units per item written, index writes included, for a small echo job (< 1 KB): a new job is written
to the table and its owner index (OwnerIndex); a status change touches no index key of a
succeeded job (the sparse status indexes hold failed and cancelled jobs only)."""
READ_UNITS = {"GetItem": 1, "BatchGetItem": 1, "Query": 1}


@dataclass(frozen=True)
class Priced:
    """One run's figures per job and its cost per million jobs, by service."""

    mode: str
    capacity: str
    per_job: dict[str, float]
    dollars: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.dollars.values())


def unit_prices(template: Template) -> dict[str, tuple[float, float]]:
    """(write, read) price of a consumed DynamoDB unit by capacity mode; provisioned at the template's target."""
    utilization = int(template.parameters["TableTargetUtilization"]) / 100
    return {
        "on-demand": (PRICES["dynamodb_write_unit"], PRICES["dynamodb_read_unit"]),
        "provisioned": (
            PRICES["dynamodb_write_capacity_hour"] / 3600 / utilization,
            PRICES["dynamodb_read_capacity_hour"] / 3600 / utilization,
        ),
    }


HOURS_A_MONTH = 730
"""AWS's pricing pages' month."""


def provisioned_floor(template: Template) -> float:
    """Dollars a month the minimum capacity of the jobs table and each of its indexes costs, used or not."""
    indexes = template.properties("JobsTable").get("GlobalSecondaryIndexes", [])
    hourly = int(template.parameters["TableMinWriteCapacity"]) * PRICES["dynamodb_write_capacity_hour"]
    hourly += int(template.parameters["TableMinReadCapacity"]) * PRICES["dynamodb_read_capacity_hour"]
    return (1 + len(indexes)) * hourly * HOURS_A_MONTH


def price(result: dict[str, Any], mode: str, template: Template, capacity: str = "on-demand") -> Priced:
    jobs = result["jobs"] + result["warm_up_jobs"]  # the warm-up jobs too
    requests: dict[str, int] = result["requests"]
    seconds: dict[str, float] = result["invoke_seconds"]
    api_requests = result["api_requests"]
    by_operation = Counter[str]()
    for caller_operation, n in requests.items():  # ``WorkerFunction:UpdateItem``: summed over the callers
        by_operation[caller_operation.split(":")[1]] += n
    dynamodb = {op: n for op, n in by_operation.items() if op in ITEM_WRITE_UNITS | READ_UNITS}
    batched_items = result["jobs"] if "BatchWriteItem" in dynamodb else 0  # (the warm-up jobs are put singly)
    write_units = sum(
        ITEM_WRITE_UNITS[op] * n for op, n in dynamodb.items() if op in ITEM_WRITE_UNITS and op != "BatchWriteItem"
    )
    write_units += ITEM_WRITE_UNITS["BatchWriteItem"] * batched_items
    write_units += sum(result["statements"].values())  # BatchExecuteStatement: an UPDATE a write unit
    read_units = sum(n for op, n in dynamodb.items() if op in READ_UNITS)  # (the benchmark's own reads are not in)
    sqs = sum(n for op, n in by_operation.items() if op in _SQS_OPERATIONS)
    gb_seconds = 0.0
    lambda_requests = api_requests + sum(result["invocations"].values())
    for function, spent in seconds.items():
        spec = template.function(function)
        billed = spent  # Lambda bills each invocation's duration rounded up to the millisecond: negligible here
        gb_seconds += billed * spec.memory_size / 1024
    arch = str((template.function("WorkerFunction").properties.get("Architectures") or ["x86_64"])[0])
    per_job = {
        "api_gateway_requests": api_requests / jobs,
        "lambda_requests": lambda_requests / jobs,
        "lambda_gb_seconds": gb_seconds / jobs,
        "dynamodb_write_units": write_units / jobs,
        "dynamodb_read_units": read_units / jobs,
        "sqs_requests": sqs / jobs,
    }
    million = 1e6
    write_unit, read_unit = unit_prices(template)[capacity]
    dollars = {
        "API Gateway": per_job["api_gateway_requests"] * PRICES["api_gateway_http_request"] * million,
        "Lambda requests": per_job["lambda_requests"] * PRICES["lambda_request"] * million,
        "Lambda duration": per_job["lambda_gb_seconds"] * PRICES[f"lambda_gb_second_{arch}"] * million,
        "DynamoDB writes": per_job["dynamodb_write_units"] * write_unit * million,
        "DynamoDB reads": per_job["dynamodb_read_units"] * read_unit * million,
        "SQS": per_job["sqs_requests"] * PRICES["sqs_request"] * million,
    }
    return Priced(mode, capacity, per_job, dollars)


_SQS_OPERATIONS = {"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch", "DeleteMessage",
                   "ChangeMessageVisibilityBatch", "ChangeMessageVisibility"}  # fmt: skip


CONFIGURATIONS = {
    "single": ({}, 0, 4.00),
    "single, 1 s window": ({"WorkerBatchingWindow": "1"}, 0, 4.00),
    "batch of 25": ({}, 25, 2.00),
}
"""Each bench run: template parameters for the runtime, jobs a ``POST /jobs/batch`` (0: ``POST /jobs``), and
SPEC's target in dollars per million."""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    template = Template()
    priced = []
    for mode, (parameters, batch, _) in CONFIGURATIONS.items():
        result = run(args.jobs, 8, DEFAULT_POLLERS, batch=batch, parameters=parameters)
        priced += [price(result, mode, Template(parameters=parameters), capacity) for capacity in unit_prices(template)]
    if args.json:
        print(json.dumps([{"mode": r.mode, "capacity": r.capacity, "per_job": r.per_job, "dollars": r.dollars,
                           "total": r.total} for r in priced]))  # fmt: skip
        return
    print(f"cost per million echo jobs, us-east-1 list prices of {PRICES_DATE} ({args.jobs} jobs a run)")
    utilization = template.parameters["TableTargetUtilization"]
    print(f"provisioned: a consumed unit at the hourly capacity price over {utilization}% use (TableTargetUtilization)")
    width = max(len(name) for name in [*priced[0].dollars, *priced[0].per_job]) + 2
    column = 19
    print(f"{'':<{width}}  " + "  ".join(f"{r.mode:>{column}}" for r in priced))
    print(f"{'':<{width}}  " + "  ".join(f"{r.capacity:>{column}}" for r in priced))
    for name in priced[0].dollars:
        print(f"{name:<{width}}  " + "  ".join(f"{'$' + format(r.dollars[name], '.3f'):>{column}}" for r in priced))
    print(f"{'total':<{width}}  " + "  ".join(f"{'$' + format(r.total, '.2f'):>{column}}" for r in priced))
    print("per job:")
    for key in priced[0].per_job:
        print(f"  {key:<{width - 2}}  " + "  ".join(f"{r.per_job[key]:>{column}.4f}" for r in priced))
    floor = provisioned_floor(template)
    single = priced[0].dollars["DynamoDB writes"] / 1e6  # a job's on-demand writes
    print(
        f"provisioned, idle: the minimum capacity of the table and its indexes costs ${floor:.2f} a month "
        f"(TableMinReadCapacity, TableMinWriteCapacity), the on-demand writes of {floor / single / 1e6:.1f} "
        "million jobs"
    )
    for r in priced:
        target = CONFIGURATIONS[r.mode][2]
        verdict = "met" if r.total <= target else "not met"
        print(f"{r.mode}, {r.capacity}: ${r.total:.2f} per million (target ${target:.2f}: {verdict})")
    assert math.isfinite(sum(r.total for r in priced))


if __name__ == "__main__":
    main()
