"""jobq: submit, watch and manage jobs of a jobq deployment from a terminal.

Every command is a signed call to the deployment's HTTP API, as the caller your credentials name.
Exit status: 0 done (a waited-for job succeeded), 1 the job failed or was cancelled, or the API
refused, 2 usage error, 3 gave up waiting (--timeout), 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobq.terminal import (
    DLQ_HEADER,
    JOB_HEADER,
    TYPE_HEADER,
    ProgressBar,
    dlq_row,
    explain,
    job_row,
    print_json,
    show_job,
    type_row,
)

if TYPE_CHECKING:
    from jobq.client import Client

TARGETS = (
    "--local (the make run of this directory), --stack NAME (a deployed stack) or --url URL "
    "(or set JOBQ_URL / JOBQ_STACK)"
)
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


class UsageError(Exception):
    """The command line does not say enough, or says it wrong (exit 2)."""


class CommandFailed(Exception):
    """The command ran and the answer is a failure (exit 1), already explained to the user."""


# -- target ---------------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> Client:
    from jobq.client import LOCAL_ADMIN, Client

    token = getattr(args, "token", None) or os.environ.get("JOBQ_TOKEN")
    local, stack, url = getattr(args, "local", False), getattr(args, "stack", None), getattr(args, "url", None)
    if sum(map(bool, (local, stack, url))) > 1:
        raise UsageError("say one deployment: --local, --stack NAME or --url URL")
    if not (local or stack or url):
        url, stack = os.environ.get("JOBQ_URL"), os.environ.get("JOBQ_STACK")
    region = getattr(args, "region", None)
    if local:
        return Client.local(getattr(args, "as_key", None) or LOCAL_ADMIN)
    if stack:
        return Client.from_stack(stack, token=token, region=region)
    if url:
        return Client(url, token=token, region=region)
    raise UsageError(f"which deployment? Say {TARGETS}")


def _wait(client: Client, job_id: str, args: argparse.Namespace) -> int:
    from jobq.client import WaitTimeout

    bar = None if args.quiet else ProgressBar(sys.stderr)
    try:
        job = client.wait(job_id, timeout=args.timeout, on_progress=bar.update if bar else None)
    except WaitTimeout as exc:
        if bar:
            bar.close()
        print(f"jobq: {exc}", file=sys.stderr)
        return 3
    if bar:
        bar.close()
    print_json(job.model_dump(mode="json")) if args.json else show_job(job)
    return 0 if job.status.value == "succeeded" else 1


# -- commands -------------------------------------------------------------------------------------


def _payload(args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if args.payload is not None:
        text = args.payload
        if text == "-":
            text = sys.stdin.read()
        elif text.startswith("@"):
            try:
                text = Path(text[1:]).read_text()
            except OSError as exc:
                raise UsageError(f"--payload {args.payload}: {exc.strerror}") from None
        try:
            payload = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"--payload is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise UsageError("--payload must be a JSON object")
    for field in args.fields:
        name, sep, raw = field.partition("=")
        if not sep or not name:
            raise UsageError(f"{field!r}: payload fields are NAME=VALUE (VALUE as JSON, else as text)")
        try:
            payload[name] = json.loads(raw)
        except ValueError:
            payload[name] = raw
    return payload


def cmd_submit(client: Client, args: argparse.Namespace) -> int:
    job = client.submit(args.type, _payload(args), idempotency_key=args.key, delay_seconds=args.delay)
    if args.wait:
        if not args.quiet:
            print(f"submitted {job.job_id}", file=sys.stderr)
        return _wait(client, job.job_id, args)
    if args.json:
        print_json(job.model_dump(mode="json"))
    else:
        print(job.job_id)
    return 0


def cmd_submit_many(client: Client, args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.file == "-" else _read(args.file)
    try:
        stripped = text.strip()
        specs = (
            json.loads(stripped)
            if stripped.startswith("[")
            else [json.loads(line) for line in stripped.splitlines() if line.strip()]
        )
    except ValueError as exc:
        raise UsageError(f"{args.file}: not a JSON array or JSON lines: {exc}") from None
    if not specs or not all(isinstance(spec, dict) for spec in specs):
        raise UsageError(f'{args.file}: give jobs as objects: {{"type": ..., "payload": {{...}}}}')
    try:
        jobs = client.submit_many(specs, idempotency_key=args.key)
    except TypeError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print_json([job.model_dump(mode="json") for job in jobs])
    else:
        print("\n".join(job.job_id for job in jobs))
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None


def cmd_get(client: Client, args: argparse.Namespace) -> int:
    job = client.get(args.job_id)
    print_json(job.model_dump(mode="json")) if args.json else show_job(job)
    return 0


def cmd_wait(client: Client, args: argparse.Namespace) -> int:
    return _wait(client, args.job_id, args)


def cmd_list(client: Client, args: argparse.Namespace) -> int:
    if args.all:
        jobs = list(client.iter_jobs(status=args.status, type=args.type, owner=args.owner))
        next_cursor = None
    else:
        page = client.list_jobs(
            status=args.status, type=args.type, owner=args.owner, limit=args.limit, cursor=args.cursor
        )
        jobs, next_cursor = list(page.items), page.next_cursor
    if args.json:
        print_json({"items": [job.model_dump(mode="json") for job in jobs], "next_cursor": next_cursor})
        return 0
    if not jobs:
        print("no jobs")
        return 0
    print(JOB_HEADER)
    for job in jobs:
        print(job_row(job))
    if next_cursor:
        print(f"{len(jobs)} job(s); more with --cursor {next_cursor}  (or --all)")
    return 0


def cmd_cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.cancel(args.job_id)
    if args.json:
        print_json(job.model_dump(mode="json"))
    elif job.status.value == "cancelled":
        print(f"cancelled {job.job_id}")
    else:
        print(f"cancel requested: {job.job_id} is running and stops at its next progress check")
    return 0


def cmd_retry(client: Client, args: argparse.Namespace) -> int:
    job = client.retry(args.job_id)
    if args.json:
        print_json(job.model_dump(mode="json"))
    else:
        kept = len(job.history) + job.history_dropped
        print(f"queued again: {job.job_id} ({kept} failed attempt(s) kept in its history)")
    return 0


def cmd_types(client: Client, args: argparse.Namespace) -> int:
    types = client.types()
    if args.json:
        print_json([item.model_dump(mode="json") for item in types])
        return 0
    print(TYPE_HEADER)
    for item in types:
        print(type_row(item))
    return 0


def cmd_dlq_list(client: Client, args: argparse.Namespace) -> int:
    page = client.dead_letters()
    if args.json:
        print_json([item.model_dump(mode="json") for item in page.items])
        return 0
    if not page.items:
        print("the dead-letter queue is empty")
        return 0
    print(DLQ_HEADER)
    for item in page.items:
        print(dlq_row(item))
    print(f"{len(page.items)} message(s)" + (" (more not shown)" if page.more else ""))
    return 0


def cmd_dlq_redrive(client: Client, args: argparse.Namespace) -> int:
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


def cmd_dashboard(client: Client, args: argparse.Namespace) -> int:
    from jobq.dashboard import serve

    serve(client, port=args.port, refresh_seconds=args.refresh)
    return 0


# -- arguments ------------------------------------------------------------------------------------


def _target_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The deployment options; accepted before the command and after it."""
    keep: dict[str, Any] = {} if defaults else {"default": argparse.SUPPRESS}
    group = parser.add_argument_group("deployment (one of)")
    group.add_argument("--local", action="store_true", help="the local runtime started by make run here", **keep)
    group.add_argument("--stack", metavar="NAME", help="a deployed stack (its ApiUrl output)", **keep)
    group.add_argument("--url", help="the API's base URL", **keep)
    caller = parser.add_argument_group("caller")
    caller.add_argument("--as", dest="as_key", metavar="KEY", help="with --local: act as this access key id", **keep)
    caller.add_argument("--token", help="a JWT, for an API whose AuthMode is jwt (or set JOBQ_TOKEN)", **keep)
    caller.add_argument("--region", help="AWS region of --stack/--url (default: your AWS config)", **keep)


def _operator_commands(
    commands: Any,
    common: argparse.ArgumentParser,
    command: Callable[..., argparse.ArgumentParser],
    reading: Callable[[argparse.ArgumentParser], argparse.ArgumentParser],
) -> None:
    """``dlq list|redrive`` and ``dashboard``."""
    dlq = commands.add_parser("dlq", parents=[common], help="the dead-letter queue (admins)")
    actions = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
    dlq_list = actions.add_parser("list", parents=[common], help="messages in the DLQ and their jobs")
    dlq_list.set_defaults(handler=cmd_dlq_list)
    reading(dlq_list)
    redrive = actions.add_parser("redrive", parents=[common], help="queue the DLQ's failed jobs again (keeps history)")
    redrive.set_defaults(handler=cmd_dlq_redrive)
    redrive.add_argument("--job", help="only this job")
    dashboard = command("dashboard", cmd_dashboard, "a web page over the deployment, on http://127.0.0.1:PORT")
    dashboard.add_argument("--port", type=int, default=8300, help="default 8300")
    dashboard.add_argument("--refresh", type=float, default=2.0, metavar="S", help="auto refresh every S seconds")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    doc = (__doc__ or "").split("\n\n")
    parser = argparse.ArgumentParser(
        prog="jobq",
        description=doc[0].split(": ", 1)[1],
        epilog=doc[1].replace("\n", " ") if len(doc) > 1 else None,
    )
    _target_options(parser, defaults=True)
    common = argparse.ArgumentParser(add_help=False)
    _target_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[Client, argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    def reading(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--json", action="store_true", help="print the API's JSON (for scripts)")
        return sub

    def waiting(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--timeout", type=float, default=None, metavar="S", help="give up after S seconds (exit 3)")
        sub.add_argument("--quiet", "-q", action="store_true", help="no progress line")

    submit = reading(command("submit", cmd_submit, "submit a job; prints its id (with --wait: waits for it)"))
    submit.add_argument("type", help="a job type (see jobq types)")
    submit.add_argument("fields", nargs="*", metavar="NAME=VALUE", help="payload fields (VALUE as JSON, else text)")
    submit.add_argument("--payload", "-p", metavar="JSON", help="the payload: JSON text, @FILE, or - for stdin")
    submit.add_argument("--key", metavar="K", help="Idempotency-Key: the same key and payload give the same job")
    submit.add_argument("--delay", type=int, default=0, metavar="S", help="start no sooner than S seconds (0..900)")
    submit.add_argument("--wait", "-w", action="store_true", help="wait for the job; exit 0 if it succeeded, 1 if not")
    waiting(submit)
    many = reading(command("submit-many", cmd_submit_many, "submit jobs from a file, 25 a request (POST /jobs/batch)"))
    many.add_argument(
        "file", metavar="FILE", help="a JSON array or JSON lines of {type, payload, delay_seconds}; - for stdin"
    )
    many.add_argument("--key", metavar="K", help="Idempotency-Key: the same file and key submit nothing new")
    reading(command("get", cmd_get, "show a job")).add_argument("job_id", metavar="JOB_ID")
    wait = reading(command("wait", cmd_wait, "wait for a job with a progress line; exit 0 if it succeeded, 1 if not"))
    wait.add_argument("job_id", metavar="JOB_ID")
    waiting(wait)
    listing = reading(command("list", cmd_list, "list jobs, newest first"))
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--type")
    listing.add_argument("--owner", help="admins: only this owner's jobs")
    size = listing.add_mutually_exclusive_group()
    size.add_argument("--limit", type=int, default=20, metavar="N", help="jobs per page, 1..100 (default 20)")
    size.add_argument("--all", action="store_true", help="every job, following the pages")
    listing.add_argument("--cursor", help="the page after the one that printed this cursor")
    reading(command("cancel", cmd_cancel, "cancel a queued job, or ask a running one to stop")).add_argument(
        "job_id", metavar="JOB_ID"
    )
    reading(command("retry", cmd_retry, "queue a failed or cancelled job again")).add_argument(
        "job_id", metavar="JOB_ID"
    )
    reading(command("types", cmd_types, "the job types and their payload fields"))
    _operator_commands(commands, common, command, reading)
    if not argv:
        parser.print_help(sys.stderr)
        raise SystemExit(2)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "submit" and all("=" in item and not item.startswith("-") for item in extra):
        args.fields = [*args.fields, *extra]  # NAME=VALUE fields after an option
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jobq`` command."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from jobq.client import ApiError

    try:
        client = _client(args)
        code: int = args.handler(client, args)
    except ApiError as exc:
        details = f" {json.dumps(exc.details, ensure_ascii=False)}" if exc.details else ""
        print(f"jobq: {exc.message} ({exc.code}){details}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"jobq: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `jobq list | head`: the reader left; say nothing, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if os.environ.get("JOBQ_DEBUG"):
            raise
        print(f"jobq: {explain(exc)}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
