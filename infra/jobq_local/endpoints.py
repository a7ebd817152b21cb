"""Where the AWS services are: boto3's standard variables, ``AWS_ENDPOINT_URL`` and the per-service
``AWS_ENDPOINT_URL_<SERVICE>`` (the latter wins), read the way botocore reads them.

The local runtime provisions, polls and runs its functions against the same endpoints: its own clients are
built without an explicit ``endpoint_url``, so botocore resolves them exactly as it does for the functions.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

SERVICES = ("sqs", "dynamodb")
"""The services jobq's resources live in (STS, for the account id, is optional)."""


def variable(service: str) -> str:
    """``AWS_ENDPOINT_URL_SQS``: botocore's per-service variable (the service id, upper case, ``_`` for spaces)."""
    return f"AWS_ENDPOINT_URL_{service.upper().replace(' ', '_').replace('-', '_')}"


@dataclass(frozen=True)
class Endpoints:
    """The endpoint variables found; empty means AWS itself (or, for the local runtime, its embedded store)."""

    default: str | None = None
    services: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Endpoints:
        services = {
            service: environ[variable(service)] for service in (*SERVICES, "sts") if environ.get(variable(service))
        }
        return cls(environ.get("AWS_ENDPOINT_URL") or None, services)

    @property
    def given(self) -> bool:
        """Whether any endpoint variable is set (the local runtime then runs against it, with no store of its own)."""
        return self.default is not None or bool(self.services)

    def url(self, service: str) -> str | None:
        return self.services.get(service, self.default)

    def missing(self) -> list[str]:
        """jobq's services that these endpoints leave to AWS itself (a mistake when the others are local)."""
        return [service for service in SERVICES if self.url(service) is None]

    def environment(self) -> dict[str, str]:
        """The variables that give these endpoints to a process (the functions, an outside tool)."""
        found = {"AWS_ENDPOINT_URL": self.default} if self.default else {}
        return found | {variable(service): url for service, url in self.services.items()}

    def describe(self) -> str:
        """``http://127.0.0.1:4566`` or ``sqs http://...:4566, dynamodb http://...:8000``."""
        urls = {service: self.url(service) for service in SERVICES}
        if len(set(urls.values())) == 1:
            return str(next(iter(urls.values())))
        return ", ".join(f"{service} {url}" for service, url in urls.items())


def identify(url: str, *, timeout: float = 1.0) -> str | None:
    """What serves ``url``, when it says: ``MiniStack 1.5.33``, ``LocalStack 4.7.0``, ``moto`` (else None)."""
    for path, name in (("/_ministack/health", "MiniStack"), ("/_localstack/info", "LocalStack")):
        try:
            with urllib.request.urlopen(url.rstrip("/") + path, timeout=timeout) as response:  # noqa: S310
                info = json.loads(response.read())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("version"):
            return f"{name} {info['version']}"
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/moto-api/data.json", timeout=timeout):  # noqa: S310
            return "moto"
    except (OSError, ValueError):
        return None
