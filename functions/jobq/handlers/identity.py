"""The caller of an API request, from API Gateway's authorizer context (AWS_IAM or JWT)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jobq.domain.identity import Caller

_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/[^/]+$"
)


def role_of_session(arn: str) -> str:
    """An assumed-role session ARN reduced to its role's ARN; any other ARN as it is.

    ``arn:aws:sts::123456789012:assumed-role/Deployer/ci-run-42`` -> ``arn:aws:iam::123456789012:role/Deployer``.
    (A session ARN does not carry the role's path, so neither does the result.)
    """
    match = _ASSUMED_ROLE.match(arn)
    if match is None:
        return arn
    return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"


def principal_from_authorizer(authorizer: Any) -> str | None:
    """The principal an authorizer context vouches for: the IAM caller's ARN, or a JWT's ``iss#sub``."""
    if not isinstance(authorizer, Mapping):
        return None
    iam = authorizer.get("iam")
    if isinstance(iam, Mapping):
        arn = iam.get("userArn")
        if isinstance(arn, str) and arn:
            return role_of_session(arn)
    jwt = authorizer.get("jwt")
    if isinstance(jwt, Mapping):
        claims = jwt.get("claims")
        if isinstance(claims, Mapping):
            issuer, subject = claims.get("iss"), claims.get("sub")
            if isinstance(issuer, str) and issuer and isinstance(subject, str) and subject:
                return f"{issuer}#{subject}"
    return None


def caller_of(event: Mapping[str, Any], admins: frozenset[str]) -> Caller | None:
    """The caller of a payload 2.0 event, or None when no authorizer vouched for one."""
    context = event.get("requestContext")
    principal = principal_from_authorizer(context.get("authorizer") if isinstance(context, Mapping) else None)
    if principal is None:
        return None
    return Caller(principal=principal, is_admin=principal in admins)
