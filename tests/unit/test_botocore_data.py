"""The functions' trimmed botocore endpoints.json: current with botocore, and resolving as botocore's own."""

from __future__ import annotations

import botocore.session
import pytest

from emulators.botocore_data import ENDPOINTS, botocore_endpoints, render, trimmed
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
    from jobq.adapters import aws

    monkeypatch.setenv("AWS_DATA_PATH", "/opt/models")
    aws.aws_session.cache_clear()  # type: ignore[attr-defined]
    try:
        paths = aws.aws_session().get_component("data_loader").search_paths
    finally:
        aws.aws_session.cache_clear()  # type: ignore[attr-defined]
    assert paths[:2] == ["/opt/models", str(BOTOCORE_DATA)]
