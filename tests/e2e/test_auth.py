"""Authentication and per-caller isolation on the local runtime, over real HTTP (SPEC section 10)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from jobq_local.process import RuntimeProcess
from tests.support.deployment import deployment

pytestmark = pytest.mark.e2e

FORBIDDEN = (403, {"message": "Forbidden"})
UNAUTHORIZED = (401, {"message": "Unauthorized"})
ISSUER = "https://issuer.example/pool"


def arn(key: str) -> str:
    return f"arn:aws:iam::000000000000:user/{key}"


def query_arn(key: str) -> str:
    """An ARN as a query value: percent-encoded, as clients send it and SigV4 canonicalises it."""
    return quote(arn(key), safe="")


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeProcess]:
    with deployment() as process:
        yield process


def submit(runtime: RuntimeProcess, caller: str, **headers: str) -> dict[str, Any]:
    status, body = runtime.request(
        "POST", "/jobs", {"type": "echo", "payload": {"by": caller}}, caller=caller, headers=headers
    )
    assert status in {200, 202}, body
    return dict(body)


@pytest.mark.scenario
def test_unsigned_and_badly_signed_requests_get_api_gateways_403(runtime: RuntimeProcess) -> None:
    assert runtime.request("POST", "/jobs", {"type": "echo"}, caller=None) == FORBIDDEN
    assert runtime.request("GET", "/jobs", caller="alice", secret="not-the-secret") == FORBIDDEN
    job = submit(runtime, "alice")
    assert runtime.request("GET", f"/jobs/{job['job_id']}", caller=None) == FORBIDDEN


def test_the_openapi_document_is_public(runtime: RuntimeProcess) -> None:
    status, body = runtime.request("GET", "/openapi.json", caller=None)
    assert status == 200
    assert body["info"]["title"] == "jobq"


def test_curl_aws_sigv4_is_accepted_and_names_the_owner(runtime: RuntimeProcess) -> None:
    result = subprocess.run(
        [
            "curl", "-s", "--aws-sigv4", "aws:amz:us-east-1:execute-api", "--user", "carol:test",
            "-X", "POST", f"{runtime.api_url}/jobs", "-H", "content-type: application/json",
            "-d", '{"type": "echo", "payload": {"via": "curl"}}',
        ],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    job = json.loads(result.stdout)
    assert job["owner"] == arn("carol")
    listed = subprocess.run(
        ["curl", "-s", "--aws-sigv4", "aws:amz:us-east-1:execute-api", "--user", "carol:test",
         f"{runtime.api_url}/jobs?limit=5&status=queued"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert "items" in json.loads(listed.stdout)


@pytest.mark.scenario
def test_another_callers_job_is_not_found_and_not_listed(runtime: RuntimeProcess) -> None:
    job = submit(runtime, "alice")
    job_id = job["job_id"]
    assert job["owner"] == arn("alice")
    for method, path in [
        ("GET", f"/jobs/{job_id}"),
        ("POST", f"/jobs/{job_id}/cancel"),
        ("POST", f"/jobs/{job_id}/retry"),
    ]:
        status, body = runtime.request(method, path, caller="bob")
        assert status == 404, (method, path, body)
        assert body["error"]["code"] == "job_not_found"
    unknown = runtime.request("GET", "/jobs/01M87J43QC4P2YKGJWR31JY4HJ", caller="bob")
    assert unknown[0] == 404
    assert runtime.request("GET", f"/jobs/{job_id}", caller="bob")[1]["error"]["message"].startswith("no job with id")
    assert runtime.request("GET", "/jobs?limit=100", caller="bob-has-nothing") == (
        200,
        {"items": [], "next_cursor": None},
    )
    owned = runtime.request("GET", "/jobs?limit=100", caller="alice")[1]["items"]
    assert job_id in [item["job_id"] for item in owned]
    assert {item["owner"] for item in owned} == {arn("alice")}
    assert runtime.request("GET", f"/jobs?owner={query_arn('alice')}", caller="bob")[1]["items"] == []


@pytest.mark.scenario
def test_an_admin_sees_and_acts_on_every_job(runtime: RuntimeProcess) -> None:
    alices = submit(runtime, "alice")
    bobs = submit(runtime, "bob")
    assert runtime.request("GET", f"/jobs/{alices['job_id']}", caller="admin")[0] == 200
    everything = [item["job_id"] for item in runtime.request("GET", "/jobs?limit=100", caller="admin")[1]["items"]]
    assert {alices["job_id"], bobs["job_id"]} <= set(everything)
    only_bob = runtime.request("GET", f"/jobs?limit=100&owner={query_arn('bob')}", caller="admin")[1]["items"]
    assert bobs["job_id"] in [item["job_id"] for item in only_bob]
    assert {item["owner"] for item in only_bob} == {arn("bob")}
    assert runtime.request("GET", "/dlq", caller="admin")[0] == 200
    status, body = runtime.request("GET", "/dlq", caller="alice")
    assert (status, body["error"]["code"]) == (403, "forbidden")


@pytest.mark.scenario
def test_an_idempotency_key_belongs_to_its_caller(runtime: RuntimeProcess) -> None:
    first = submit(runtime, "alice", **{"Idempotency-Key": "same-key-1"})
    again = submit(runtime, "alice", **{"Idempotency-Key": "same-key-1"})
    bobs = submit(runtime, "bob", **{"Idempotency-Key": "same-key-1"})
    assert again["job_id"] == first["job_id"]
    assert bobs["job_id"] != first["job_id"]
    assert bobs["owner"] == arn("bob")


def test_without_auth_the_api_is_open_and_says_so_loudly() -> None:
    with RuntimeProcess(extra_args=["--no-auth"]) as process:
        status, body = process.request("POST", "/jobs", {"type": "echo"}, caller=None)
        assert status == 202, body
        assert body["owner"] == arn("anonymous")
        banner = process.log()
    assert "--no-auth: the HTTP API is OPEN" in banner
    assert "OPEN to anyone" in banner


# -- JWT ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signing_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwt_runtime(signing_key: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwks = Path(tmp_path_factory.mktemp("jwks")) / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public | {"kid": "test-key", "alg": "RS256", "use": "sig"}]}))
    parameters = {
        "AuthMode": "jwt",
        "JwtIssuer": ISSUER,
        "JwtAudience": "jobq",
        "AdminPrincipals": f"{ISSUER}#operator",
    }
    with RuntimeProcess(parameters, extra_args=["--jwks", str(jwks)]) as process:
        yield process


def token(key: Any, subject: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "sub": subject, "aud": "jobq", "iat": now, "exp": now + 300} | claims
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "test-key"})


def as_bearer(runtime: RuntimeProcess, method: str, path: str, value: str, body: Any = None) -> tuple[int, Any]:
    return runtime.request(method, path, body, caller=None, headers={"authorization": f"Bearer {value}"})


def test_jwt_mode_accepts_the_issuers_tokens_and_owns_jobs_by_subject(
    jwt_runtime: RuntimeProcess, signing_key: Any
) -> None:
    status, job = as_bearer(jwt_runtime, "POST", "/jobs", token(signing_key, "user-1"), {"type": "echo"})
    assert status == 202, job
    assert job["owner"] == f"{ISSUER}#user-1"
    assert as_bearer(jwt_runtime, "GET", f"/jobs/{job['job_id']}", token(signing_key, "user-2"))[0] == 404
    assert as_bearer(jwt_runtime, "GET", f"/jobs/{job['job_id']}", token(signing_key, "operator"))[0] == 200


@pytest.mark.parametrize(
    "claims",
    [{"exp": int(time.time()) - 120}, {"aud": "another-api"}, {"iss": "https://elsewhere.example"}],
    ids=["expired", "other-audience", "other-issuer"],
)
def test_jwt_mode_refuses_bad_tokens_with_401(
    jwt_runtime: RuntimeProcess, signing_key: Any, claims: dict[str, Any]
) -> None:
    assert as_bearer(jwt_runtime, "GET", "/jobs", token(signing_key, "user-1", **claims)) == UNAUTHORIZED


def test_jwt_mode_refuses_unsigned_and_sigv4_requests_with_401(jwt_runtime: RuntimeProcess) -> None:
    assert jwt_runtime.request("GET", "/jobs", caller=None) == UNAUTHORIZED
    assert jwt_runtime.request("GET", "/jobs", caller="alice") == UNAUTHORIZED


def test_types_are_behind_the_authorizer_and_the_docs_are_public(runtime: RuntimeProcess) -> None:
    assert runtime.request("GET", "/types", caller=None) == FORBIDDEN
    status, body = runtime.request("GET", "/types", caller="alice")
    assert status == 200
    assert {"echo", "sleep", "fail"} <= {item["type"] for item in body["items"]}
    import urllib.request

    with urllib.request.urlopen(runtime.api_url + "/docs", timeout=10) as page:
        assert page.status == 200
        assert b"swagger-ui" in page.read()
