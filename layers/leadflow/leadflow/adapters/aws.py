"""boto3 clients with leadflow's timeouts and retry policy, created on first use."""

from __future__ import annotations

from typing import Any, ClassVar

from botocore.config import Config

# Standard retry mode backs off on throttling; short timeouts keep a public request from
# hanging on a slow dependency (the caller falls back to the intake queue instead).
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
)
# Per-call CPU, merged over CLIENT_CONFIG (every nurture email is three calls: the mail-log
# claim, SendEmail, the enrollment): botocore's client-side parameter validation is off (each
# service validates the request itself and answers a bad one with a ClientError, which the
# adapters handle), checksums are computed and checked only where an operation requires them,
# and DynamoDB resolves its regional endpoint without looking for an account id (Lambda's
# credentials carry none).
LEAN_CONFIG = Config(
    parameter_validation=False,
    request_checksum_calculation="when_required",
    response_checksum_validation="when_required",
    account_id_endpoint_mode="disabled",
)


def client(service: str, config: Config | None = None) -> Any:
    """A boto3 client (with ``config``, else leadflow's default); boto3 itself is imported on first
    use to keep cold starts short."""
    import boto3

    return boto3.client(service, config=config or CLIENT_CONFIG.merge(LEAN_CONFIG))  # type: ignore[call-overload]


class LazyClient:
    """An adapter's boto3 client, created on first use: never at import (moto must be active
    first, and cold starts stay short); a test may pass its own client instead."""

    SERVICE: ClassVar[str]
    CONFIG: ClassVar[Config | None] = None
    """The client's configuration when it is not leadflow's default (``client``)."""
    _client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client(self.SERVICE, self.CONFIG)
        return self._client

    def prime(self) -> None:
        """Create the client now, not on first use: SnapStart's hook before the snapshot, so that a
        restored environment starts with botocore's service model loaded and the client built.
        Nothing is sent to the service. The credentials botocore resolves meanwhile refresh
        themselves when they expire (under SnapStart, Lambda's container credentials)."""
        _ = self.client
