"""Where each function's cold init goes, step by step (`make coldstart-steps ARGS="--runs 10"`).

In fresh processes, as `make coldstart` times them, each step is timed after the ones before it: the pause of
the garbage collector each handler module imports first, the libraries jobq builds on (botocore, pydantic,
Powertools, in the order the function imports them), then the handler module (jobq's own code and whatever
else it imports), then what the first invocation builds (entry point, services, clients). The yardstick in two
steps: ``import boto3``, then the same clients. Medians of each step.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

from bench.coldstart import CLIENTS, FIRST_USE, boto3_body, compile_imports, function_env, provisioned_template

# Each handler module's first import pauses the garbage collector until its last line (jobq.handlers.coldinit).
LIBRARIES = {
    "ApiFunction": (
        "jobq.handlers.coldinit",
        "botocore.session",
        "pydantic",
        "aws_lambda_powertools",
        "aws_lambda_powertools.event_handler",
        "aws_lambda_powertools.event_handler.openapi.params",
    ),
    # Powertools' batch utilities before pydantic, as the worker imports them (their record models are then
    # not built: tests/integration/test_cold_paths.py).
    "WorkerFunction": (
        "jobq.handlers.coldinit",
        "botocore.session",
        "aws_lambda_powertools",
        "aws_lambda_powertools.utilities.batch",
        "pydantic",
    ),
    "SweeperFunction": ("jobq.handlers.coldinit", "botocore.session", "pydantic", "aws_lambda_powertools"),
}
"""The libraries each function's import pulls in first, in their order."""

STEPS = """
import time
marks = [time.perf_counter()]
{steps}
print(" ".join(str(b - a) for a, b in zip(marks, marks[1:])))
"""


def steps(function: str, handler: str) -> list[tuple[str, str]]:
    """(label, code) of each step of the function's cold init."""
    module = handler.rpartition(".")[0]
    imports = [(f"import {name}", f"import {name}") for name in LIBRARIES[function]]
    return [
        *imports,
        (f"import {module} (jobq and the rest)", f"import importlib; module = importlib.import_module({module!r})"),
        ("first invocation's build", FIRST_USE[function]),
    ]


def yardstick(function: str) -> list[tuple[str, str]]:
    """``make coldstart``'s yardstick in two steps: its import, then its clients."""
    imports, clients = boto3_body(function).split("; ", 1)
    return [(imports, imports), (f"boto3 clients ({', '.join(CLIENTS[function])})", clients)]


def timed_steps(labelled: list[tuple[str, str]], env: dict[str, str]) -> list[float]:
    body = "".join(f"{code}\nmarks.append(time.perf_counter())\n" for _, code in labelled)
    result = subprocess.run(
        [sys.executable, "-c", STEPS.format(steps=body)], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"the timed process failed:\n{result.stderr}")
    return [float(value) for value in result.stdout.split()]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh processes of each (default 10)")
    parser.add_argument("--function", action="append", choices=sorted(CLIENTS), help="only this one (repeatable)")
    args = parser.parse_args()
    compile_imports()
    template = provisioned_template()
    for function in args.function or sorted(CLIENTS):
        env = function_env(template, function)
        sides = {"jobq": steps(function, template.function(function).handler), "yardstick": yardstick(function)}
        runs: dict[str, list[list[float]]] = {side: [] for side in sides}
        for _ in range(args.runs):  # alternate: the machine drifts
            for side, labelled in sides.items():
                runs[side].append(timed_steps(labelled, env))
        print(f"{function}: median of {args.runs} fresh processes, each step after the ones before")
        for side, labelled in sides.items():
            medians = [statistics.median(column) * 1000 for column in zip(*runs[side], strict=True)]
            for (label, _), ms in zip(labelled, medians, strict=True):
                print(f"  {side:<9} {label:<62} {ms:7.1f} ms")
            total = statistics.median(sum(run) for run in runs[side]) * 1000
            print(f"  {side:<9} {'total':<62} {total:7.1f} ms")


if __name__ == "__main__":
    main()
