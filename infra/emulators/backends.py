"""The AWS backends the scenario suite runs against, each started on 127.0.0.1 and stopped again.

- ``moto``: the local runtime's embedded store (nothing to start);
- ``localstack``: LocalStack (SQS, and DynamoDB Local inside it), in a network namespace of its own;
- ``dynamodb-local``: LocalStack's SQS with AWS's DynamoDB Local beside it, per-service endpoints
  (``AWS_ENDPOINT_URL`` for SQS and STS, ``AWS_ENDPOINT_URL_DYNAMODB``), in a network namespace of its own;
- ``ministack``: MiniStack.

What a started backend gives is boto3's standard endpoint variables: the local runtime, its functions, the
tests and outside tools all find it through them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from emulators.dynamodb_local import NPM_PACKAGE, DynamoDBLocal
from emulators.localstack import VERSION, LocalStack
from emulators.ministack import MiniStack
from emulators.processes import Namespace


@dataclass
class Started:
    """A running backend: the variables that point at it, and how to stop it."""

    name: str
    description: str
    environment: dict[str, str]
    namespace: Namespace | None = None
    """Where it can be reached from (None: from the machine itself, on 127.0.0.1)."""
    stoppers: list[Callable[[], None]] = field(default_factory=list)

    def enter(self, argv: list[str]) -> list[str]:
        """``argv`` run where the backend can be reached."""
        return self.namespace.enter(argv) if self.namespace else argv

    def stop(self) -> None:
        for stop in reversed(self.stoppers):
            stop()
        self.stoppers.clear()


def start(name: str, workdir: Path) -> Started:
    """Start backend ``name`` (one of BACKENDS) with its state under ``workdir``; stop it with ``.stop()``."""
    started = Started(name, BACKENDS[name], {"JOBQ_E2E_BACKEND": name})
    try:
        if name == "moto":
            return started
        if name == "ministack":
            ministack = MiniStack(workdir).start()
            started.stoppers.append(ministack.stop)
            started.environment |= {"AWS_ENDPOINT_URL": ministack.url}
            started.description = f"MiniStack {ministack.version()}"
            return started
        namespace = Namespace().start()
        started.namespace = namespace
        started.stoppers.append(namespace.stop)
        if name == "localstack":
            localstack = LocalStack(workdir, namespace).start()
            started.stoppers.append(localstack.stop)
            # localstack-client and awslocal read LOCALSTACK_HOST (AWS_ENDPOINT_URL wins for them too)
            started.environment |= {"AWS_ENDPOINT_URL": localstack.url, "LOCALSTACK_HOST": localstack.url[7:]}
            return started
        if name == "dynamodb-local":
            localstack = LocalStack(workdir, namespace, services=("sqs", "sts")).start()
            started.stoppers.append(localstack.stop)
            dynamodb = DynamoDBLocal(workdir, namespace).start()
            started.stoppers.append(dynamodb.stop)
            started.environment |= {"AWS_ENDPOINT_URL": localstack.url, "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.url}
            return started
    except BaseException:
        started.stop()
        raise
    raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")


BACKENDS = {
    "moto": "embedded moto (the local runtime's own store)",
    "localstack": f"LocalStack {VERSION} (SQS; DynamoDB: DynamoDB Local inside it)",
    "dynamodb-local": f"LocalStack {VERSION} SQS + DynamoDB Local ({NPM_PACKAGE}) on their own endpoints",
    "ministack": "MiniStack",
}
