"""``jobq``: operate a jobq deployment from a terminal (``jobq dlq list``, ``jobq dlq redrive [--job ID]``).

Where the resources are: ``--local`` (the local runtime's state file, written by ``make run``), ``--stack NAME``
(the environment of the deployed stack's worker function), or else the functions' own environment variables
(JOBS_TABLE_NAME, JOBS_QUEUE_URL, JOBS_DLQ_URL, JOBQ_*).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobq.domain.redrive import DeadLetterView, Redriver

LOCAL_STATE_FILE = ".jobq-local.json"


def _environment(args: argparse.Namespace) -> dict[str, str]:
    """The variables a function of the deployment would see."""
    if args.local:
        path = Path(os.environ.get("JOBQ_LOCAL_STATE", LOCAL_STATE_FILE))
        if not path.exists():
            raise SystemExit(f"jobq: {path} not found; is `make run` running in this directory?")
        state = json.loads(path.read_text())
        os.environ.setdefault("AWS_ENDPOINT_URL", state["emulator_url"])
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, "testing")
        os.environ.setdefault("AWS_DEFAULT_REGION", state.get("region", "us-east-1"))
        return dict(state["environment"])
    if args.stack:
        return _stack_environment(args.stack)
    return dict(os.environ)


def _stack_environment(stack: str) -> dict[str, str]:
    """The environment the stack's deployed worker function runs with: no defaults, no copies of the template."""
    import boto3

    session = boto3.session.Session()
    resources = session.client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
    worker = next((r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "WorkerFunction"), None)
    if worker is None:
        raise SystemExit(f"jobq: stack {stack} has no WorkerFunction; is it a jobq stack?")
    configuration = session.client("lambda").get_function_configuration(FunctionName=worker)
    return dict(configuration.get("Environment", {}).get("Variables", {}))


def _redriver(environment: Mapping[str, str]) -> Redriver:
    from jobq import wiring
    from jobq.domain.ports import JobEvents
    from jobq.settings import Settings, load

    # The CLI reports outcomes itself: lifecycle events go nowhere (the base JobEvents ignores them).
    return wiring.build_redriver(load(Settings, environment), events=JobEvents())


def _dlq_list(args: argparse.Namespace, environment: Mapping[str, str]) -> int:
    views = _redriver(environment).list()
    if args.json:
        print(json.dumps([_view_json(view) for view in views], indent=2))
        return 0
    if not views:
        print("the dead-letter queue is empty")
        return 0
    print(f"{'job_id':<26}  {'type':<12}  {'status':<9}  {'attempts':>8}  error")
    for view in views:
        job = view.job
        if job is None:
            print(
                f"{'?':<26}  {'?':<12}  {'?':<9}  {'':>8}  unreadable message or no such job: {view.letter.body[:60]}"
            )
            continue
        error = f"{job.error.type}: {job.error.message}" if job.error else ""
        print(f"{job.job_id:<26}  {job.type:<12}  {job.status.value:<9}  {job.attempts:>8}  {error[:80]}")
    print(f"{len(views)} message(s)")
    return 0


def _view_json(view: DeadLetterView) -> dict[str, Any]:
    return {
        "message_id": view.letter.message_id,
        "body": view.letter.body,
        "job": None if view.job is None else view.job.to_document().model_dump(mode="json"),
    }


def _dlq_redrive(args: argparse.Namespace, environment: Mapping[str, str]) -> int:
    report = _redriver(environment).redrive(args.job)
    for job_id in report.redriven:
        print(f"redriven  {job_id}  (queued again; its history is kept)")
    for job_id, why in report.dropped:
        print(f"dropped   {job_id}  ({why}; its DLQ message was deleted)")
    for job_id, why in report.kept:
        print(f"kept      {job_id}  ({why})")
    print(f"redriven={len(report.redriven)} dropped={len(report.dropped)} kept={len(report.kept)}")
    if args.job and not (report.redriven or report.dropped or report.kept):
        print(f"jobq: no message of job {args.job} in the dead-letter queue", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jobq", description=(__doc__ or "").splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the local runtime started by `make run`")
    where.add_argument("--stack", help="a deployed stack's name (reads its outputs)")
    commands = parser.add_subparsers(dest="command", required=True)
    dlq = commands.add_parser("dlq", help="the dead-letter queue").add_subparsers(dest="action", required=True)
    listing = dlq.add_parser("list", help="messages in the DLQ and their jobs")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    redrive = dlq.add_parser("redrive", help="re-queue the DLQ's failed jobs (keeps their history)")
    redrive.add_argument("--job", help="only this job")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jobq`` command."""
    args = parse_args(argv)
    from jobq.domain.errors import JobqError

    try:
        environment = _environment(args)
        if args.action == "list":
            return _dlq_list(args, environment)
        return _dlq_redrive(args, environment)
    except JobqError as exc:
        print(f"jobq: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
