"""Fault injection: many jobs through the real handlers while SQS, DynamoDB and Lambda misbehave.

The API, worker and sweeper Lambda handlers run for real, on moto in-process, provisioned from template.yaml.
Time is simulated: moto's SQS clock and the functions' clock move together, so visibility timeouts,
delays, backoffs, leases and the sweeper's bound all pass without waiting. Faults, each drawn at random:

- SQS SendMessage fails (API submit -> 503; worker requeue / DLQ send), ChangeMessageVisibility and
  DeleteMessage fail (the message comes back: a duplicate delivery);
- DynamoDB throttling on any write or read;
- conditional-check races: two workers get the same batch at once;
- a worker dies between its claim and its completion write; the API dies between its write and its send;
- duplicate deliveries (a message sent twice) and reordered batches;
- Lambda timeouts: invocations with almost no time left, and job types that run past their timeout.

At the end every fault stops, time runs on until the queue is quiet, and the invariants are checked.
``python -m tests.support.chaos --jobs 2000 --seed 7`` (``make chaos``) runs a longer one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import random
import threading
import time as _time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from jobq import JobContext, JobRegistry, JobType, wiring
from tests.support.stack import Stack, moto_stack


class ProcessDeath(BaseException):
    """The Lambda process dies here (crash, out of memory, killed at its timeout)."""


class SimulatedTime:
    """Wall-clock time plus an offset the harness moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def unix(self) -> float:
        return _time.time() + self.offset

    def unix_millis(self) -> float:
        return self.unix() * 1000

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)


class SlowPayload(BaseModel):
    """A job that runs past its timeout on its first ``times`` attempts."""

    model_config = ConfigDict(extra="forbid")
    times: int = 1


def _slow(payload: SlowPayload, ctx: JobContext) -> dict[str, Any]:
    if ctx.attempt <= payload.times:
        _time.sleep(0.2)  # over the 0.05 s timeout: JobTimeoutError
    return {"attempts": ctx.attempt}


def _lost(document: dict[str, Any]) -> bool:
    """The job's last attempt was lost with its worker."""
    return bool(document["error"]) and document["error"]["type"] == "WorkerLostError"


class RunTracker:
    """Counts handler runs per job and catches two runs of one job at once (which a live lease must prevent).

    While a handler runs, it may race its own lease: a second worker is handed the same job (a duplicate
    delivery) and must be refused; if its claim went through, its run overlaps this one and is counted.
    """

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.active: dict[str, list[float]] = {}  # job id -> deadlines of the runs in progress
        self.overlapping: set[str] = set()
        self.race: Callable[[JobContext], None] = lambda ctx: None
        self._lock = threading.Lock()

    def wrap(self, handler: Callable[[Any, JobContext], Any]) -> Callable[[Any, JobContext], Any]:
        def run(payload: Any, ctx: JobContext) -> Any:
            with self._lock:
                # A run past its deadline was given up by its runner (a JobTimeoutError recorded, the lease
                # released); only a worker thread's time limit lets it go on (a helper thread is abandoned,
                # not killed; Lambda's and the local runtime's main thread get SIGALRM). It is not a live run.
                live = [deadline for deadline in self.active.get(ctx.job_id, []) if deadline > _time.monotonic()]
                if live:
                    self.overlapping.add(ctx.job_id)
                self.runs[ctx.job_id] += 1
                self.active[ctx.job_id] = [*live, ctx.deadline]
            try:
                if not live:
                    self.race(ctx)
                return handler(payload, ctx)
            finally:
                with self._lock:
                    remaining = self.active.get(ctx.job_id, [])
                    if ctx.deadline in remaining:
                        remaining.remove(ctx.deadline)

        return run


TRACKER = RunTracker()


def chaos_registry() -> JobRegistry:
    """The built-in job types plus ``slow``, whose timeout is tiny; every handler's runs are tracked."""
    from jobq.jobs import build_registry

    builtins = build_registry()
    types = [builtins.require(name) for name in builtins.names]
    types.append(JobType("slow", SlowPayload, _slow, timeout_seconds=0.05))
    return JobRegistry([replace(job_type, handler=TRACKER.wrap(job_type.handler)) for job_type in types])


@dataclass
class Rates:
    """Probability of each fault per opportunity."""

    sqs_send: float = 0.05
    sqs_other: float = 0.05
    dynamodb_throttle: float = 0.03
    worker_death: float = 0.03
    api_death: float = 0.01
    duplicate: float = 0.05
    race: float = 0.05
    near_deadline: float = 0.05
    lease_race: float = 0.3

    @classmethod
    def heavy(cls) -> Rates:
        """About a third of all operations faulted (``make chaos``)."""
        return cls(
            sqs_send=0.35,
            sqs_other=0.35,
            dynamodb_throttle=0.3,
            worker_death=0.2,
            api_death=0.1,
            duplicate=0.4,
            race=0.4,
            near_deadline=0.3,
            lease_race=0.6,
        )


@dataclass
class Result:
    """Counts of what happened and what the invariants found."""

    jobs: int = 0
    accepted: int = 0
    rejected: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    double: list[str] = field(default_factory=list)
    overlapping: list[str] = field(default_factory=list)
    unclaimed_runs: list[str] = field(default_factory=list)
    handler_runs: int = 0
    operations: int = 0
    failed_without_error: list[str] = field(default_factory=list)
    wrong_result: list[str] = field(default_factory=list)
    stray_dead_letters: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    rounds: int = 0
    seconds: float = 0.0
    recovered: int = 0
    settle_rounds: int = 0
    stale_dead_letters_removed: int = 0
    documents: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.stuck
            or self.double
            or self.overlapping
            or self.unclaimed_runs
            or self.failed_without_error
            or self.wrong_result
            or self.stray_dead_letters
        )

    @property
    def faulted(self) -> float:
        """Share of the operations where a fault could strike that got one."""
        return sum(self.faults.values()) / self.operations if self.operations else 0.0

    def line(self) -> str:
        return (
            f"jobs={self.jobs} faults={sum(self.faults.values())} lost={len(self.lost)} stuck={len(self.stuck)} "
            f"double={len(self.double)} overlapping={len(self.overlapping)} unclaimed_runs={len(self.unclaimed_runs)} "
            f"runs={self.handler_runs} faulted={self.faulted:.0%} "
            f"failed_without_error={len(self.failed_without_error)} "
            f"wrong_result={len(self.wrong_result)} stray_dlq={len(self.stray_dead_letters)}"
        )


class FaultInjector:
    """botocore hooks on the functions' clients that raise the faults, at the rates given."""

    def __init__(self, rng: random.Random, rates: Rates, result: Result) -> None:
        self.rng = rng
        self.rates = rates
        self.result = result
        self.enabled = False
        self._local = threading.local()

    def role(self) -> str:
        return getattr(self._local, "role", "none")

    @contextmanager
    def acting_as(self, role: str) -> Iterator[None]:
        previous, self._local.role = self.role(), role
        claimed, self._local.claimed = getattr(self._local, "claimed", False), False
        try:
            yield
        finally:
            self._local.role = previous
            self._local.claimed = claimed

    def _roll(self, rate: float, name: str) -> bool:
        if self.enabled:
            self.result.operations += 1
        if self.enabled and self.rng.random() < rate:
            self.result.faults[name] += 1
            return True
        return False

    def attach(self, dynamodb: Any, sqs: Any, event_source: Any) -> None:
        dynamodb.meta.events.register("before-parameter-build.dynamodb", self._dynamodb)
        sqs.meta.events.register("before-parameter-build.sqs", self._sqs)
        event_source.meta.events.register("before-parameter-build.sqs.DeleteMessage", self._delete)

    def _delete(self, model: Any, **_: Any) -> None:
        if self.role() == "worker" and self._roll(self.rates.sqs_other, "esm_delete_failed"):
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, model.name)

    def _dynamodb(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.role() == "none":
            return
        if self._roll(self.rates.dynamodb_throttle, f"dynamodb_throttle_{model.name}"):
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "injected"}}, model.name
            )
        if self.role() != "worker":
            return
        if model.name == "BatchExecuteStatement":  # a batch's first attempts claimed ahead
            self._local.claimed = True
            return
        if model.name != "UpdateItem":
            return
        claim = ":until" in params.get("ExpressionAttributeValues", {})
        if claim:
            self._local.claimed = True
        elif self._local.claimed and self._roll(self.rates.worker_death, "worker_died_mid_job"):
            raise ProcessDeath("worker died between claim and completion")

    def _sqs(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if self.role() == "none":
            return
        if model.name == "SendMessage":
            if self.role() == "api" and self._roll(self.rates.api_death, "api_died_before_send"):
                raise ProcessDeath("API died between the table write and the send")
            if self._roll(self.rates.sqs_send, "sqs_send_failed"):
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, model.name)
        elif self._roll(self.rates.sqs_other, f"sqs_{model.name}_failed"):
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, model.name)


class Harness:
    """Drives jobs through the stack with faults and simulated time."""

    def __init__(self, stack: Stack, rng: random.Random, rates: Rates, clock: SimulatedTime) -> None:
        self.stack = stack
        self.rng = rng
        self.clock = clock
        self.result = Result()
        self.faults = FaultInjector(rng, rates, self.result)
        self.expected: dict[str, Callable[[dict[str, Any]], bool]] = {}
        self.succeeded_writes: Counter[str] = Counter()
        self.last_sweep = 0.0

    # -- setup ------------------------------------------------------------------------------------

    def install(self) -> None:
        from jobq.adapters import aws

        self.faults.attach(aws.dynamodb_client(), aws.sqs_client(), self.stack.sqs)
        events = wiring.get_job_events()
        original = events.succeeded

        def count_success(job: Any, duration_ms: float) -> None:
            self.succeeded_writes[job.job_id] += 1
            original(job, duration_ms)

        events.succeeded = count_success  # type: ignore[method-assign]
        TRACKER.__init__()  # type: ignore[misc]  # a fresh count for this run
        TRACKER.race = self.race_lease

    def race_lease(self, ctx: JobContext) -> None:
        """While ``ctx``'s handler holds the lease, a second worker gets the same job: its claim must fail."""
        if not self.faults._roll(self.faults.rates.lease_race, "lease_race"):
            return
        from jobq.domain.budget import TimeBudget
        from jobq.domain.models import Delivery, JobMessage

        delivery = Delivery(message=JobMessage(job_id=ctx.job_id, type=ctx.job_type), receive_count=1)
        with self.faults.acting_as("none"):  # the race itself, without other faults on top
            wiring.get_job_runner().handle(delivery, TimeBudget(lambda: 900.0))

    # -- the job mix ------------------------------------------------------------------------------

    def _job_spec(self, n: int) -> tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]:
        kind = self.rng.choices(["echo", "flaky", "doomed", "fatal", "slow", "delayed"], [50, 15, 8, 7, 10, 10])[0]
        if kind == "echo":
            payload = {"n": n, "blob": "x" * self.rng.randint(0, 200)}
            return (
                {"type": "echo", "payload": payload},
                lambda d: (
                    (d["status"] == "succeeded" and d["result"] == payload)
                    # Every attempt lost to injected faults (worker deaths, throttled completion writes): failed for
                    # good, and saying why. Rare at the CI's rates; a few per thousand at make chaos's heavy ones.
                    or (d["status"] == "failed" and d["attempts"] == d["max_attempts"] and _lost(d))
                ),
            )
        if kind == "flaky":
            times = self.rng.randint(1, 2)
            return (
                {"type": "fail", "payload": {"times": times}},
                lambda d: (
                    (d["status"] == "succeeded" and d["result"]["attempts"] == d["attempts"] >= times + 1)
                    or (d["status"] == "failed" and d["attempts"] == d["max_attempts"])
                ),
            )
        if kind == "doomed":
            return {"type": "fail", "payload": {"message": f"doomed {n}"}}, lambda d: d["status"] == "failed"
        if kind == "fatal":
            return (
                {"type": "fail", "payload": {"retryable": False}},
                lambda d: (
                    d["status"] == "failed"
                    and d["error"]["retryable"] is False
                    and d["error"]["type"] in {"NonRetryableError", "WorkerLostError"}
                ),
            )
        if kind == "slow":
            # Attempt 1 runs past the 0.05 s timeout (unless its worker died first); a later one succeeds.
            return (
                {"type": "slow", "payload": {"times": 1}},
                lambda d: (
                    (
                        d["status"] == "succeeded"
                        and d["result"]["attempts"] == d["attempts"] >= 2
                        and len(d["history"]) >= 1
                    )
                    or (d["status"] == "failed" and d["attempts"] == d["max_attempts"])
                ),
            )
        delay = self.rng.randint(1, 120)
        return {"type": "echo", "payload": {"n": n}, "delay_seconds": delay}, lambda d: d["status"] == "succeeded"

    # -- actors -----------------------------------------------------------------------------------

    def submit(self, n: int) -> None:
        body, check = self._job_spec(n)
        self.result.jobs += 1
        with self.faults.acting_as("api"):
            try:
                response = self.stack.api("POST", "/jobs", body)
            except ProcessDeath:
                return  # the client saw its connection drop; whatever was written must still end well
        if response.status == 202:
            self.result.accepted += 1
            self.expected[response.body["job_id"]] = check
        else:
            assert response.status == 503, response.body
            self.result.rejected += 1

    def work(self) -> None:
        messages = self.stack.receive()
        if not messages:
            return
        self.rng.shuffle(messages)  # reordered deliveries
        for message in list(messages):
            if self.faults._roll(self.faults.rates.duplicate, "duplicate_delivery"):
                self.stack.sqs.send_message(QueueUrl=self.stack.queue_url, MessageBody=message.body)
        remaining = None
        if self.faults._roll(self.faults.rates.near_deadline, "lambda_near_deadline"):
            remaining = 2.6
        if self.faults._roll(self.faults.rates.race, "racing_workers"):
            threads = [threading.Thread(target=self._invoke, args=(messages, remaining)) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        else:
            self._invoke(messages, remaining)

    def _invoke(self, messages: list[Any], remaining: float | None) -> None:
        with self.faults.acting_as("worker"):
            try:
                self.stack.worker(messages, remaining_seconds=remaining)
            except ProcessDeath:
                pass  # nothing deleted: the messages return when their visibility timeout ends
            except ClientError:
                pass  # the event source mapping's delete failed: the messages come back (duplicates)

    def sweep(self) -> None:
        with self.faults.acting_as("sweeper"):
            try:
                report = self.stack.sweep()
                self.result.recovered += report["requeued"] + report["failed"] + report["resent"]
                self.result.stale_dead_letters_removed += report["stale_dead_letters"]
            except (ProcessDeath, ClientError):
                pass
            except Exception as exc:
                if type(exc).__name__ != "DependencyUnavailableError":
                    raise

    def tick(self, seconds: float) -> None:
        self.clock.offset += seconds
        if self.clock.offset - self.last_sweep >= 60:
            self.last_sweep = self.clock.offset
            self.sweep()

    # -- the run ----------------------------------------------------------------------------------

    def run(self, jobs: int, wave: int = 40) -> Result:
        started = _time.monotonic()
        self.faults.enabled = True
        submitted = 0
        while submitted < jobs:
            for _ in range(min(wave, jobs - submitted)):
                self.submit(submitted)
                submitted += 1
            for _ in range(self.rng.randint(5, 8)):  # the workers keep up with the submissions, mostly
                self.work()
                self.tick(self.rng.choice([0, 1, 5, 20, 60]))
            self.result.rounds += 1
        self.faults.enabled = False
        self.settle()
        self.check()
        self.result.seconds = _time.monotonic() - started
        return self.result

    def settle(self, max_rounds: int = 400) -> None:
        """No more faults: let time run until nothing is left to do."""
        for _ in range(max_rounds):
            self.result.settle_rounds += 1
            if not self._active() and self.stack.queue_depth(self.stack.queue_url) == 0:
                break
            for _ in range(1000):
                if not self._visible():
                    break
                self.work()
            self.tick(600)  # visibility timeouts (5420 s), leases, backoffs and the sweeper's bound pass
        # A receive after the last one moves exhausted messages to the DLQ (the redrive happens on receive);
        # the sweep after it removes DLQ messages whose jobs were recovered meanwhile.
        self.stack.receive()
        self.tick(600)

    def _visible(self) -> bool:
        attributes = self.stack.sqs.get_queue_attributes(
            QueueUrl=self.stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) > 0

    def _jobs(self) -> dict[str, dict[str, Any]]:
        """Every job, read straight from moto's in-process backend (the harness's bookkeeping, not the system's)."""
        from moto.dynamodb.models import dynamodb_backends

        from jobq.adapters.dynamodb.codec import decode_job
        from jobq.domain.documents import JobDocument

        table = dynamodb_backends["123456789012"]["us-east-1"].tables[self.stack.table_name]
        items: dict[str, dict[str, Any]] = {}
        for item in list(table.all_items()):
            attributes = item.to_json()["Attributes"]
            if attributes["job_id"]["S"].startswith("#"):
                continue
            job = decode_job(attributes)
            items[job.job_id] = JobDocument.of(job).model_dump(mode="json")
        return items

    def _active(self) -> bool:
        return any(doc["status"] in {"queued", "running"} for doc in self._jobs().values())

    def check(self) -> None:
        jobs = self._jobs()
        result = self.result
        result.statuses = Counter(doc["status"] for doc in jobs.values())
        result.lost = [job_id for job_id in self.expected if job_id not in jobs]
        result.stuck = [job_id for job_id, doc in jobs.items() if doc["status"] not in {"succeeded", "failed"}]
        result.double = [job_id for job_id, count in self.succeeded_writes.items() if count > 1]
        result.overlapping = sorted(TRACKER.overlapping)
        result.handler_runs = sum(TRACKER.runs.values())
        # Every run needs a claim, and every claim counts an attempt: more runs than attempts is a run unclaimed.
        result.unclaimed_runs = [
            job_id for job_id, runs in TRACKER.runs.items() if runs > jobs.get(job_id, {}).get("attempts", runs)
        ]
        result.failed_without_error = [
            job_id
            for job_id, doc in jobs.items()
            if doc["status"] == "failed" and not (doc["error"] and doc["history"])
        ]
        result.wrong_result = [
            job_id for job_id, check in self.expected.items() if job_id in jobs and not check(jobs[job_id])
        ]
        dead: list[str] = []
        while True:
            batch = self.stack.receive(queue_url=self.stack.dlq_url)
            if not batch:
                break
            dead += [json.loads(m.body)["job_id"] for m in batch]
        result.stray_dead_letters = [job_id for job_id in dead if jobs.get(job_id, {}).get("status") != "failed"]
        self.documents = jobs


@contextmanager
def chaos_stack(clock: SimulatedTime) -> Iterator[Stack]:
    """The moto stack with simulated time and the chaos job types."""
    import moto.sqs.models as sqs_models

    saved = (sqs_models.unix_time, sqs_models.unix_time_millis, wiring.SystemClock.now, wiring.build_registry)
    sqs_models.unix_time = clock.unix  # type: ignore[assignment]
    sqs_models.unix_time_millis = clock.unix_millis  # type: ignore[assignment]
    wiring.SystemClock.now = lambda self: clock.now()  # type: ignore[method-assign]
    wiring.build_registry = chaos_registry  # type: ignore[assignment]
    try:
        with moto_stack({"RetryBaseSeconds": "5", "RetryMaxSeconds": "600"}) as stack:
            yield stack
    finally:
        sqs_models.unix_time, sqs_models.unix_time_millis, wiring.SystemClock.now, wiring.build_registry = saved  # type: ignore[assignment,method-assign]


def run_chaos(jobs: int, seed: int, rates: Rates | None = None) -> Result:
    """One chaos run; returns its result (``result.line()`` is the summary)."""
    clock = SimulatedTime()
    jobq_logger = logging.getLogger("jobq")
    with chaos_stack(clock) as stack, contextlib.redirect_stdout(io.StringIO()):
        harness = Harness(stack, random.Random(seed), rates or Rates(), clock)
        harness.install()
        level = jobq_logger.level  # as Powertools configured it
        jobq_logger.setLevel(logging.CRITICAL)
        try:
            result = harness.run(jobs)
        finally:
            jobq_logger.setLevel(level)
    result.documents = harness.documents
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="fault-injection run of jobq's real handlers on moto")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--light", action="store_true", help="the CI test's fault rates instead of the heavy ones")
    args = parser.parse_args()
    result = run_chaos(args.jobs, args.seed, Rates() if args.light else Rates.heavy())
    print(result.line())
    print(
        f"duration: {result.seconds:.1f} s ({result.jobs / result.seconds:.1f} jobs/s, {result.operations} operations)"
    )
    print(f"faults: {dict(sorted(result.faults.items()))}")
    print(f"statuses: {dict(result.statuses)} accepted={result.accepted} rejected(503)={result.rejected}")
    print(
        f"sweeper: recovered={result.recovered} stale_dlq_removed={result.stale_dead_letters_removed} "
        f"rounds={result.rounds} settle_rounds={result.settle_rounds} seconds={result.seconds:.1f}"
    )
    if not result.ok:
        for job_id in {*result.wrong_result, *result.stray_dead_letters, *result.stuck, *result.failed_without_error}:
            print(json.dumps(result.documents.get(job_id), default=str)[:2000])
    raise SystemExit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
