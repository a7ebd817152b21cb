"""The local runtime's SQS event source mapping follows Lambda's documented behaviour (on moto)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jobq_local.event_source_mapping import SqsEventSourceMapping, sqs_mappings
from jobq_local.functions import LocalFunction
from jobq_local.http_api import api_routes
from jobq_local.runtime import merged_environment
from jobq_local.schedules import rate_seconds, schedules
from jobq_local.template import TemplateError
from tests.support.stack import Stack


class ScriptedFunction(LocalFunction):
    """A function whose response the test chooses; records the events it got."""

    def __init__(self, stack: Stack, respond: Callable[[dict[str, Any]], Any], timeout: int = 900) -> None:
        spec = stack.template.function("WorkerFunction")
        super().__init__(spec, "us-east-1", "123456789012")
        self.respond = respond
        self.events: list[dict[str, Any]] = []
        self.remaining: list[int] = []

    def invoke(self, event: Any, *, timeout: float | None = None) -> Any:
        self.events.append(event)
        return self.respond(event)


def _mapping(stack: Stack, function: LocalFunction) -> SqsEventSourceMapping:
    every = {spec.logical_id: function for spec in stack.template.functions()}
    ((_, config),) = sqs_mappings(stack.template, every)
    return SqsEventSourceMapping(function, config, stack.sqs, pollers=1)


def _send(stack: Stack, count: int) -> None:
    for n in range(count):
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=f'{{"n": {n}}}')


def _receive_all(stack: Stack) -> list[Any]:
    messages = stack.receive()
    assert messages
    return messages


def test_mapping_settings_come_from_the_template(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(WorkerBatchSize="3", WorkerMaxConcurrency="2", WorkerBatchingWindow="4")
    function = ScriptedFunction(stack, lambda event: None)
    mapping = _mapping(stack, function)
    assert mapping.config.batch_size == 3
    assert mapping.config.batching_window == 4
    assert mapping.config.report_batch_item_failures is True
    assert mapping.config.max_concurrency == 2
    assert mapping.config.queue_url == stack.queue_url


def test_successful_records_are_deleted_and_reported_failures_are_left(aws_stack: Stack) -> None:
    _send(aws_stack, 3)
    batch = _receive_all(aws_stack)
    failed_id = batch[1].message_id
    function = ScriptedFunction(aws_stack, lambda event: {"batchItemFailures": [{"itemIdentifier": failed_id}]})
    mapping = _mapping(aws_stack, function)

    mapping.process(batch)

    assert [r["messageId"] for r in function.events[0]["Records"]] == [m.message_id for m in batch]
    assert aws_stack.queue_depth(aws_stack.queue_url) == 1  # only the failed record remains (in flight)


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{}]},
        {"batchItemFailures": "nope"},
    ],
)
def test_an_invalid_batch_response_fails_the_whole_batch(aws_stack: Stack, response: Any) -> None:
    _send(aws_stack, 2)
    batch = _receive_all(aws_stack)
    mapping = _mapping(aws_stack, ScriptedFunction(aws_stack, lambda event: response))

    mapping.process(batch)

    assert aws_stack.queue_depth(aws_stack.queue_url) == 2


def test_a_raising_function_fails_the_whole_batch(aws_stack: Stack) -> None:
    _send(aws_stack, 2)
    batch = _receive_all(aws_stack)

    def boom(event: Any) -> Any:
        raise RuntimeError("crash")

    _mapping(aws_stack, ScriptedFunction(aws_stack, boom)).process(batch)

    assert aws_stack.queue_depth(aws_stack.queue_url) == 2


@pytest.mark.parametrize("response", [None, "", {}, {"batchItemFailures": []}])
def test_empty_responses_mean_the_whole_batch_succeeded(aws_stack: Stack, response: Any) -> None:
    _send(aws_stack, 2)
    batch = _receive_all(aws_stack)

    _mapping(aws_stack, ScriptedFunction(aws_stack, lambda event: response)).process(batch)

    assert aws_stack.queue_depth(aws_stack.queue_url) == 0


def test_pollers_deliver_batches_to_the_real_worker(aws_stack: Stack) -> None:
    jobs = [aws_stack.submit("echo", {"n": n}) for n in range(5)]
    from jobq_local.functions import LocalFunction as RealFunction

    spec = aws_stack.template.function("WorkerFunction")
    function = RealFunction(spec, "us-east-1", "123456789012")
    mapping = _mapping(aws_stack, function)
    mapping.start()
    try:
        import time

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(aws_stack.job(j["job_id"])["status"] != "succeeded" for j in jobs):
            time.sleep(0.05)
    finally:
        mapping.stop()
    assert [aws_stack.job(j["job_id"])["status"] for j in jobs] == ["succeeded"] * 5
    assert aws_stack.queue_depth(aws_stack.queue_url) == 0


def test_routes_and_environment_come_from_the_template(aws_stack: Stack) -> None:
    dummy = ScriptedFunction(aws_stack, lambda event: None)
    every = {spec.logical_id: dummy for spec in aws_stack.template.functions()}
    routes = api_routes(aws_stack.template, every)
    assert {route.key for route in routes} == {
        "POST /jobs",
        "POST /jobs/batch",
        "GET /jobs",
        "GET /jobs/{job_id}",
        "POST /jobs/{job_id}/cancel",
        "POST /jobs/{job_id}/retry",
        "GET /dlq",
        "POST /dlq/redrive",
        "GET /types",
        "GET /docs",
        "GET /openapi.json",
    }
    (sweep,) = schedules(aws_stack.template, every)
    assert sweep.name == "Sweep"
    assert sweep.interval == 60  # the SweepSchedule parameter's default, rate(1 minute)
    with pytest.raises(TemplateError, match="differently"):
        merged_environment({"A": {"X": "1"}, "B": {"X": "2"}})


@pytest.mark.parametrize(
    ("expression", "seconds"), [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200)]
)
def test_rate_expressions(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


def test_cron_expressions_are_refused_clearly() -> None:
    with pytest.raises(TemplateError, match="rate"):
        rate_seconds("cron(0 12 * * ? *)")


def test_context_remaining_time_follows_the_function_timeout(aws_stack: Stack) -> None:
    from jobq_local.events import LambdaContext

    now = [100.0]
    spec = aws_stack.template.function("WorkerFunction")
    context = LambdaContext("WorkerFunction", timeout_seconds=spec.timeout, clock=lambda: now[0])
    assert context.get_remaining_time_in_millis() == spec.timeout * 1000
    now[0] += 899.5
    assert context.get_remaining_time_in_millis() == 500
    now[0] += 10
    assert context.get_remaining_time_in_millis() == 0


def test_a_function_that_exits_fails_its_batch_and_the_poller_goes_on(aws_stack: Stack) -> None:
    import time

    calls: list[int] = []

    def respond(event: dict[str, Any]) -> Any:
        calls.append(len(event["Records"]))
        if len(calls) == 1:
            raise SystemExit(3)  # what a handler's sys.exit would do to a function that let it through
        return None

    mapping = _mapping(aws_stack, ScriptedFunction(aws_stack, respond))
    mapping.start()
    try:
        _send(aws_stack, 1)
        deadline = time.monotonic() + 20
        while len(calls) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        _send(aws_stack, 1)
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        mapping.stop()
    assert calls == [1, 1]  # the poller that saw the exit took the next batch too
    assert aws_stack.queue_depth(aws_stack.queue_url) == 1  # the failed batch's message returns later


def test_a_poller_that_dies_anyway_is_replaced(aws_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    mapping = _mapping(aws_stack, ScriptedFunction(aws_stack, lambda event: None))
    receive = mapping._receive_batch
    broken = [True]

    def receive_once_broken() -> Any:
        if broken.pop() if broken else False:
            raise SystemExit("poller killed")
        return receive()

    monkeypatch.setattr(mapping, "_receive_batch", receive_once_broken)
    mapping.start()
    try:
        _send(aws_stack, 3)
        deadline = time.monotonic() + 20
        while aws_stack.queue_depth(aws_stack.queue_url) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        mapping.stop()
    assert mapping.restarts == 1
    assert mapping.invocations >= 1
    assert aws_stack.queue_depth(aws_stack.queue_url) == 0


def test_a_partial_batch_waits_out_its_window_in_long_polls_not_a_stream_of_empty_receives(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(WorkerBatchSize="10", WorkerBatchingWindow="1")
    mapping = _mapping(stack, ScriptedFunction(stack, lambda event: None))
    receives: list[int] = []
    receive = stack.sqs.receive_message

    def counted(**kwargs: Any) -> Any:
        receives.append(kwargs["WaitTimeSeconds"])
        return receive(**kwargs)

    mapping._client = type("Counted", (), {"receive_message": staticmethod(counted)})()
    _send(stack, 2)

    batch = mapping._receive_batch()

    assert len(batch) == 2
    assert 2 <= len(receives) <= 3  # the first message(s), then one wait (or two) for the rest of the window
    assert all(wait >= 1 for wait in receives)
