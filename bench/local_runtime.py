"""Benchmark: N echo jobs through the local runtime (`make bench ARGS="--jobs 1000 --clients 8"`).

Prints throughput (jobs/s, first submit to last finish), submit-to-succeeded latency p50/p95/p99 (the job's own
created_at -> finished_at), the clients' own wait for each POST's answer, and AWS requests per job counted with
botocore events inside the runtime.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from jobq_local.isolated import STATEMENTS
from jobq_local.process import RuntimeProcess
from jobq_local.runtime import DEFAULT_POLLERS

CLIENT_ROUTES = frozenset({"GET /jobs", "GET /jobs/{job_id}"})
"""The benchmark's own requests, served by the API function: their invocations are not the jobs' either."""
CLIENT_READS = frozenset({"ApiFunction:GetItem", "ApiFunction:Query", "ApiFunction:BatchGetItem"})
"""The benchmark's own reads (GET /jobs/{id}, GET /jobs): the client's cost, not the jobs'. (Submitting without
an Idempotency-Key, the API function reads nothing.)"""
DONE = frozenset({"succeeded", "failed"})
# SPEC section 8, local runtime (500 echo jobs, 8 clients): at least 70 jobs/s and a p50 of at most 40 ms.
TARGET_THROUGHPUT = 70.0
TARGET_P50_MS = 40.0


def _ms(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() * 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def job_seconds(stats: dict[str, Any]) -> dict[str, float]:
    """Seconds each function spent on the jobs (the API function's on the benchmark's reads left out)."""
    reads = sum(spent for route, spent in stats["route_seconds"].items() if route in CLIENT_ROUTES)
    seconds = dict(stats["invoke_seconds"])
    seconds["ApiFunction"] = seconds.get("ApiFunction", 0.0) - reads
    return seconds


def collect(runtime: RuntimeProcess, ids: list[str]) -> tuple[dict[str, dict[str, Any]], int]:
    """Every job's final document, with as few requests as it takes: the benchmark's own requests run on the
    same two cores as the system it measures. Waits for the last job submitted, reads them all a page of 100
    at a time (``GET /jobs``), then polls any still pending one by one. Returns the documents and the requests
    made."""
    polls = 0
    documents: dict[str, dict[str, Any]] = {}
    while True:
        _, last = runtime.request("GET", f"/jobs/{ids[-1]}")
        polls += 1
        if last["status"] in DONE:
            break
        time.sleep(0.1)
    pending = set(ids)
    cursor: str | None = None
    while pending:
        _, page = runtime.request("GET", "/jobs?limit=100" + (f"&cursor={cursor}" if cursor else ""))
        polls += 1
        for job in page["items"]:
            if job["job_id"] in pending and job["status"] in DONE:
                documents[job["job_id"]] = job
                pending.discard(job["job_id"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    for job_id in sorted(pending):
        documents[job_id] = runtime.wait_for(job_id, DONE, timeout=60)
        polls += 1
    return documents, polls


def run(
    jobs: int,
    clients: int,
    pollers: int,
    batch: int = 0,
    endpoint: str | None = None,
    parameters: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One run; ``endpoint``: the AWS endpoint to run on instead of the embedded store (boto3's endpoint
    variables of this environment, AWS_ENDPOINT_URL_<SERVICE> included, reach the runtime as well);
    ``parameters``: template parameter values for the runtime (``--param``)."""
    environment = {"AWS_ENDPOINT_URL": endpoint} if endpoint else {}
    arguments = ["--pollers", str(pollers)]
    for name, value in (parameters or {}).items():
        arguments += ["--param", f"{name}={value}"]
    with RuntimeProcess(extra_args=arguments, environment=environment) as runtime:
        # Warm up as Lambda's first minutes would: environments for concurrent requests and batches
        # (clients at once), so that none starts cold (an import of jobq) inside the measured run.
        with ThreadPoolExecutor(max_workers=clients) as pool:
            warm = list(
                pool.map(lambda _: runtime.request("POST", "/jobs", {"type": "echo", "payload": {}}), range(clients))
            )
        for _, body in warm:
            runtime.wait_for(str(body["job_id"]), frozenset({"succeeded"}))
        started = time.monotonic()
        posts: list[float] = []

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            sent = time.monotonic()
            status, answer = runtime.request("POST", path, body)
            posts.append((time.monotonic() - sent) * 1000)
            assert status == 202, answer
            return answer

        def submit(i: int) -> list[str]:
            return [str(post("/jobs", {"type": "echo", "payload": {"i": i}})["job_id"])]

        def submit_batch(start: int) -> list[str]:
            specs = [{"type": "echo", "payload": {"i": i}} for i in range(start, min(jobs, start + batch))]
            return [str(job["job_id"]) for job in post("/jobs/batch", {"jobs": specs})["items"]]

        with ThreadPoolExecutor(max_workers=clients) as pool:
            if batch:
                ids = [i for chunk in pool.map(submit_batch, range(0, jobs, batch)) for i in chunk]
            else:
                ids = [i for chunk in pool.map(submit, range(jobs)) for i in chunk]
        api_requests = -(-jobs // batch) if batch else jobs
        submitted = time.monotonic()
        documents, polls = collect(runtime, ids)
        wall = time.monotonic() - started
    stats = runtime.stats()
    latencies = [_ms(d["created_at"], d["finished_at"]) for d in documents.values()]
    waits = [_ms(d["created_at"], d["started_at"]) for d in documents.values()]
    first = min(d["created_at"] for d in documents.values())
    last = max(d["finished_at"] for d in documents.values())
    requests = Counter(stats["requests"])
    job_path = {op: n for op, n in requests.items() if op not in CLIENT_READS and not op.endswith(STATEMENTS)}
    esm_calls = sum(n for op, n in job_path.items() if op.startswith("event-source:"))
    function_calls = sum(job_path.values()) - esm_calls
    total_jobs = jobs + clients  # the warm-up jobs too
    worker_invocations = sum(stats["invocations"].values())
    # Billable per job: API Gateway requests and API function invocations (one each per POST), worker
    # invocations, and every DynamoDB and SQS request of the job path (the event source's included).
    billable = (2 * (api_requests + clients) + worker_invocations + function_calls + esm_calls) / total_jobs
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
        "queued_p50": percentile(waits, 50),
        "running_p50": percentile([total - wait for total, wait in zip(latencies, waits, strict=True)], 50),
        "post_p50": percentile(posts, 50),
        "post_p95": percentile(posts, 95),
        "function_requests_per_job": function_calls / total_jobs,
        "esm_requests_per_job": esm_calls / total_jobs,
        "requests": dict(sorted(job_path.items())),
        "statements": {op: n for op, n in requests.items() if op.endswith(STATEMENTS)},
        "status_polls": polls,
        "invocations": stats["invocations"],
        "billable_requests_per_job": billable,
        "invoke_seconds": job_seconds(stats),
        "api_requests": api_requests + clients,
        "warm_up_jobs": clients,
    }


def summarize(results: list[dict[str, Any]]) -> str:
    """Several runs of one command side by side: the spread of throughput and p50, and how many runs met both
    of SPEC's local targets at once (the machine is shared: one run is a sample, not the figure)."""
    throughputs = [r["throughput"] for r in results]
    p50s = [r["p50"] for r in results]
    met = sum(r["throughput"] >= TARGET_THROUGHPUT and r["p50"] <= TARGET_P50_MS for r in results)
    return (
        f"{len(results)} runs: throughput median {statistics.median(throughputs):.1f} jobs/s "
        f"(min {min(throughputs):.1f}, max {max(throughputs):.1f}); p50 median {statistics.median(p50s):.1f} ms "
        f"(min {min(p50s):.1f}, max {max(p50s):.1f}); runs with >= {TARGET_THROUGHPUT:g} jobs/s and "
        f"p50 <= {TARGET_P50_MS:g} ms: {met} of {len(results)}"
    )


def report(result: dict[str, Any], args: argparse.Namespace) -> str:
    """One run's figures, as make bench prints them."""
    return (
        f"jobs={result['jobs']} succeeded={result['succeeded']} clients={args.clients} pollers={args.pollers}"
        + "".join(f" {item}" for item in args.param)
        + "\n"
        f"throughput={result['throughput']:.1f} jobs/s (first submit to last finish; "
        f"submitting took {result['submit_seconds']:.2f} s)\n"
        f"latency submit->succeeded ms: p50={result['p50']:.1f} p95={result['p95']:.1f} "
        f"p99={result['p99']:.1f} mean={result['mean']:.1f} (p50 created->started {result['queued_p50']:.1f}, "
        f"started->finished {result['running_p50']:.1f})\n"
        f"the clients' wait for each POST's 202, ms: p50={result['post_p50']:.1f} p95={result['post_p95']:.1f}\n"
        f"AWS requests per job: functions={result['function_requests_per_job']:.2f} "
        f"event-source={result['esm_requests_per_job']:.2f} (excluding the benchmark's status polls)\n"
        f"requests: {result['requests']}\n"
        f"PartiQL statements in them: {result['statements']}\n"
        f"worker invocations: {result['invocations']}\n"
        f"billable requests per job: {result['billable_requests_per_job']:.2f} "
        f"({'POST /jobs/batch, ' + str(args.batch) + ' a request' if args.batch else 'POST /jobs'}; API Gateway, "
        "Lambda invocations, DynamoDB and SQS requests, the event source's included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients submitting")
    parser.add_argument(
        "--pollers", type=int, default=DEFAULT_POLLERS, help="SQS pollers of the worker's event source (the runtime's)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        nargs="?",
        const=25,
        default=0,
        metavar="N",
        help="submit N jobs a request (POST /jobs/batch; default 25)",
    )
    parser.add_argument("--endpoint", metavar="URL", help="run on this AWS endpoint (an emulator) instead of moto")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter for the runtime, e.g. WorkerBatchingWindow=1 (repeatable)",
    )
    parser.add_argument("--runs", type=int, default=1, metavar="N", help="N runs, one runtime each, then their spread")
    parser.add_argument("--json", action="store_true", help="the figures as JSON (make cost reads them)")
    args = parser.parse_args()
    if not all("=" in item for item in args.param):
        parser.error("--param takes NAME=VALUE")
    parameters = dict(item.split("=", 1) for item in args.param)
    if args.json:
        if args.runs != 1:
            parser.error("--json reports one run")
        result = run(args.jobs, args.clients, args.pollers, args.batch, args.endpoint, parameters)
        print(json.dumps(result | {"clients": args.clients, "pollers": args.pollers, "batch": args.batch}))
        return
    results = []
    for n in range(args.runs):
        result = run(args.jobs, args.clients, args.pollers, args.batch, args.endpoint, parameters)
        results.append(result)
        print(
            (f"run {n + 1} of {args.runs}, {time.strftime('%H:%M:%S')}\n" if args.runs > 1 else "")
            + report(result, args)
        )
    if args.runs > 1:
        print(summarize(results))


if __name__ == "__main__":
    main()
