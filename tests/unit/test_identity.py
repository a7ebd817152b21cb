"""Who calls: the principal read from API Gateway's authorizer context, from real-shaped HTTP API events.

``infra/events/http-api-proxy-iam.json`` and ``-jwt.json`` are the SAM CLI's http-api-proxy sample with the
authorizer context API Gateway documents for payload format 2.0 (AWS_IAM: ``authorizer.iam``; JWT:
``authorizer.jwt.claims``, every claim a string).
"""

from __future__ import annotations

from typing import Any

import pytest

from jobq.domain.identity import Caller
from jobq.handlers.identity import caller_of, principal_from_authorizer, role_of_session
from jobq_local.events import sample

ROLE = "arn:aws:iam::111122223333:role/Deployer"
JWT_PRINCIPAL = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example#7c3a1f2e-5d6b-4e8f-9a0b-1c2d3e4f5a6b"


def test_an_iam_caller_on_an_assumed_role_is_its_role() -> None:
    event = sample("http-api-proxy-iam.json")
    assert caller_of(event, frozenset()) == Caller(ROLE, is_admin=False)
    assert caller_of(event, frozenset({ROLE})) == Caller(ROLE, is_admin=True)


def test_a_jwt_caller_is_its_issuer_and_subject() -> None:
    event = sample("http-api-proxy-jwt.json")
    assert caller_of(event, frozenset()) == Caller(JWT_PRINCIPAL)
    assert caller_of(event, frozenset({JWT_PRINCIPAL})) == Caller(JWT_PRINCIPAL, is_admin=True)


def test_the_sam_sample_without_iss_and_sub_names_no_caller() -> None:
    assert caller_of(sample("http-api-proxy.json"), frozenset()) is None  # claims claim1/claim2 only


@pytest.mark.parametrize(
    ("arn", "principal"),
    [
        ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice"),
        ("arn:aws:iam::123456789012:user/team/alice", "arn:aws:iam::123456789012:user/team/alice"),
        ("arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"),
        ("arn:aws:sts::123456789012:assumed-role/Worker/i-0abc", "arn:aws:iam::123456789012:role/Worker"),
        ("arn:aws-cn:sts::123456789012:assumed-role/Ops/bob", "arn:aws-cn:iam::123456789012:role/Ops"),
        ("arn:aws-us-gov:sts::123456789012:assumed-role/Ops/b", "arn:aws-us-gov:iam::123456789012:role/Ops"),
        ("arn:aws:sts::123456789012:federated-user/carol", "arn:aws:sts::123456789012:federated-user/carol"),
    ],
)
def test_principals_of_iam_callers(arn: str, principal: str) -> None:
    assert role_of_session(arn) == principal
    assert principal_from_authorizer({"iam": {"userArn": arn}}) == principal


@pytest.mark.parametrize(
    "authorizer",
    [
        None,
        {},
        "not a mapping",
        {"iam": {"userArn": ""}},
        {"iam": {}},
        {"jwt": {"claims": {"sub": "only-subject"}}},
        {"jwt": {"claims": {"iss": "https://issuer", "sub": ""}}},
        {"jwt": {"claims": None}},
        {"lambda": {"principal": "x"}},
    ],
)
def test_no_principal_without_a_usable_authorizer_context(authorizer: Any) -> None:
    assert principal_from_authorizer(authorizer) is None


def test_a_caller_sees_its_own_jobs_and_an_admin_every_job() -> None:
    assert Caller("a").may_see("a")
    assert not Caller("a").may_see("b")
    assert Caller("a", is_admin=True).may_see("b")
