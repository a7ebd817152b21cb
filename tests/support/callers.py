"""The callers tests act as: principals the way the API sees them, and the caller objects the domain takes."""

from __future__ import annotations

from jobq.domain.identity import Caller

ALICE = "arn:aws:iam::000000000000:user/alice"
BOB = "arn:aws:iam::000000000000:user/bob"
ADMIN = "arn:aws:iam::000000000000:user/admin"

CALLER = Caller(ALICE)
OTHER = Caller(BOB)
OPERATOR = Caller(ADMIN, is_admin=True)
