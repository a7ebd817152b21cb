"""jobq: operate a jobq deployment from a terminal (jobq dlq list, jobq dlq redrive [--job ID]).

Every command is a signed call to the deployment's HTTP API, as the caller your credentials name:
--local (the running `make run`, as the local admin unless --as names another access key id),
--stack NAME (a deployed stack's ApiUrl, signed with your standard AWS credentials) or --url URL.
The dead-letter queue holds every caller's jobs, so the API lets only admins (AdminPrincipals) use it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobq.client import Client
    from jobq.domain.models import DeadLetterDocument


class UsageError(Exception):
    """The command line does not say enough."""


def _client(args: argparse.Namespace) -> Client:
    from jobq.client import LOCAL_ADMIN, Client

    token = args.token or os.environ.get("JOBQ_TOKEN")
    if args.local:
        return Client.local(args.as_key or LOCAL_ADMIN)
    if args.stack:
        return Client.from_stack(args.stack, token=token)
    if args.url:
        return Client(args.url, token=token)
    raise UsageError("say which deployment: --local (make run), --stack NAME or --url URL")


def _dlq_list(client: Client, args: argparse.Namespace) -> int:
    page = client.dead_letters()
    if args.json:
        print(json.dumps([item.model_dump(mode="json") for item in page.items], indent=2))
        return 0
    if not page.items:
        print("the dead-letter queue is empty")
        return 0
    print(f"{'job_id':<26}  {'type':<12}  {'status':<9}  {'attempts':>8}  error")
    for item in page.items:
        print(_dlq_row(item))
    print(f"{len(page.items)} message(s)" + (" (more not shown)" if page.more else ""))
    return 0


def _dlq_row(item: DeadLetterDocument) -> str:
    job = item.job
    if job is None:
        return f"{'?':<26}  {'?':<12}  {'?':<9}  {'':>8}  unreadable message or no such job: {item.body[:60]}"
    error = f"{job.error.type}: {job.error.message}" if job.error else ""
    return f"{job.job_id:<26}  {job.type:<12}  {job.status.value:<9}  {job.attempts:>8}  {error[:80]}"


def _dlq_redrive(client: Client, args: argparse.Namespace) -> int:
    totals = {"redriven": 0, "dropped": 0, "kept": 0}
    while True:
        report = client.redrive(args.job)
        for job_id in report.redriven:
            print(f"redriven  {job_id}  (queued again; its history is kept)")
        for item in report.dropped:
            print(f"dropped   {item.key}  ({item.reason}; its DLQ message was deleted)")
        for item in report.kept:
            print(f"kept      {item.key}  ({item.reason})")
        totals["redriven"] += len(report.redriven)
        totals["dropped"] += len(report.dropped)
        totals["kept"] += len(report.kept)
        if not report.more or not (report.redriven or report.dropped):
            break
    print(" ".join(f"{name}={count}" for name, count in totals.items()))
    if args.job and not any(totals.values()):
        print(f"jobq: no message of job {args.job} in the dead-letter queue", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jobq", description=(__doc__ or "").splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true", help="the local runtime started by `make run`")
    where.add_argument("--stack", help="a deployed stack's name (its ApiUrl output)")
    where.add_argument("--url", help="the API's base URL")
    parser.add_argument("--as", dest="as_key", metavar="ACCESS_KEY_ID", help="with --local: act as this caller")
    parser.add_argument("--token", help="a JWT for an API whose AuthMode is jwt (or set JOBQ_TOKEN)")
    commands = parser.add_subparsers(dest="command", required=True)
    dlq = commands.add_parser("dlq", help="the dead-letter queue (admins)").add_subparsers(dest="action", required=True)
    listing = dlq.add_parser("list", help="messages in the DLQ and their jobs")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    redrive = dlq.add_parser("redrive", help="re-queue the DLQ's failed jobs (keeps their history)")
    redrive.add_argument("--job", help="only this job")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jobq`` command."""
    args = parse_args(argv)
    from jobq.client import ApiError

    try:
        client = _client(args)
        if args.action == "list":
            return _dlq_list(client, args)
        return _dlq_redrive(client, args)
    except ApiError as exc:
        print(f"jobq: {exc.message}", file=sys.stderr)
        return 1
    except (FileNotFoundError, UsageError) as exc:
        print(f"jobq: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
