"""What the deploy rehearsal runs through a deployed stack: jobs through the ApiFunction and the real SQS event
source mapping, the DLQ and a redrive, the HTTP API's routes, the sweeper's schedule.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulators.deployed import Endpoint, InvokedApi, Stack, log_lines
from emulators.processes import http_json
from emulators.report import Report
from jobq_local.template import Template


@dataclass(frozen=True)
class Deployment:
    """A stack deployed on an emulator, and the caller (an IAM user there, in AdminPrincipals) that drives it."""

    endpoint: Endpoint
    stack: Stack
    parameters: Mapping[str, str]
    caller: str
    credentials: tuple[str, str]
    """The caller's access key id and secret."""
    deployed_at: float
    """time.time() when the stack was complete."""

    def client(self, service: str) -> Any:
        return self.endpoint.client(service)

    @property
    def api_function(self) -> str:
        """The ApiFunction as the HTTP API's integration names it: qualified by its AutoPublishAlias."""
        name, alias = self.stack.physical["ApiFunction"], Template().function("ApiFunction").alias
        return name if alias is None else f"{name}:{alias}"

    def api(self) -> InvokedApi:
        """The ApiFunction invoked as API Gateway would, for the deployed API's routes, as the caller."""
        routes = self.client("apigatewayv2").get_routes(ApiId=self.stack.physical["JobsApi"])["Items"]
        keys = [route["RouteKey"] for route in routes]
        return InvokedApi(self.client("lambda"), self.api_function, InvokedApi.routes_of(keys), self.caller)


JOBS = {
    "echo": ("echo", {"rehearsal": True}),
    "retried": ("fail", {"times": 1, "message": "rehearsal: first attempt"}),
    "exhausted": ("fail", {"message": "rehearsal: every attempt"}),
    "non-retryable": ("fail", {"retryable": False, "message": "rehearsal: not retryable"}),
}


def run_jobs(report: Report, deployment: Deployment) -> dict[str, dict[str, Any]]:
    """The JOBS through the deployed functions, then the DLQ and a redrive; the jobs by name, as they ended."""
    attempts = int(deployment.parameters["MaxAttempts"])
    api = deployment.api()
    with report.phase("jobs"):
        started = time.monotonic()
        types = sorted(item["type"] for item in api.expect(200, "GET", "/types")["items"])
        report.say(f"  GET /types (a cold ApiFunction) in {time.monotonic() - started:.1f} s: {', '.join(types)}")
        ids = {
            name: api.expect(202, "POST", "/jobs", {"type": kind, "payload": payload})["job_id"]
            for name, (kind, payload) in JOBS.items()
        }
        jobs = {name: api.wait(job_id, timeout=120) for name, job_id in ids.items()}
        for name, job in jobs.items():
            error = job["error"] or {}
            report.say(
                f"  {name:<13} {job['job_id']} {job['status']} after {job['attempts']}/{job['max_attempts']} "
                f"attempts: result {job['result']}, error {error.get('type')} {error.get('message')!r}"
            )
        echo, retried, exhausted, fatal = (jobs[name] for name in JOBS)
        report.check(
            (echo["status"], echo["attempts"], echo["result"]) == ("succeeded", 1, {"rehearsal": True}),
            "echo succeeds: deployed ApiFunction -> JobsQueue -> event source mapping -> deployed WorkerFunction",
        )
        report.check(
            (retried["status"], retried["attempts"], retried["result"]) == ("succeeded", 2, {"attempts": 2}),
            'fail {"times": 1} is retried (RetryBaseSeconds) and succeeds on attempt 2',
        )
        report.check(
            (exhausted["status"], exhausted["attempts"], _error(exhausted))
            == ("failed", attempts, ("RequestedFailureError", "rehearsal: every attempt")),
            f"fail (every attempt) ends failed after {attempts}/{attempts} attempts, with its message",
            str(_error(exhausted)),
        )
        report.check(
            (fatal["status"], fatal["attempts"], _error(fatal)[0]) == ("failed", 1, "NonRetryableError"),
            'fail {"retryable": false} fails at once: attempt 1, NonRetryableError',
        )
    with report.phase("DLQ"):
        page = api.expect(200, "GET", "/dlq")
        listed = {(item["job"] or {}).get("job_id"): item for item in page["items"]}
        report.say(f"  GET /dlq: {len(page['items'])} messages: {sorted(filter(None, listed))}")
        report.check(
            {exhausted["job_id"], fatal["job_id"]} <= set(listed)
            and _error(listed[exhausted["job_id"]]["job"]) == _error(exhausted),
            "GET /dlq (an AdminPrincipals caller): both failed jobs' messages are in the DLQ, with their errors",
        )
        answer = api.expect(200, "POST", "/dlq/redrive", {"job_id": exhausted["job_id"]})
        again = api.wait(exhausted["job_id"], timeout=120)
        report.say(f"  POST /dlq/redrive: {answer}; the job then {again['status']}, history {len(again['history'])}")
        report.check(
            answer["redriven"] == [exhausted["job_id"]]
            and again["status"] == "failed"
            and len(again["history"]) == len(exhausted["history"]) + attempts,
            f"POST /dlq/redrive re-queues the dead-lettered job, which runs its {attempts} attempts again",
            f"{answer}, then {again['status']} with history {len(again['history'])}",
        )
    return jobs


def _error(job: Mapping[str, Any]) -> tuple[Any, Any]:
    error = job.get("error") or {}
    return error.get("type"), error.get("message")


def call_http_api(report: Report, deployment: Deployment, jobs: Mapping[str, Mapping[str, Any]]) -> None:
    """The deployed HTTP API at MiniStack's execute-api path, through jobq.Client, signed and not."""
    with report.phase("HTTP API"):
        from botocore.credentials import Credentials

        from jobq.client import ApiError, Client

        url = f"{deployment.endpoint.url}/_aws/execute-api/{deployment.stack.physical['JobsApi']}/$default"
        status, body = http_json(url + "/types")
        report.check(status == 403, f"unsigned GET {url}/types: 403 {body}", f"{status} {body}")
        region = deployment.endpoint.region
        client = Client(url, region=region, credentials=Credentials(*deployment.credentials))
        job = client.wait(client.submit("echo", {"via": "execute-api"}).job_id, timeout=60)
        report.check(
            job.status == "succeeded" and job.owner == deployment.caller,
            f"jobq.Client (SigV4) at that URL: echo {job.status}, owner {job.owner}",
        )
        dead = {letter.job.job_id for letter in client.dead_letters().items if letter.job}
        failed = {job["job_id"] for job in jobs.values() if job["status"] == "failed"}
        report.check(failed <= dead, "GET /dlq through the HTTP API as the admin: both failed jobs")
        try:
            Client(url, region=region, credentials=Credentials("test", "test")).dead_letters()
            refused = "not refused"
        except ApiError as exc:
            refused = f"{exc.status} {exc.code}"
        report.check(refused == "403 forbidden", f"GET /dlq as a caller not in AdminPrincipals: {refused}")


def see_schedule(report: Report, deployment: Deployment, timeout: float) -> None:
    """A scheduled SweeperFunction run ('sweep finished' in its log group) within ``timeout`` of the deploy."""
    with report.phase("schedule"):
        lam, logs = deployment.client("lambda"), deployment.client("logs")
        config = lam.get_function_configuration(FunctionName=deployment.stack.physical["SweeperFunction"])
        group = config["LoggingConfig"]["LogGroup"]
        since = int(deployment.deployed_at * 1000)
        deadline = deployment.deployed_at + timeout
        while not (fired := any("sweep finished" in line for line in log_lines(logs, group, since))):
            if time.time() > deadline:
                break
            time.sleep(2)
        after = time.time() - deployment.deployed_at
        report.check(
            fired,
            f"the schedule fires SweeperFunction: 'sweep finished' in {group}, {after:.0f} s after the deploy",
            f"nothing within {timeout:.0f} s",
        )
