"""The suppression list as people see it in the console: pages of entries, an address looked up,
added or lifted.

The list holds the keyed hash of each address (``domain.gdpr.address_hash``), never the address:
an erased person stays unmailable without being kept. So a page of entries shows each entry's
hash (shortened), reason and time, and an address is found by typing it whole (its hash is looked
up). Lifting an entry takes effect for each sender within its next full read of the list (a
sender's instance reads the whole list once, then only what was listed since): until then an
instance may still skip the address, never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from leadflow.domain.emails import normalize_email
from leadflow.ports.clock import Clock

MANUAL = "manual"
"""The reason of an entry a person added (the console)."""


class SuppressionStore(Protocol):
    def suppression_items(self, address_keys: Iterable[str]) -> list[dict[str, Any]]: ...

    def suppress(self, address_key: str, reason: str, at: str) -> None: ...

    def suppression_page(self, limit: int, after: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Entries newest listed first (``key``, ``reason``, ``at``, ``listed_at``), and the next page's cursor."""
        ...

    def lift(self, address_key: str) -> dict[str, Any] | None:
        """Delete the entry; the entry deleted, or None when there was none."""
        ...


class SuppressionService:
    def __init__(self, store: SuppressionStore, address_key: Callable[[str], str], clock: Clock) -> None:
        self.store, self.address_key, self.clock = store, address_key, clock

    def page(self, limit: int = 50, after: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
        """A page of entries, newest listed first, and the cursor of the next (None: the last page)."""
        return self.store.suppression_page(limit, after)

    def key_of(self, address: str) -> str:
        """The list's key of an address as typed. Raises ``InvalidEmail``."""
        return self.address_key(normalize_email(address).key)

    def entry(self, address_key: str) -> dict[str, Any] | None:
        """The entry of a key (``key``, ``reason``, ``at``), or None: not suppressed."""
        found = self.store.suppression_items([address_key])
        if not found:
            return None
        item = found[0]
        return {"key": address_key, "reason": item.get("reason"), "at": item.get("at")}

    def add(self, address_key: str, reason: str = MANUAL) -> bool:
        """List a key; False when it was listed already (its first reason and time are kept)."""
        if self.entry(address_key) is not None:
            return False
        self.store.suppress(address_key, reason, self.clock.now().isoformat())
        return True

    def lift(self, address_key: str) -> dict[str, Any] | None:
        """Take a key off the list: the entry lifted, or None when it was not listed."""
        return self.store.lift(address_key)
