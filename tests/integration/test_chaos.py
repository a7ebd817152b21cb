"""1000 jobs through the real handlers with random faults; nothing lost, stuck, or completed twice."""

from __future__ import annotations

from tests.support.chaos import run_chaos

EXPECTED_FAULTS = {
    "sqs_send_failed",
    "dynamodb_throttle_UpdateItem",
    "dynamodb_throttle_PutItem",
    "worker_died_mid_job",
    "api_died_before_send",
    "duplicate_delivery",
    "racing_workers",
    "lambda_near_deadline",
    "esm_delete_failed",
    "lease_race",
}


def test_a_thousand_jobs_survive_random_faults() -> None:
    result = run_chaos(1000, seed=20261123)
    print(result.line())
    print(dict(result.faults), dict(result.statuses), result.recovered)

    assert result.jobs == 1000
    assert set(result.faults) >= EXPECTED_FAULTS, sorted(result.faults)
    assert sum(result.faults.values()) >= 100
    assert result.accepted + result.rejected <= result.jobs
    assert result.lost == []
    assert result.stuck == []
    assert result.double == []
    assert result.overlapping == []  # no two runs of one job at once: a live lease held every race
    assert result.unclaimed_runs == []
    assert result.faults["lease_race"] >= 200  # hundreds of races per 1000 jobs
    assert result.handler_runs >= result.jobs
    assert result.failed_without_error == []
    assert result.wrong_result == []
    assert result.stray_dead_letters == []
    assert result.statuses["succeeded"] > 0
    assert result.statuses["failed"] > 0
    assert result.recovered > 0  # the sweeper had lost workers and lost messages to recover
