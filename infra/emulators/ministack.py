"""MiniStack (PyPI ``ministack``): a pure-Python AWS emulator with CloudFormation, the SAM transform, Lambda and
SQS event source mappings, no Docker. Runs on 127.0.0.1 only, in a virtualenv of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from emulators.processes import Emulator, Service, Venv, find_python, http_json, wait_until
from jobq_local.template import REPO_ROOT

REQUIREMENTS = REPO_ROOT / "requirements" / "ministack.txt"
PYTHON = "3.13"
"""MiniStack runs Python functions on its own interpreter: the template's runtime (python3.13), so that the
code ``sam build`` bundles (cp313 wheels) loads in the deploy rehearsal."""


def venv() -> Venv:
    return Venv(REPO_ROOT / ".venv-ministack", REQUIREMENTS, find_python(PYTHON))


@dataclass
class MiniStack(Emulator):
    """One MiniStack on 127.0.0.1:<free port>, its state (and its functions' code) under ``workdir``."""

    def start(self, *, timeout: float = 60) -> MiniStack:
        env = venv().ensure()
        tmp = self.workdir / "tmp"  # its functions' unpacked code and workers' files
        tmp.mkdir(parents=True, exist_ok=True)
        environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")} | {
            "GATEWAY_PORT": str(self.port),
            "BIND_HOST": "127.0.0.1",  # its default is 0.0.0.0
            "IOT_MTLS_ENABLED": "0",  # else an MQTT/TLS listener binds 0.0.0.0:8883
            "SFTP_ENABLED": "0",
            "MINISTACK_REGION": "us-east-1",
            "TMPDIR": str(tmp),
        }
        self.service = Service("MiniStack", [str(env.bin / "ministack")], self.workdir / "ministack.log", environment)
        self.service.start()
        wait_until(lambda: http_json(self.url + "/_ministack/ready")[0] == 200, what="MiniStack",
                   timeout=timeout, process=self.service)  # fmt: skip
        return self

    def version(self) -> str:
        return str(http_json(self.url + "/_ministack/health")[1].get("version", "?"))
