"""Cost per million echo jobs at us-east-1 list prices, single and batch submit (`make cost ARGS="--jobs 500"`).

Runs the local-runtime benchmark twice (``POST /jobs``, then ``POST /jobs/batch`` with 25 jobs a request) and
prices what it counted there: API Gateway requests, Lambda requests and GB-seconds (each function's memory and
architecture from template.yaml, durations as measured), DynamoDB read and write request units, SQS requests.
DynamoDB units are counted from the requests: an item read strongly consistent costs one read unit per 4 KB,
a write one write unit per 1 KB, and a write to an item in an index costs the index's write too.
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
    per_job: dict[str, float]
    dollars: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.dollars.values())


def price(result: dict[str, Any], mode: str, template: Template) -> Priced:
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
    dollars = {
        "API Gateway": per_job["api_gateway_requests"] * PRICES["api_gateway_http_request"] * million,
        "Lambda requests": per_job["lambda_requests"] * PRICES["lambda_request"] * million,
        "Lambda duration": per_job["lambda_gb_seconds"] * PRICES[f"lambda_gb_second_{arch}"] * million,
        "DynamoDB writes": per_job["dynamodb_write_units"] * PRICES["dynamodb_write_unit"] * million,
        "DynamoDB reads": per_job["dynamodb_read_units"] * PRICES["dynamodb_read_unit"] * million,
        "SQS": per_job["sqs_requests"] * PRICES["sqs_request"] * million,
    }
    return Priced(mode, per_job, dollars)


_SQS_OPERATIONS = {"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch", "DeleteMessage",
                   "ChangeMessageVisibilityBatch", "ChangeMessageVisibility"}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    template = Template()
    runs = [
        price(run(args.jobs, 8, DEFAULT_POLLERS), "single (POST /jobs)", template),
        price(run(args.jobs, 8, DEFAULT_POLLERS, batch=25), "batch (POST /jobs/batch, 25 a request)", template),
    ]
    if args.json:
        print(
            json.dumps([{"mode": r.mode, "per_job": r.per_job, "dollars": r.dollars, "total": r.total} for r in runs])
        )
        return
    print(f"cost per million echo jobs, us-east-1 list prices of {PRICES_DATE} ({args.jobs} jobs a run)")
    width = max(len(name) for name in runs[0].dollars)
    print(f"{'':<{width}}  " + "  ".join(f"{r.mode[:26]:>26}" for r in runs))
    for name in runs[0].dollars:
        print(f"{name:<{width}}  " + "  ".join(f"{'$' + format(r.dollars[name], '.3f'):>26}" for r in runs))
    print(f"{'total':<{width}}  " + "  ".join(f"{'$' + format(r.total, '.2f'):>26}" for r in runs))
    print("per job:")
    for key in runs[0].per_job:
        print(f"  {key:<22}  " + "  ".join(f"{r.per_job[key]:>26.4f}" for r in runs))
    targets = {"single (POST /jobs)": 4.00}
    for r in runs:
        target = targets.get(r.mode, 2.00)
        print(
            f"{r.mode}: ${r.total:.2f} per million (target ${target:.2f}: {'met' if r.total <= target else 'not met'})"
        )
    assert math.isfinite(sum(r.total for r in runs))


if __name__ == "__main__":
    main()
