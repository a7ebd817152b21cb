"""make bench --runs N: the spread of several runs and how many met SPEC's local targets in one run."""

from __future__ import annotations

from typing import Any

from bench.local_runtime import summarize


def _run(throughput: float, p50: float) -> dict[str, Any]:
    return {"throughput": throughput, "p50": p50}


def test_a_run_counts_as_met_only_with_both_targets_in_that_same_run() -> None:
    runs = [_run(77.3, 27.0), _run(69.9, 30.0), _run(85.0, 41.0), _run(70.0, 40.0), _run(58.6, 37.0)]
    summary = summarize(runs)
    # 69.9 misses the throughput, 85.0 the p50; 70.0 at 40 ms is on both bounds
    assert summary.endswith("runs with >= 70 jobs/s and p50 <= 40 ms: 2 of 5")
    assert "throughput median 70.0 jobs/s (min 58.6, max 85.0)" in summary
    assert "p50 median 37.0 ms (min 27.0, max 41.0)" in summary
