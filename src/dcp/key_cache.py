"""API keys seen lately, so a request need not look its key up: key digest → who holds it, for a few seconds.

A holder's entry is forgotten at once, in every cache of this process, when its key, its status or its
pause switch is written through the ORM (attribute events below), and again when that write commits. Another
replica's cache keeps an entry until it expires (``Settings.auth_cache_seconds``): that is how long a revoked
key may still work there (docs/security.md).
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, object_session

from dcp.kit.keys import Role
from dcp.models import Provider, Renter

_CHANGED = "dcp_key_holders_changed"  # Session.info: holders written in the open transaction


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """Who holds a key, as far as authentication needs to know."""

    role: Role
    id: int
    status: str  # a renter's status (active, suspended) or a provider's approval_status
    paused: bool = False  # providers only

    @property
    def actor(self) -> str:
        return f"{self.role.value}:{self.id}"


class KeyCache:
    """Bounded by ``max_entries``; entries that fail no check are simply dropped when it is full."""

    def __init__(
        self, ttl_seconds: float, *, max_entries: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.max_entries, self.clock = ttl_seconds, max_entries, clock
        self._entries: dict[str, tuple[KeyHolder, float]] = {}  # digest -> (holder, expires)
        self._digests: dict[tuple[Role, int], str] = {}
        self._generation = 0
        _caches.add(self)

    def get(self, digest: str) -> KeyHolder | None:
        found = self._entries.get(digest)
        if found is None:
            return None
        holder, expires = found
        if self.clock() >= expires:
            self._drop(digest, holder)
            return None
        return holder

    @property
    def generation(self) -> int:
        """Read before looking a key up; hand it to :meth:`put`."""
        return self._generation

    def put(self, digest: str, holder: KeyHolder, *, generation: int) -> None:
        """Remember ``holder``, unless a holder was forgotten since ``generation`` was read: the row may have
        been read before that change committed."""
        if self.ttl <= 0 or generation != self._generation:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
            self._digests.clear()
        if (old := self._digests.get((holder.role, holder.id))) is not None:
            self._entries.pop(old, None)
        self._entries[digest] = (holder, self.clock() + self.ttl)
        self._digests[(holder.role, holder.id)] = digest

    def forget(self, role: Role, holder_id: int) -> None:
        self._generation += 1
        if (digest := self._digests.pop((role, holder_id), None)) is not None:
            self._entries.pop(digest, None)

    def _drop(self, digest: str, holder: KeyHolder) -> None:
        del self._entries[digest]
        if self._digests.get((holder.role, holder.id)) == digest:
            del self._digests[(holder.role, holder.id)]


_caches: weakref.WeakSet[KeyCache] = weakref.WeakSet()


def forget_everywhere(role: Role, holder_id: int) -> None:
    """Forget a holder in every cache of this process (each app has its own)."""
    for cache in list(_caches):
        cache.forget(role, holder_id)


def _on_change(role: Role) -> Callable[..., None]:
    def changed(target: Any, _value: Any, _old: Any, _initiator: Any) -> None:
        holder_id = target.id
        if holder_id is None:  # not written yet: no key of it can be cached
            return
        forget_everywhere(role, holder_id)
        if (session := object_session(target)) is not None:
            session.info.setdefault(_CHANGED, set()).add((role, holder_id))

    return changed


_WATCHED: list[tuple[Any, Role]] = [
    (Renter.key_digest, Role.renter),
    (Renter.status, Role.renter),
    (Provider.key_digest, Role.provider),
    (Provider.approval_status, Role.provider),
    (Provider.paused, Role.provider),
]
for _attribute, _role in _WATCHED:
    event.listen(_attribute, "set", _on_change(_role))


@event.listens_for(Session, "after_commit")
def _forget_committed(session: Session) -> None:
    # Again at commit: a request that read the old row between the write and the commit may have cached it.
    for role, holder_id in session.info.pop(_CHANGED, ()):
        forget_everywhere(role, holder_id)


@event.listens_for(Session, "after_rollback")
def _drop_changes(session: Session) -> None:
    session.info.pop(_CHANGED, None)
