"""The functions' trimmed botocore endpoints.json: current with botocore, and resolving as botocore's own."""

from __future__ import annotations

import json
from pathlib import Path

import botocore.session
import pytest
from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.loaders import Loader

from emulators.botocore_data import ENDPOINTS, botocore_endpoints, render, trimmed
from jobq.adapters import aws
from jobq.adapters.aws import BOTOCORE_DATA, SERVICES

REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-7", "us-gov-west-1", "cn-north-1", "us-isob-east-1")
RESOLVED = (*SERVICES, "sts", "sso", "sso-oidc", "ssm", "secretsmanager", "xray")
"""The functions' services, those the credential providers call, and those Powertools utilities may."""


def test_the_shipped_file_is_what_the_installed_botocore_gives() -> None:
    shipped = (BOTOCORE_DATA / ENDPOINTS).read_text()
    assert shipped == render(trimmed(botocore_endpoints())), "stale: run make botocore-data"


def test_it_keeps_every_partition_and_only_the_functions_services() -> None:
    full, cut = botocore_endpoints(), trimmed(botocore_endpoints())
    assert [p["partition"] for p in cut["partitions"]] == [p["partition"] for p in full["partitions"]]
    assert {name for p in cut["partitions"] for name in p["services"]} == set(SERVICES)
    assert all(p["regions"] == q["regions"] for p, q in zip(cut["partitions"], full["partitions"], strict=True))


def _resolved(service: str, region: str, data_path: str | None) -> tuple[object, ...]:
    session = botocore.session.get_session()
    if data_path:
        session.set_config_variable("data_path", data_path)
    session.set_credentials("key", "secret")
    client = session.create_client(service, region_name=region)
    signer = client._request_signer
    return (client.meta.endpoint_url, client.meta.region_name, signer.signing_name, signer.region_name)


@pytest.mark.parametrize("service", RESOLVED)
def test_each_service_resolves_to_the_endpoint_and_signing_botocores_own_data_gives(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_DATA_PATH", "AWS_ENDPOINT_URL", f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"):
        monkeypatch.delenv(name, raising=False)
    for region in REGIONS:
        assert _resolved(service, region, str(BOTOCORE_DATA)) == _resolved(service, region, None), region


def test_the_functions_session_reads_the_trimmed_file_first_and_a_callers_data_path_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DATA_PATH", "/opt/models")
    aws.aws_session.cache_clear()  # type: ignore[attr-defined]
    try:
        paths = aws.aws_session().get_component("data_loader").search_paths
    finally:
        aws.aws_session.cache_clear()  # type: ignore[attr-defined]
    assert paths[:2] == ["/opt/models", str(BOTOCORE_DATA)]


LOADED = (*RESOLVED, "s3", "lambda")
TYPES = ("service-2", "endpoint-rule-set-1", "paginators-1", "waiters-2")


def _load(loader: Loader, service: str, type_name: str, api_version: str | None = None) -> object:
    try:
        return loader.load_service_model(service, type_name, api_version)
    except (UnknownServiceError, DataNotFoundError) as exc:
        return (type(exc), str(exc))


@pytest.mark.parametrize("type_name", TYPES)
def test_the_service_loader_loads_what_botocores_loader_loads_and_fails_as_it_fails(type_name: str) -> None:
    paths = [str(BOTOCORE_DATA)]
    ours, theirs = aws.ServiceLoader(extra_search_paths=list(paths)), Loader(extra_search_paths=list(paths))
    for service in (*LOADED, "no-such-service", "../data/dynamodb", ".", ""):
        assert _load(ours, service, type_name) == _load(theirs, service, type_name), service
    version = theirs.determine_latest_version("dynamodb", "service-2")
    assert _load(ours, "dynamodb", type_name, version) == _load(theirs, "dynamodb", type_name, version)
    assert _load(ours, "dynamodb", type_name, "1999-01-01") == _load(theirs, "dynamodb", type_name, "1999-01-01")


def test_the_service_loader_finds_a_service_without_listing_them_all(monkeypatch: pytest.MonkeyPatch) -> None:
    listed: list[str] = []
    monkeypatch.setattr(Loader, "list_available_services", lambda self, type_name: listed.append(type_name) or [])
    model = aws.ServiceLoader().load_service_model("sqs", "service-2")
    assert model["metadata"]["endpointPrefix"] == "sqs"
    assert listed == []
    with pytest.raises(UnknownServiceError):
        aws.ServiceLoader().load_service_model("no-such-service", "service-2")
    assert listed == ["service-2"]


def test_the_functions_session_makes_its_clients_through_the_service_loader() -> None:
    aws.aws_session.cache_clear()  # type: ignore[attr-defined]
    try:
        loader = aws.aws_session().get_component("data_loader")
    finally:
        aws.aws_session.cache_clear()  # type: ignore[attr-defined]
    assert isinstance(loader, aws.ServiceLoader)


def _model_folder(root: Path, service: str) -> None:
    folder = root / service / "2020-01-01"
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps({"metadata": {"endpointPrefix": service}, "operations": {}}))


def test_once_botocores_list_is_made_it_decides_as_in_botocore(tmp_path: Path) -> None:
    outcomes = []
    for loader_class in (Loader, aws.ServiceLoader):
        root = tmp_path / loader_class.__name__
        root.mkdir()
        loader = loader_class(extra_search_paths=[str(root)])
        assert "not-yet" not in loader.list_available_services("service-2")  # botocore keeps this list
        _model_folder(root, "not-yet")
        outcomes.append(_load(loader, "not-yet", "service-2"))
        _model_folder(root, "fresh")
        outcomes.append(_load(loader_class(extra_search_paths=[str(root)]), "fresh", "service-2"))
    assert outcomes[:2] == outcomes[2:]
    assert outcomes[0][0] is UnknownServiceError
    assert outcomes[1] == {"metadata": {"endpointPrefix": "fresh"}, "operations": {}}


def test_a_name_that_is_not_a_string_fails_as_in_botocore() -> None:
    assert _load(aws.ServiceLoader(), b"sqs", "service-2") == _load(Loader(), b"sqs", "service-2")  # type: ignore[arg-type]
