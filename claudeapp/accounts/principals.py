"""Who is paying and being limited: a browser user or a partner key.

Billing, limits and routing take a Principal rather than a model instance, so
they never import the API package that owns partner keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PrincipalKind = Literal["user", "partner_key"]


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    id: int
    user_id: int  # the person: the user themself, or the partner key's owner
    group_ids: frozenset[int] = field(default_factory=frozenset)

    @property
    def key(self) -> str:
        """Stable string for Redis keys and logs, e.g. 'user:12' or 'partner_key:3'."""
        return f"{self.kind}:{self.id}"

    @classmethod
    def for_user(cls, user) -> Principal:  # type: ignore[no-untyped-def]
        return cls(
            kind="user", id=user.pk, user_id=user.pk, group_ids=frozenset(user.groups.values_list("pk", flat=True))
        )
