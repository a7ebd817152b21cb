"""Benchmark: cold init of each function against a bare boto3 function (`make coldstart ARGS="--pairs 20"`).

For each function of template.yaml, alternating pairs of fresh Python processes time, inside the process:
- jobq: import the handler module the template names, then build what its first invocation builds
  (the handler's entry point and its DynamoDB and SQS clients);
- yardstick: ``import boto3`` and create the same clients.
It prints the median of each and their ratio (target: at most 1.0x). Interpreter start-up is in neither. Every
module either side imports is compiled to bytecode first, as the Lambda runtime's boto3 is: a machine that
never writes bytecode (``PYTHONDONTWRITEBYTECODE``) would otherwise compile every import of both, every time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from jobq_local.template import REPO_ROOT, Template

CLIENTS = {
    "ApiFunction": ("dynamodb", "sqs"),
    "WorkerFunction": ("dynamodb", "sqs"),
    "SweeperFunction": ("dynamodb", "sqs"),
}
"""The AWS clients each function creates on its first invocation (the yardstick creates the same)."""

FIRST_USE = {
    "ApiFunction": "from jobq import wiring; module._entrypoint(); wiring.get_job_service(); wiring.get_redriver()",
    "WorkerFunction": "from jobq import wiring; module._entrypoint(); wiring.get_job_runner()",
    "SweeperFunction": "from jobq import wiring; module._entrypoint(); wiring.get_sweeper()",
}
"""What a function's first invocation builds before it touches its event (entry point, services, clients)."""

TIMED = """
import time
started = time.perf_counter()
{body}
print(time.perf_counter() - started)
"""


def jobq_body(function: str, handler: str) -> str:
    module = handler.rpartition(".")[0]
    return f"import importlib; module = importlib.import_module({module!r}); {FIRST_USE[function]}"


def boto3_body(function: str) -> str:
    clients = "; ".join(f"session.client({name!r})" for name in CLIENTS[function])
    return f"import boto3; session = boto3.session.Session(); {clients}"


def timed(body: str, env: dict[str, str], python: str = sys.executable) -> float:
    result = subprocess.run(
        [python, "-c", TIMED.format(body=body)], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"the timed process failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def function_env(template: Template, function: str) -> dict[str, str]:
    """The function's environment as the template gives it, with a region and dummy credentials (no calls)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_", "JOBQ_"))}
    env |= template.function_environment(function)
    env |= {"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    env |= {"AWS_ACCESS_KEY_ID": "cold", "AWS_SECRET_ACCESS_KEY": "start", "AWS_LAMBDA_FUNCTION_NAME": function}
    return env


def provisioned_template() -> Template:
    """The template with its queues and tables given names (provisioned on an in-process moto, then gone)."""
    import boto3
    from moto import mock_aws

    from jobq_local.provision import provision

    template = Template()
    with mock_aws():
        session = boto3.session.Session(region_name=template.region)
        provision(template, dynamodb=session.client("dynamodb"), sqs=session.client("sqs"))
    return template


def compile_imports() -> None:
    """Bytecode for every module on the path (the project's functions and the environment's packages)."""
    import compileall
    import site

    for folder in [*site.getsitepackages(), str(REPO_ROOT / "functions")]:
        compileall.compile_dir(folder, quiet=1, workers=0)


def measure(pairs: int, functions: list[str]) -> dict[str, Any]:
    compile_imports()
    template = provisioned_template()
    report: dict[str, Any] = {}
    for function in functions:
        spec = template.function(function)
        env = function_env(template, function)
        ours, yardstick = [], []
        for index in range(pairs):  # alternate which goes first: the machine drifts
            order = [("jobq", jobq_body(function, spec.handler)), ("boto3", boto3_body(function))]
            for name, body in order if index % 2 == 0 else reversed(order):
                (ours if name == "jobq" else yardstick).append(timed(body, env))
        ratios = [a / b for a, b in zip(ours, yardstick, strict=True)]
        report[function] = {
            "jobq_ms": round(statistics.median(ours) * 1000, 1),
            "boto3_ms": round(statistics.median(yardstick) * 1000, 1),
            "ratio": round(statistics.median(ratios), 2),
        }
    return report


def measured(doc: str | None, measure: Callable[[int, list[str]], dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    """The options every cold-start benchmark takes (pairs, functions, --json), and ``measure``'s report.
    With --json the report is printed and None comes back in place of the options."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10, help="alternating pairs of fresh processes (default 10)")
    parser.add_argument("--function", action="append", choices=sorted(CLIENTS), help="only this one (repeatable)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    args.function = args.function or sorted(CLIENTS)
    report = measure(args.pairs, args.function)
    if args.json:
        print(json.dumps(report, indent=2))
        return None, report
    return args, report


def main() -> None:
    args, report = measured(__doc__, measure)
    if args is None:
        return
    print(f"cold init, median of {args.pairs} alternating pairs of fresh processes (target: ratio <= 1.0)")
    print(f"{'function':<16} {'jobq':>9} {'boto3':>9} {'ratio':>6}")
    for function, row in report.items():
        print(f"{function:<16} {row['jobq_ms']:>7.1f}ms {row['boto3_ms']:>7.1f}ms {row['ratio']:>5.2f}x")


if __name__ == "__main__":
    main()
