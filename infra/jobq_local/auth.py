"""What API Gateway does in front of the functions: the AWS_IAM (SigV4) or JWT authorizer of each route.

A request the authorizer accepts gets the context API Gateway puts in ``requestContext.authorizer``; one it
refuses gets API Gateway's own answer (IAM: 403 ``{"message":"Forbidden"}``, JWT: 401
``{"message":"Unauthorized"}``) and never reaches the function.

Local credentials (SPEC section 10): any access key id with the secret access key ``test`` (LocalStack's
convention); the caller is ``arn:aws:iam::000000000000:user/<access key id>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from jobq_local import LOGGER_NAME
from jobq_local.events import iam_authorizer

_log = logging.getLogger(LOGGER_NAME)

LOCAL_SECRET = "test"  # noqa: S105 - LocalStack's convention for emulated credentials, not a secret
LOCAL_ACCOUNT = "000000000000"
MAX_CLOCK_SKEW_SECONDS = 300  # SigV4: a signature more than 5 minutes from the server's clock is refused
_CREDENTIAL = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/\s,]+)/(?P<date>\d{8})/(?P<region>[^/\s,]+)/(?P<service>[^/\s,]+)"
    r"/aws4_request,\s*SignedHeaders=(?P<signed>[a-z0-9;_.-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Rejection:
    """API Gateway's answer to a request its authorizer refused."""

    status: int
    body: bytes

    @classmethod
    def forbidden(cls) -> Rejection:
        return cls(403, b'{"message":"Forbidden"}')

    @classmethod
    def unauthorized(cls) -> Rejection:
        return cls(401, b'{"message":"Unauthorized"}')


@dataclass(frozen=True)
class Request:
    """What an authorizer sees of a request: as it came over the wire."""

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers.items() if key.lower() == wanted), None)


AuthorizerContext = dict[str, Any]


class Authorizer(Protocol):
    """A route authorizer: the context for an accepted request, or the rejection."""

    name: str

    def authorize(self, request: Request) -> AuthorizerContext | Rejection: ...


@dataclass
class SigV4Authorizer:
    """AWS_IAM: the request must carry a valid SigV4 signature for ``execute-api`` in ``region``."""

    region: str
    secret_for: Callable[[str], str | None] = lambda _key: LOCAL_SECRET
    account_id: str = LOCAL_ACCOUNT
    clock: Callable[[], float] = time.time
    name: str = "AWS_IAM"

    def authorize(self, request: Request) -> AuthorizerContext | Rejection:
        access_key = self.verify(request)
        if access_key is None:
            return Rejection.forbidden()
        return iam_authorizer(f"arn:aws:iam::{self.account_id}:user/{access_key}", access_key)

    def verify(self, request: Request) -> str | None:
        """The access key id whose signature the request carries, or None (and why, in the debug log)."""
        match = _CREDENTIAL.match((request.header("authorization") or "").strip())
        if match is None:
            return _refuse("no SigV4 Authorization header")
        if match["service"] != "execute-api" or match["region"] != self.region:
            return _refuse(f"signed for {match['service']} in {match['region']}, not execute-api in {self.region}")
        amz_date = request.header("x-amz-date") or ""
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return _refuse("no valid X-Amz-Date")
        if amz_date[:8] != match["date"] or abs(signed_at.timestamp() - self.clock()) > MAX_CLOCK_SKEW_SECONDS:
            return _refuse("X-Amz-Date is outside the 5 minutes a signature is valid, or not the credential's day")
        signed = match["signed"].split(";")
        if "host" not in signed or any(request.header(name) is None for name in signed):
            return _refuse("a signed header is missing, or Host is not signed")
        body_hash = hashlib.sha256(request.body).hexdigest()
        claimed = request.header("x-amz-content-sha256")
        if claimed is not None and claimed != body_hash:
            return _refuse("x-amz-content-sha256 does not match the body")
        secret = self.secret_for(match["key"])
        if secret is None:
            return _refuse("unknown access key id")
        expected = _signature(request, signed, match, amz_date, body_hash, secret)
        if not hmac.compare_digest(expected, match["signature"]):
            return _refuse("signature does not match")
        return match["key"]


def _refuse(reason: str) -> str | None:
    """Log why a signature was refused (debug level); None, for ``verify`` to return."""
    _log.debug("SigV4 authorizer refused the request: %s", reason)
    return None


def _signature(
    request: Request, signed: Sequence[str], match: re.Match[str], amz_date: str, body_hash: str, secret: str
) -> str:
    """The SigV4 signature of the request, computed as the AWS documentation lays it down."""
    from urllib.parse import quote, unquote

    canonical_uri = quote(request.raw_path or "/", safe="/~")  # API Gateway: each segment encoded once more
    pairs = []
    for part in request.raw_query.split("&") if request.raw_query else []:
        key, _, value = part.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    canonical_query = "&".join(f"{key}={value}" for key, value in sorted(pairs))
    canonical_headers = "".join(f"{name}:{' '.join((request.header(name) or '').split())}\n" for name in signed)
    canonical_request = "\n".join(
        [request.method.upper(), canonical_uri, canonical_query, canonical_headers, ";".join(signed), body_hash]
    )
    scope = f"{match['date']}/{match['region']}/{match['service']}/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    signing_key = f"AWS4{secret}".encode()
    for part in (match["date"], match["region"], match["service"], "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class JwtAuthorizer:
    """JWT: a bearer token signed by a key of ``jwks``, from ``issuer``, for one of ``audiences``, not expired."""

    issuer: str
    audiences: Sequence[str]
    jwks: Mapping[str, Any]
    leeway_seconds: float = 5.0
    name: str = "JWT"
    _keys: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        import jwt

        for key in jwt.PyJWKSet.from_dict(dict(self.jwks)).keys:
            if key.key_id:
                self._keys[key.key_id] = key

    def authorize(self, request: Request) -> AuthorizerContext | Rejection:
        claims = self.verify(request)
        if claims is None:
            return Rejection.unauthorized()
        scopes = str(claims.get("scope", "")).split() or None
        return {"jwt": {"claims": {name: _claim_text(value) for name, value in claims.items()}, "scopes": scopes}}

    def verify(self, request: Request) -> dict[str, Any] | None:
        """The token's claims, or None."""
        import jwt

        raw = (request.header("authorization") or "").strip()
        token = raw[7:].strip() if raw.lower().startswith("bearer ") else raw
        if not token:
            return None
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.get(str(kid))
            if key is None:
                _log.debug("JWT authorizer refused the request: unknown kid %r", kid)
                return None
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=["RS256", "ES256"],
                issuer=self.issuer,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
                leeway=self.leeway_seconds,
            )
        except jwt.PyJWTError as exc:
            _log.debug("JWT authorizer refused the request: %s", exc)
            return None
        # API Gateway accepts a token whose aud, or else client_id, names a configured audience.
        audience = claims.get("aud", claims.get("client_id"))
        given = audience if isinstance(audience, list) else [audience]
        if not set(map(str, given)) & set(self.audiences):
            _log.debug("JWT authorizer refused the request: audience %r", audience)
            return None
        return claims


def _claim_text(value: Any) -> str:
    """API Gateway passes every claim to the function as a string."""
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class NoAuthorizer:
    """``--no-auth``: every request is the anonymous local caller (for demos only)."""

    principal: str = f"arn:aws:iam::{LOCAL_ACCOUNT}:user/anonymous"
    name: str = "NONE"

    def authorize(self, request: Request) -> AuthorizerContext | Rejection:
        return iam_authorizer(self.principal, "anonymous")
