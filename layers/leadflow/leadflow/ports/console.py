"""The console (services/audit, transport/console): the audit log, and the verifier of signed-in
people's tokens."""

from __future__ import annotations

from typing import Any, Protocol


class AuditLog(Protocol):
    def record(self, entry: dict[str, Any]) -> None: ...

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest changes first."""
        ...


class TokenVerifier(Protocol):
    def claims(self, token: str) -> dict[str, Any]:
        """A verified ID token's claims. Raises an exception of the adapter's for any other token."""
        ...
