"""Benchmark: N echo jobs through the local runtime (`make bench ARGS="--jobs 1000 --clients 8"`).

Prints throughput (jobs/s, first submit to last finish), submit-to-succeeded latency p50/p95/p99 (the job's own
created_at -> finished_at), and AWS requests per job counted with botocore events inside the runtime.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from jobq_local.process import RuntimeProcess


def _ms(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(jobs: int, clients: int, pollers: int, batch: int = 0) -> dict[str, Any]:
    with RuntimeProcess(extra_args=["--pollers", str(pollers)]) as runtime:
        warm = runtime.request("POST", "/jobs", {"type": "echo", "payload": {}})[1]["job_id"]
        while runtime.request("GET", f"/jobs/{warm}")[1]["status"] != "succeeded":
            time.sleep(0.05)
        started = time.monotonic()

        def submit(i: int) -> list[str]:
            status, body = runtime.request("POST", "/jobs", {"type": "echo", "payload": {"i": i}})
            assert status == 202, body
            return [str(body["job_id"])]

        def submit_batch(start: int) -> list[str]:
            specs = [{"type": "echo", "payload": {"i": i}} for i in range(start, min(jobs, start + batch))]
            status, body = runtime.request("POST", "/jobs/batch", {"jobs": specs})
            assert status == 202, body
            return [str(job["job_id"]) for job in body["items"]]

        with ThreadPoolExecutor(max_workers=clients) as pool:
            if batch:
                ids = [i for chunk in pool.map(submit_batch, range(0, jobs, batch)) for i in chunk]
            else:
                ids = [i for chunk in pool.map(submit, range(jobs)) for i in chunk]
        api_requests = -(-jobs // batch) if batch else jobs
        submitted = time.monotonic()
        # Poll in submission order and stop at the first job still pending: the benchmark's own GETs
        # run on the same two cores as the system it measures, so it makes as few as it can.
        pending = list(ids)
        documents: dict[str, dict[str, Any]] = {}
        polls = 0
        while pending:
            _, body = runtime.request("GET", f"/jobs/{pending[0]}")
            polls += 1
            if body["status"] in {"succeeded", "failed"}:
                documents[body["job_id"]] = body
                pending.pop(0)
            else:
                time.sleep(0.05)
        wall = time.monotonic() - started
    stats = runtime.stats()
    latencies = [_ms(d["created_at"], d["finished_at"]) for d in documents.values()]
    first = min(d["created_at"] for d in documents.values())
    last = max(d["finished_at"] for d in documents.values())
    requests = Counter(stats["requests"])
    # The benchmark's own status polls (GET /jobs/{id} -> GetItem) are the client's cost, not the job's.
    job_path = {op: n for op, n in requests.items() if op != "function:GetItem"}
    function_calls = sum(n for op, n in job_path.items() if op.startswith("function:"))
    esm_calls = sum(n for op, n in job_path.items() if op.startswith("event-source:"))
    total_jobs = jobs + 1  # the warm-up job too
    worker_invocations = sum(stats["invocations"].values())
    # Billable per job: API Gateway requests and API function invocations (one each per POST), worker
    # invocations, and every DynamoDB and SQS request of the job path (the event source's included).
    billable = (2 * (api_requests + 1) + worker_invocations + function_calls + esm_calls) / total_jobs
    return {
        "jobs": jobs,
        "succeeded": sum(d["status"] == "succeeded" for d in documents.values()),
        "throughput": jobs / (_ms(first, last) / 1000),
        "submit_seconds": submitted - started,
        "wall_seconds": wall,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "mean": statistics.fmean(latencies),
        "function_requests_per_job": function_calls / total_jobs,
        "esm_requests_per_job": esm_calls / total_jobs,
        "requests": dict(sorted(requests.items())),
        "status_polls": polls,
        "invocations": stats["invocations"],
        "billable_requests_per_job": billable,
        "invoke_seconds": stats["invoke_seconds"],
        "api_requests": api_requests + 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients submitting")
    parser.add_argument("--pollers", type=int, default=4, help="SQS pollers of the worker's event source")
    parser.add_argument(
        "--batch",
        type=int,
        nargs="?",
        const=25,
        default=0,
        metavar="N",
        help="submit N jobs a request (POST /jobs/batch; default 25)",
    )
    parser.add_argument("--json", action="store_true", help="the figures as JSON (make cost reads them)")
    args = parser.parse_args()
    result = run(args.jobs, args.clients, args.pollers, args.batch)
    if args.json:
        print(json.dumps(result | {"clients": args.clients, "pollers": args.pollers, "batch": args.batch}))
        return
    print(
        f"jobs={result['jobs']} succeeded={result['succeeded']} clients={args.clients} pollers={args.pollers}\n"
        f"throughput={result['throughput']:.1f} jobs/s (first submit to last finish; "
        f"submitting took {result['submit_seconds']:.2f} s)\n"
        f"latency submit->succeeded ms: p50={result['p50']:.1f} p95={result['p95']:.1f} "
        f"p99={result['p99']:.1f} mean={result['mean']:.1f}\n"
        f"AWS requests per job: functions={result['function_requests_per_job']:.2f} "
        f"event-source={result['esm_requests_per_job']:.2f} (excluding the benchmark's status polls)\n"
        f"requests: {result['requests']}\n"
        f"worker invocations: {result['invocations']}\n"
        f"billable requests per job: {result['billable_requests_per_job']:.2f} "
        f"({'POST /jobs/batch, ' + str(args.batch) + ' a request' if args.batch else 'POST /jobs'}; API Gateway, "
        "Lambda invocations, DynamoDB and SQS requests, the event source's included)"
    )


if __name__ == "__main__":
    main()
