"""The job types this deployment runs. Add yours to ``build_registry``: one line each."""

from __future__ import annotations

from jobq import JobRegistry, JobType
from jobq.jobs import builtin


def build_registry() -> JobRegistry:
    """Every registered job type."""
    return JobRegistry(
        [
            JobType("echo", builtin.EchoPayload, builtin.echo, timeout_seconds=30),
            JobType("sleep", builtin.SleepPayload, builtin.sleep, timeout_seconds=90),
            JobType("fail", builtin.FailPayload, builtin.fail, timeout_seconds=30),
            JobType("count", builtin.CountPayload, builtin.count, timeout_seconds=90),
        ]
    )
