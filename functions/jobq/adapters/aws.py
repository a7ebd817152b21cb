"""AWS clients (botocore) and the translation of SDK failures into domain errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, DataNotFoundError
from botocore.loaders import Loader, instance_cache

from jobq.caching import per_process
from jobq.domain.errors import DependencyUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

# Fail fast enough that the API answers 503 well inside API Gateway's 30 s, with boto3's standard
# retry mode (exponential backoff, throttling and transient errors retried). No client-side parameter
# validation: every request is built by the adapters' code, DynamoDB and SQS validate it anyway, and the
# walk of each parameter against the service model was a fifth of an UpdateItem's CPU in the client
# (1.96 -> 1.55 ms a call); a malformed request still fails, as a ValidationException from the service.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
    tcp_keepalive=True,
    parameter_validation=False,
)


SERVICES = ("dynamodb", "sqs")
"""The services the functions' own session makes clients for."""

BOTOCORE_DATA = Path(__file__).with_name("botocore_data")
"""botocore's endpoints.json with only ``SERVICES``' entries (``make botocore-data`` writes it from the
pinned botocore). Searched before botocore's own data, it spares each cold start the parse of the whole
1.2 MB file; any other service resolves by its partition's defaults and its endpoint rules, as before."""


class ServiceLoader(Loader):
    """botocore's Loader, except that a service is looked up in its own folders first.

    botocore's ``load_service_model`` lists every service of every search path (400 folders, each listed
    again for its versions) before it loads one, to check that the name is known: about 24 ms of a cold
    start's two clients. A name listed as such in a search path, whose folder holds data of that type, is by
    that very check known, so this loads it straight away; any other name, or once botocore's list has been
    made (it is kept, and decides from then on), goes to botocore's own method (its UnknownServiceError).
    One difference is left on purpose: an unreadable folder of some other service fails botocore's listing,
    and so every load, where this loads the services it can read.
    """

    @instance_cache
    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        if api_version is None and self._listed(service_name, type_name):
            try:
                api_version = self.determine_latest_version(service_name, type_name)
            except DataNotFoundError:
                pass  # no data of that type: botocore's own method raises what it raises
            else:
                # The rest of botocore's method, as it is (its two helpers are private, hence untyped).
                model = self.load_data(os.path.join(service_name, api_version, type_name))
                extras = self._find_extras(service_name, type_name, api_version)  # type: ignore[attr-defined]
                self._extras_processor.process(model, extras)  # type: ignore[attr-defined]
                return model
        return super().load_service_model(service_name, type_name, api_version)

    def _listed(self, service_name: object, type_name: str) -> bool:
        """Whether ``service_name`` is, as spelled, a folder of a search path (and botocore has no list yet)."""
        if ("list_available_services", type_name) in self._cache or not _plain(service_name):  # type: ignore[attr-defined]
            return False
        return any(service_name in self._folders(path) for path in self._potential_locations())  # type: ignore[attr-defined]

    @instance_cache
    def _folders(self, path: str) -> frozenset[str]:
        return frozenset(os.listdir(path))


def _plain(name: object) -> bool:
    """A name that can only be a folder of its own (a string, no separator, no leading dot)."""
    if not isinstance(name, str) or not name or name.startswith("."):
        return False
    return os.sep not in name and (os.altsep or os.sep) not in name


@per_process
def aws_session() -> botocore.session.Session:
    """The process's botocore session: its clients share one loader (service models read once).

    botocore, not boto3: the functions use no boto3 resource, and importing boto3 (and s3transfer
    with it) costs a cold start about 100 ms for nothing.
    """
    session = botocore.session.get_session()
    extra = session.get_config_variable("data_path")  # AWS_DATA_PATH: the caller's models still win
    paths = [os.path.expanduser(os.path.expandvars(path)) for path in (extra or "").split(os.pathsep) if path]
    session.register_component("data_loader", ServiceLoader(extra_search_paths=[*paths, str(BOTOCORE_DATA)]))
    return session


@per_process
def dynamodb_client() -> DynamoDBClient:
    """The process's DynamoDB client (region and endpoint from the standard AWS variables)."""
    return cast("DynamoDBClient", aws_session().create_client("dynamodb", config=CLIENT_CONFIG))


@per_process
def sqs_client() -> SQSClient:
    """The process's SQS client (region and endpoint from the standard AWS variables)."""
    return cast("SQSClient", aws_session().create_client("sqs", config=CLIENT_CONFIG))


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


@contextmanager
def unavailable_on_failure(service: str, operation: str) -> Iterator[None]:
    """Turn SDK failures (after boto3's own retries) into DependencyUnavailableError."""
    try:
        yield
    except ClientError as exc:
        raise DependencyUnavailableError(f"{service} {operation} failed: {error_code(exc)}") from exc
    except BotoCoreError as exc:
        raise DependencyUnavailableError(f"{service} {operation} failed: {type(exc).__name__}") from exc
