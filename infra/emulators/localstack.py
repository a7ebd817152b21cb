"""LocalStack on the host, without its Docker image: ``localstack-core`` 4.7.0 in a virtualenv of its own (newer
releases fail on Python 3.11), inside a network namespace of its own (its DynamoDB is DynamoDB Local, which
listens on every interface), on 127.0.0.1 only.

Its DynamoDB would download a JDK and DynamoDB Local at first use, which fails offline: its lib folder is
seeded first (the machine's JDK, DynamoDB Local from npm, a do-nothing agent jar). Its index of the AWS service
specs, which it builds at its first request (4-6 s), is built once and seeded too.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from emulators.dynamodb_local import AGENT, agent_jar, jar_folder
from emulators.processes import (
    CACHE,
    Emulator,
    EmulatorError,
    Namespace,
    Service,
    Venv,
    java_home,
    wait_until,
)
from jobq_local.template import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "requirements" / "localstack.txt"
VERSION = "4.7.0"
SERVICES = ("sqs", "dynamodb", "kms", "sts")
"""kms: CreateTable of an encrypted table asks LocalStack's KMS for a key (without it the table is created, then
the call answers 500); sts: jobq-local reads the account id from GetCallerIdentity."""


def venv() -> Venv:
    return Venv(REPO_ROOT / ".venv-localstack", REQUIREMENTS, _base_python())


def _base_python() -> str:
    """The interpreter jobq's own virtualenv was built from (LocalStack 4.7.0 runs on 3.11)."""
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")


def service_catalog(env: Venv) -> Path:
    """LocalStack's index of the AWS service specs (its Docker image ships one; here it is built once)."""
    static = CACHE / f"localstack-{VERSION}-static"
    found = sorted((static / "usr" / "lib" / "localstack").glob("service-catalog-*.dill"))
    if found:
        return found[-1]
    (static / "usr" / "lib" / "localstack").mkdir(parents=True, exist_ok=True)
    environment = {"OVERRIDE_IN_DOCKER": "0", "FILESYSTEM_ROOT": str(static), "PATH": os.environ.get("PATH", "")}
    result = subprocess.run(  # noqa: S603
        [str(env.bin / "python"), "-m", "localstack.aws.spec"], env=environment, capture_output=True, check=False
    )
    found = sorted((static / "usr" / "lib" / "localstack").glob("service-catalog-*.dill"))
    if result.returncode != 0 or not found:
        raise EmulatorError(f"building LocalStack's service catalog failed:\n{result.stderr.decode()[-2000:]}")
    return found[-1]


def seed(root: Path, catalog: Path) -> None:
    """A FILESYSTEM_ROOT from which LocalStack installs nothing: Java, DynamoDB Local and the catalog in place."""
    lib = root / "var" / "lib" / "localstack" / "lib"
    (lib / "java").mkdir(parents=True)
    (lib / "java" / "21").symlink_to(java_home())  # it asks for Java 21 and checks only bin/java; 17 runs the jar
    target = lib / "dynamodb-local" / "2"
    shutil.copytree(jar_folder(), target, copy_function=_link_or_copy)
    shutil.copy(agent_jar(), target / AGENT)
    (root / "usr" / "lib" / "localstack").mkdir(parents=True)
    shutil.copy(catalog, root / "usr" / "lib" / "localstack" / catalog.name)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


@dataclass
class LocalStack(Emulator):
    """One LocalStack inside ``namespace``, serving ``services`` on 127.0.0.1:<free port>."""

    namespace: Namespace
    services: tuple[str, ...] = SERVICES

    def start(self, *, timeout: float = 120) -> LocalStack:
        env = venv().ensure()
        root = self.workdir / "localstack-root"
        seed(root, service_catalog(env))
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "OVERRIDE_IN_DOCKER": "0",
            "FILESYSTEM_ROOT": str(root),
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "GATEWAY_SERVER": "hypercorn",  # its default server binds every interface, whatever GATEWAY_LISTEN says
            "LOCALSTACK_HOST": f"127.0.0.1:{self.port}",
            "SQS_ENDPOINT_STRATEGY": "off",  # queue URLs on 127.0.0.1, not a *.localstack.cloud name (no DNS here)
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SERVICES": ",".join(self.services),
            "DYNAMODB_IN_MEMORY": "1",
        }
        argv = self.namespace.enter([str(env.bin / "python"), "-m", "localstack.runtime.main"])
        self.service = Service(
            "LocalStack", argv, self.workdir / "localstack.log", environment, cwd=self.workdir, stop_grace=5
        )  # fmt: skip  (its hypercorn server sometimes hangs on SIGTERM)
        self.service.start()
        ready = functools.partial(self.namespace.probe, "ready", self.url, *self.services)
        wait_until(ready, what="LocalStack", timeout=timeout, process=self.service)
        if "dynamodb" in self.services:  # its first DynamoDB call starts DynamoDB Local (a JVM): not in a test
            wait_until(lambda: self.namespace.probe("dynamodb", self.url), what="LocalStack's DynamoDB",
                       timeout=timeout, process=self.service)  # fmt: skip
        return self
