"""Who calls: the principal the authorizer vouched for, and whether it is an operator (admin)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    """An authenticated caller. It sees and acts on the jobs it owns; an admin on every job."""

    principal: str
    is_admin: bool = False

    def may_see(self, owner: str) -> bool:
        """Whether a job owned by ``owner`` exists for this caller."""
        return self.is_admin or owner == self.principal
