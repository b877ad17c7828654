"""boto3 clients with leadflow's timeouts and retry policy, created on first use."""

from __future__ import annotations

from typing import Any

from botocore.config import Config

# Standard retry mode backs off on throttling; short timeouts keep a public request from
# hanging on a slow dependency (the caller falls back to the intake queue instead).
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
)


def client(service: str) -> Any:
    """A boto3 client; boto3 itself is imported on first use to keep cold starts short."""
    import boto3

    return boto3.client(service, config=CLIENT_CONFIG)  # type: ignore[call-overload]
