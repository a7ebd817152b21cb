"""Run the scenario suite, or the benchmark, against third-party AWS emulators started for the run.

    python -m emulators test BACKEND... [-- PYTEST-ARGS]   the e2e scenarios (pytest -m scenario tests/e2e)
    python -m emulators bench BACKEND... [-- BENCH-ARGS]   make bench against each, figures side by side

BACKEND: moto, localstack, dynamodb-local, ministack (or all). Each is started on 127.0.0.1 with free ports
(LocalStack and DynamoDB Local inside a network namespace of their own, with the tests), installs what it needs
on first use (into .venv-localstack, .venv-ministack and .cache/emulators), and is stopped after its run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emulators.backends import BACKENDS, start
from emulators.processes import EmulatorError
from jobq_local.template import REPO_ROOT


def _backends(names: list[str]) -> list[str]:
    chosen = list(BACKENDS) if names == ["all"] else names
    unknown = [name for name in chosen if name not in BACKENDS]
    if unknown:
        raise SystemExit(f"unknown backend {', '.join(unknown)}; choose from {', '.join(BACKENDS)} or all")
    return chosen


def _run_on(name: str, command: list[str], *, capture: bool = False) -> tuple[int, float, str, str]:
    """Start backend ``name``, run ``command`` where it is reachable; exit code, seconds, output, description."""
    workdir = Path(tempfile.mkdtemp(prefix=f"jobq-{name}-"))
    started_at = time.monotonic()
    backend = start(name, workdir)
    ready = time.monotonic() - started_at
    print(f"== {name}: {backend.description}, up in {ready:.1f} s", flush=True)
    try:
        result = subprocess.run(  # noqa: S603 - our own interpreter and tools
            backend.enter(command),
            env=os.environ | backend.environment | {"JOBQ_E2E_BACKEND_VERSION": backend.description},
            cwd=REPO_ROOT,
            check=False,
            capture_output=capture,
            text=True,
        )
    finally:
        backend.stop()
    elapsed = time.monotonic() - started_at
    if result.returncode == 0:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"== {name}: the emulators' logs are kept in {workdir}", flush=True)
    return result.returncode, elapsed, result.stdout or "", backend.description


def test(names: list[str], extra: list[str]) -> int:
    rows = []
    for name in _backends(names):
        command = [sys.executable, "-m", "pytest", "-m", "scenario", "tests/e2e", *(extra or ["-q"])]
        code, seconds, _, description = _run_on(name, command)
        rows.append((name, description, "passed" if code == 0 else f"FAILED ({code})", seconds))
    print("\nscenario suite by backend:")
    for name, description, outcome, seconds in rows:
        print(f"  {name:<15} {outcome:<12} {seconds:6.1f} s  {description}")
    return 0 if all(outcome == "passed" for _, _, outcome, _ in rows) else 1


def bench(names: list[str], extra: list[str]) -> int:
    results = []
    for name in _backends(names):
        command = [sys.executable, "-m", "bench.local_runtime", "--json", *extra]
        code, _, out, description = _run_on(name, command, capture=True)
        if code != 0:
            print(f"== {name}: the benchmark failed ({code})", file=sys.stderr)
            return code
        results.append((name, description, json.loads(out.strip().splitlines()[-1])))
    print("\nmake bench by backend (one run each, in this order):")
    print(f"  {'backend':<15} {'jobs/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'submit s':>9}  emulator")
    for name, description, figures in results:
        print(
            f"  {name:<15} {figures['throughput']:7.1f} {figures['p50']:7.0f} {figures['p95']:7.0f} "
            f"{figures['submit_seconds']:9.2f}  {description}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("command", choices=["test", "bench"])
    parser.add_argument("backends", nargs="+", metavar="BACKEND")
    raw = list(sys.argv[1:] if argv is None else argv)
    extra = raw[raw.index("--") + 1 :] if "--" in raw else []
    args = parser.parse_args(raw[: raw.index("--")] if "--" in raw else raw)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%X")
    try:
        return test(args.backends, extra) if args.command == "test" else bench(args.backends, extra)
    except EmulatorError as exc:
        print(f"emulators: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
