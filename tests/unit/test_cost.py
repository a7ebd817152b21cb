"""make cost: the write units it prices, from the requests a bench run counted."""

from __future__ import annotations

from typing import Any

from bench.cost import price, provisioned_floor

from jobq_local.template import Template


def _batch_run(*, statements: int, claims: int) -> dict[str, Any]:
    """500 jobs by POST /jobs/batch and 8 warm-up jobs by POST /jobs, each claimed and completed once."""
    return {
        "jobs": 500,
        "warm_up_jobs": 8,
        "api_requests": 28,
        "invocations": {"WorkerFunction": 59},
        "invoke_seconds": {},
        "requests": {
            "ApiFunction:PutItem": 8,
            "ApiFunction:BatchWriteItem": 20,
            "WorkerFunction:BatchExecuteStatement": 51,
            "WorkerFunction:UpdateItem": 508 + claims,
        },
        "statements": {"WorkerFunction:BatchExecuteStatement/statements": statements},
    }


def test_a_claim_costs_one_write_unit_whether_batched_or_not() -> None:
    template = Template()
    batched = price(_batch_run(statements=500, claims=8), "batch", template)
    single = price(_batch_run(statements=0, claims=508), "batch", template)
    # Each job: the item and its OwnerIndex entry (2), the claim (1), the completion (1).
    assert batched.per_job["dynamodb_write_units"] == 4.0
    assert single.per_job["dynamodb_write_units"] == 4.0


def test_provisioned_capacity_prices_a_unit_at_the_hourly_rate_over_the_target_utilization() -> None:
    run = _batch_run(statements=500, claims=8)
    on_demand = price(run, "batch", Template(), "on-demand")
    provisioned = price(run, "batch", Template(), "provisioned")
    fuller = price(run, "batch", Template(parameters={"TableTargetUtilization": "90"}), "provisioned")
    assert round(on_demand.dollars["DynamoDB writes"], 3) == 2.500  # 4 units at $0.625 a million
    assert round(provisioned.dollars["DynamoDB writes"], 3) == 1.032  # 4 x $0.00065 / 3600 s / 0.70
    assert round(fuller.dollars["DynamoDB writes"], 3) == 0.802  # the same at 90% use
    others = {name: value for name, value in provisioned.dollars.items() if name != "DynamoDB writes"}
    assert others == {name: value for name, value in on_demand.dollars.items() if name != "DynamoDB writes"}


def test_the_provisioned_floor_is_the_minimum_capacity_of_the_table_and_each_index_for_a_month() -> None:
    # The table and 3 indexes, 5 WCU at $0.00065 and 5 RCU at $0.00013 an hour, 730 hours.
    assert round(provisioned_floor(Template()), 2) == 11.39
    assert (
        round(provisioned_floor(Template(parameters={"TableMinWriteCapacity": "1", "TableMinReadCapacity": "1"})), 2)
        == 2.28
    )
