"""``jobq-local`` (``make run``): the whole of template.yaml on this machine, no Docker, no AWS account.

Without ``AWS_ENDPOINT_URL`` it embeds moto (in-process, plus a moto server on 127.0.0.1 that shares its
state, for the AWS CLI, awslocal or boto3); with it, it provisions and runs against that endpoint
(``AWS_ENDPOINT_URL=http://localhost:4566`` for LocalStack).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from jobq_local.runtime import DEFAULT_ENVIRONMENTS, DEFAULT_POLLERS

DEFAULT_API_PORT = 3000  # what `sam local start-api` uses
DEFAULT_EMULATOR_PORT = 4566  # what awslocal and localstack-client expect
HOST = "127.0.0.1"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jobq-local", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=DEFAULT_API_PORT, help="HTTP API port (default 3000)")
    parser.add_argument(
        "--emulator-port", type=int, default=DEFAULT_EMULATOR_PORT, help="embedded moto server port (default 4566)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override, e.g. --param RetryBaseSeconds=1 (repeatable)",
    )
    parser.add_argument("--stack-name", default="jobq", help="prefix of resource names (default jobq)")
    parser.add_argument(
        "--pollers",
        type=int,
        default=DEFAULT_POLLERS,
        help=f"concurrent pollers per SQS event, each with an execution environment of its function "
        f"(default {DEFAULT_POLLERS})",
    )
    parser.add_argument(
        "--environments",
        type=int,
        default=DEFAULT_ENVIRONMENTS,
        help="at most this many execution environments (concurrent invocations) of a function invoked over HTTP or "
        f"by a schedule; more invocations wait (default {DEFAULT_ENVIRONMENTS})",
    )
    parser.add_argument(
        "--schedules-every",
        type=float,
        metavar="SECONDS",
        help="run each scheduled function (the sweeper) this often instead of at its template rate (tests, demos)",
    )
    parser.add_argument(
        "--admin",
        action="append",
        metavar="ACCESS_KEY_ID",
        help="access key id whose caller is an admin (repeatable; default: admin)",
    )
    parser.add_argument(
        "--no-auth", action="store_true", help="serve the API WITHOUT authentication (demos only; logged loudly)"
    )
    parser.add_argument("--jwks", type=Path, help="with --param AuthMode=jwt: the issuer's JWKS document (JSON file)")
    parser.add_argument("--raw-logs", action="store_true", help="print the functions' JSON log lines as they are")
    parser.add_argument("--stats-file", type=Path, help="write AWS request counts here on exit (JSON)")
    parser.add_argument("--ready-file", type=Path, help="write the endpoints here (JSON) once everything is up")
    parser.add_argument(
        "--state-file",
        type=Path,
        default=Path(".jobq-local.json"),
        help="where `jobq --local` finds this runtime (default .jobq-local.json; removed on exit)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s jobq-local %(levelname)s %(message)s", datefmt="%X")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from jobq_local.endpoints import Endpoints
    from jobq_local.runtime import free_port_error

    endpoints = Endpoints.from_environment(os.environ)
    ports = [(args.port, "--port")] + ([] if endpoints.given else [(args.emulator_port, "--emulator-port")])
    for port, option in ports:
        problem = free_port_error(HOST, port, option)
        if problem:
            print(f"jobq-local: {problem}", file=sys.stderr)
            return 2
    try:
        parameters = dict(item.split("=", 1) for item in args.param)
    except ValueError:
        print("jobq-local: --param takes NAME=VALUE", file=sys.stderr)
        return 2
    from jobq_local.logs import install

    install(raw=args.raw_logs)
    from jobq_local.runtime import DEFAULT_ADMIN, LocalRuntime

    runtime = LocalRuntime(
        parameters=parameters,
        stack_name=args.stack_name,
        api_port=args.port,
        emulator_port=None if endpoints.given else args.emulator_port,
        endpoints=endpoints,
        pollers=args.pollers,
        environments=args.environments,
        schedules_every=args.schedules_every,
        admins=args.admin or [DEFAULT_ADMIN],
        no_auth=args.no_auth,
        jwks=json.loads(args.jwks.read_text()) if args.jwks else None,
        raw_logs=args.raw_logs,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        runtime.start()
    except Exception as exc:  # noqa: BLE001 - one clear line instead of a traceback
        print(f"jobq-local: could not start: {exc}", file=sys.stderr)
        runtime.stop()
        return 1
    print(runtime.banner(), flush=True)
    state = runtime.endpoints() | {"environment": runtime.function_environment("WorkerFunction")}
    if args.state_file:
        # What `jobq --local ...` (e.g. `jobq --local dlq list`) reads to find this runtime's resources.
        write_whole(args.state_file, json.dumps(state, indent=2))
    if args.ready_file:
        write_whole(args.ready_file, json.dumps(state))
    stop.wait()
    print("jobq-local: stopping ...", flush=True)
    runtime.stop()
    if args.state_file:
        args.state_file.unlink(missing_ok=True)
    if args.stats_file:
        write_whole(args.stats_file, json.dumps(runtime.stats(), indent=2))
    print("jobq-local: stopped", flush=True)
    return 0


def write_whole(path: Path, text: str) -> None:
    """``text`` to ``path`` in one step (a file beside it, renamed over it): whoever waits for ``path`` to
    exist, as ``RuntimeProcess`` does for the ready file, never reads it half-written."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    os.replace(partial, path)


if __name__ == "__main__":
    sys.exit(main())
