"""The local runtime's authorizers: SigV4 as API Gateway's AWS_IAM checks it, JWT as its JWT authorizer does."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from cryptography.hazmat.primitives.asymmetric import rsa

from jobq_local.auth import JwtAuthorizer, NoAuthorizer, Rejection, Request, SigV4Authorizer

URL = "http://127.0.0.1:3000"


def signed(
    method: str,
    target: str,
    body: bytes | None = None,
    *,
    key: str = "alice",
    secret: str = "test",
    region: str = "us-east-1",
    service: str = "execute-api",
    headers: Mapping[str, str] | None = None,
) -> Request:
    """A request as botocore (boto3, the AWS CLI, jobq's client) signs it, as the server then receives it."""
    request = AWSRequest(method=method, url=URL + target, data=body, headers=dict(headers or {}))
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    parts = urlsplit(request.url)
    sent = dict(request.headers.items()) | {"Host": parts.netloc}  # what the HTTP client adds on the wire
    return Request(method, parts.path, parts.query, sent, body or b"")


@pytest.fixture
def iam() -> SigV4Authorizer:
    return SigV4Authorizer("us-east-1")


def test_a_botocore_signed_request_is_accepted_as_its_access_key(iam: SigV4Authorizer) -> None:
    context = iam.authorize(signed("POST", "/jobs", b'{"type": "echo"}', headers={"content-type": "application/json"}))
    assert context == {
        "iam": {
            "accessKey": "alice",
            "accountId": "000000000000",
            "callerId": "alice",
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": "arn:aws:iam::000000000000:user/alice",
            "userId": "alice",
        }
    }


@pytest.mark.parametrize(
    "target",
    [
        "/jobs",
        "/jobs/01M87J43QC4P2YKGJWR31JY4HJ",
        "/jobs?limit=5&status=failed",
        "/jobs?owner=arn%3Aaws%3Aiam%3A%3A000000000000%3Auser%2Fbob&cursor=eyJ2IjogMX0",
        "/jobs?b=2&a=1&a=0",
        "/jobs?empty=&x=%20y",
    ],
)
def test_paths_and_query_strings_verify(iam: SigV4Authorizer, target: str) -> None:
    assert not isinstance(iam.authorize(signed("GET", target)), Rejection)


def _tampered(request: Request, **changes: Any) -> Request:
    fields = {
        "method": request.method,
        "raw_path": request.raw_path,
        "raw_query": request.raw_query,
        "headers": request.headers,
        "body": request.body,
    }
    return Request(**(fields | changes))


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("wrong secret", lambda: signed("GET", "/jobs", secret="wrong")),
        ("other region", lambda: signed("GET", "/jobs", region="eu-west-1")),
        ("other service", lambda: signed("GET", "/jobs", service="sqs")),
        ("body changed", lambda: _tampered(signed("POST", "/jobs", b'{"a": 1}'), body=b'{"a": 2}')),
        ("path changed", lambda: _tampered(signed("GET", "/jobs/A"), raw_path="/jobs/B")),
        ("query changed", lambda: _tampered(signed("GET", "/jobs?limit=5"), raw_query="limit=6")),
        ("method changed", lambda: _tampered(signed("GET", "/jobs"), method="POST")),
        ("unsigned", lambda: Request("GET", "/jobs", "", {"host": "127.0.0.1:3000"}, b"")),
        (
            "no date",
            lambda: _tampered(
                (r := signed("GET", "/jobs")), headers={k: v for k, v in r.headers.items() if k != "X-Amz-Date"}
            ),
        ),
        (
            "garbled header",
            lambda: _tampered(signed("GET", "/jobs"), headers={"Authorization": "AWS4-HMAC-SHA256 nonsense"}),
        ),
    ],
)
def test_badly_signed_requests_get_api_gateways_403(iam: SigV4Authorizer, name: str, make: Any) -> None:
    assert iam.authorize(make()) == Rejection(403, b'{"message":"Forbidden"}')


@pytest.mark.parametrize("offset", [-360, 360])
def test_a_signature_more_than_five_minutes_off_the_clock_is_refused(offset: int) -> None:
    late = SigV4Authorizer("us-east-1", clock=lambda: time.time() + offset)
    assert late.authorize(signed("GET", "/jobs")) == Rejection(403, b'{"message":"Forbidden"}')
    assert not isinstance(
        SigV4Authorizer("us-east-1", clock=lambda: time.time() + 200).authorize(signed("GET", "/jobs")), Rejection
    )


def test_a_signed_content_hash_must_match_the_body(iam: SigV4Authorizer) -> None:
    request = signed("POST", "/jobs", b"{}", headers={"x-amz-content-sha256": "0" * 64})
    assert isinstance(iam.authorize(request), Rejection)


def test_only_the_local_secret_is_accepted_by_default(iam: SigV4Authorizer) -> None:
    assert not isinstance(iam.authorize(signed("GET", "/jobs", key="any-key-id")), Rejection)
    picky = SigV4Authorizer("us-east-1", secret_for=lambda key: None)
    assert isinstance(picky.authorize(signed("GET", "/jobs")), Rejection)


def test_without_auth_every_request_is_the_anonymous_caller() -> None:
    context = NoAuthorizer().authorize(Request("GET", "/jobs", "", {}, b""))
    assert not isinstance(context, Rejection)
    assert context["iam"]["userArn"] == "arn:aws:iam::000000000000:user/anonymous"


# -- JWT ----------------------------------------------------------------------------------------------

ISSUER = "https://issuer.example/pool"


@pytest.fixture(scope="module")
def keys() -> tuple[Any, Any, dict[str, Any]]:
    good = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(good.public_key()))
    return good, other, {"keys": [public | {"kid": "k1", "alg": "RS256", "use": "sig"}]}


def token(private: Any, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": "user-1", "aud": "jobq", "iat": now, "exp": now + 300} | claims
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None}, private, algorithm="RS256", headers={"kid": kid}
    )


def bearer(value: str) -> Request:
    return Request("GET", "/jobs", "", {"Authorization": f"Bearer {value}"}, b"")


def test_a_valid_token_passes_with_its_claims_as_strings(keys: tuple[Any, Any, dict[str, Any]]) -> None:
    good, _, jwks = keys
    authorizer = JwtAuthorizer(ISSUER, ["jobq"], jwks)
    context = authorizer.authorize(bearer(token(good, scope="jobs/read jobs/write")))
    assert not isinstance(context, Rejection)
    claims = context["jwt"]["claims"]
    assert (claims["iss"], claims["sub"], claims["aud"]) == (ISSUER, "user-1", "jobq")
    assert all(isinstance(value, str) for value in claims.values())
    assert context["jwt"]["scopes"] == ["jobs/read", "jobs/write"]


def test_client_id_stands_for_aud(keys: tuple[Any, Any, dict[str, Any]]) -> None:
    good, _, jwks = keys
    assert not isinstance(
        JwtAuthorizer(ISSUER, ["jobq"], jwks).authorize(bearer(token(good, aud=None, client_id="jobq"))), Rejection
    )


@pytest.mark.parametrize(
    ("name", "claims", "signer", "kid"),
    [
        ("expired", {"exp": int(time.time()) - 60}, "good", "k1"),
        ("other audience", {"aud": "someone-else"}, "good", "k1"),
        ("other issuer", {"iss": "https://evil.example"}, "good", "k1"),
        ("no subject", {"sub": None}, "good", "k1"),
        ("unknown key id", {}, "good", "k2"),
        ("signed by another key", {}, "other", "k1"),
        ("not yet valid", {"nbf": int(time.time()) + 600}, "good", "k1"),
    ],
)
def test_bad_tokens_get_api_gateways_401(
    keys: tuple[Any, Any, dict[str, Any]], name: str, claims: dict[str, Any], signer: str, kid: str
) -> None:
    good, other, jwks = keys
    value = token(good if signer == "good" else other, kid=kid, **claims)
    assert JwtAuthorizer(ISSUER, ["jobq"], jwks).authorize(bearer(value)) == Rejection(
        401, b'{"message":"Unauthorized"}'
    )


@pytest.mark.parametrize("header", [{}, {"Authorization": "Bearer "}, {"Authorization": "Bearer not.a.jwt"}])
def test_requests_without_a_usable_token_get_401(keys: tuple[Any, Any, dict[str, Any]], header: dict[str, str]) -> None:
    _, _, jwks = keys
    assert isinstance(
        JwtAuthorizer(ISSUER, ["jobq"], jwks).authorize(Request("GET", "/jobs", "", header, b"")), Rejection
    )
