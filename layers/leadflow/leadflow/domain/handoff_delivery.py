"""Delivering a hand-off, pure: the URL a destination is sent to, the SSRF rules it must pass,
what a destination's HTTP answer means, and the retry schedule.

No sockets and no clock reads: the adapter passes resolved addresses, the service ``now`` and
random fractions in.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from leadflow.domain.definitions.handoff import Destination, Retry
from leadflow.domain.handoff import DestinationRefused

SQS_MAX_VISIBILITY_SECONDS = 43_200
HUBSPOT_API = "https://api.hubapi.com"


# ---------------------------------------------------------------------------- destination


def effective_url(destination: Destination, local_mode: bool, local_base_url: str) -> tuple[str, bool]:
    """The URL a destination is sent to, and whether private addresses are allowed for it.

    Under ``leadflow dev`` a destination marked ``local_fake_crm`` goes to the dev stack's own
    fake CRM (on loopback, which is allowed for it alone).
    """
    if local_mode and destination.local_fake_crm and local_base_url:
        suffix = {"webhook": "/_dev/crm/hook", "hubspot": "/_dev/crm/hubspot", "salesforce": "/_dev/crm/salesforce"}
        return local_base_url.rstrip("/") + suffix[destination.type], True
    if destination.type == "hubspot":
        return destination.url or HUBSPOT_API, destination.allow_private_network
    return str(destination.url), destination.allow_private_network


def jwt_bearer_claims(client_id: str, username: str, audience: str, now: datetime) -> dict[str, Any]:
    """Claims of a Salesforce OAuth 2.0 JWT bearer assertion: the connected app, the user, 3 minutes."""
    return {"iss": client_id, "sub": username, "aud": audience, "exp": int(now.timestamp()) + 180}


# ---------------------------------------------------------------------------- SSRF


METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str


def parse_target(url: str) -> Target:
    """Scheme, host, port and path of a destination URL.

    Raises:
        DestinationRefused: not an absolute http(s) URL, or it carries credentials.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise DestinationRefused(f"not a valid URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused("only absolute http(s) URLs")
    if parts.username or parts.password:
        raise DestinationRefused("credentials in the URL are not allowed")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path)


def check_address(address: str, allow_private: bool) -> None:
    """Refuse an address a destination may not resolve to.

    Raises:
        DestinationRefused: a metadata address (always), or a private, loopback, link-local,
            reserved, multicast or unspecified one unless ``allow_private``.
    """
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        raise DestinationRefused(f"{address!r} is not an IP address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        raise DestinationRefused(f"{ip} is a cloud metadata address")
    if ip.is_unspecified or ip.is_multicast:
        raise DestinationRefused(f"{ip} is not a unicast address")
    internal = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or not ip.is_global
    if internal and not allow_private:
        raise DestinationRefused(f"{ip} is a private, loopback or link-local address")


def check_destination(url: str, addresses: list[str], local_mode: bool, allow_private: bool) -> Target:
    """The checked target of a delivery: https (http only under ``leadflow dev``), every resolved address allowed.

    Args:
        url: the destination URL.
        addresses: every address the host resolved to (all are checked: the connection
            then goes to the first, never to a fresh lookup).
        local_mode: running under ``leadflow dev`` (plain http allowed).
        allow_private: the destination explicitly allows private addresses.

    Raises:
        DestinationRefused: naming the rule that refused it.
    """
    target = parse_target(url)
    if target.scheme != "https" and not local_mode:
        raise DestinationRefused("only https destinations outside local mode")
    if not addresses:
        raise DestinationRefused(f"{target.host} does not resolve")
    for address in addresses:
        check_address(address, allow_private)
    return target


# ---------------------------------------------------------------------------- answers and retries


OutcomeKind = Literal["delivered", "retry", "final", "disable"]


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to."""

    kind: OutcomeKind
    status_code: int | None = None
    error: str = ""
    retry_after_seconds: float | None = None
    external_id: str | None = None


def retry_after(value: str | None, now: datetime) -> float | None:
    """A ``Retry-After`` header in seconds (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - now).total_seconds(), 0.0)


def classify(status: int, headers: dict[str, str], now: datetime) -> Outcome:
    """A destination's HTTP answer as an outcome.

    2xx delivered; 410 disables the destination; 429 retries after ``Retry-After``; 3xx is a
    failure that is never followed (retried: the endpoint may be fixed); 408, 425 and 5xx
    retry; any other 4xx is final (the request itself is wrong, retrying cannot help).
    """
    if 200 <= status < 300:
        return Outcome("delivered", status)
    if status == 410:
        return Outcome("disable", status, "410 Gone: the destination asked to be disabled")
    if status == 429:
        return Outcome("retry", status, "429 Too Many Requests", retry_after(headers.get("retry-after"), now))
    if 300 <= status < 400:
        return Outcome("retry", status, f"{status} redirect (not followed)")
    if status in (408, 425) or status >= 500:
        return Outcome("retry", status, f"{status} from the destination")
    return Outcome("final", status, f"{status} from the destination")


def backoff_seconds(policy: Retry, attempts: int, random_fraction: float) -> float:
    """Delay after the ``attempts``-th failed attempt: exponential, capped, with "equal jitter".

    Half the nominal delay is fixed and half random, so retries of many hand-offs that
    failed together spread out while no retry comes sooner than half its nominal delay.
    """
    exponent = min(max(attempts - 1, 0), 60)
    nominal = min(policy.initial_seconds * policy.multiplier**exponent, policy.max_delay_seconds)
    return nominal / 2 + nominal / 2 * min(max(random_fraction, 0.0), 1.0)


def next_attempt_at(  # noqa: PLR0917 - each is one input of the schedule
    policy: Retry,
    attempts: int,
    first_attempt_at: datetime,
    now: datetime,
    random_fraction: float,
    retry_after_seconds: float | None = None,
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; None once ``give_up_after_hours`` is reached.

    A ``Retry-After`` wins over the schedule when it asks for longer (never past the give-up time).
    """
    give_up = first_attempt_at + timedelta(hours=policy.give_up_after_hours)
    if now >= give_up:
        return None
    delay = backoff_seconds(policy, attempts, random_fraction)
    if retry_after_seconds is not None:
        delay = max(delay, min(retry_after_seconds, SQS_MAX_VISIBILITY_SECONDS))
    return min(now + timedelta(seconds=delay), give_up)


def schedule(policy: Retry, random_fraction: float = 1.0) -> list[float]:
    """The whole retry schedule (seconds after the first attempt of each retry), for docs and tests."""
    at, attempts, times = 0.0, 0, []
    while True:
        attempts += 1
        at += backoff_seconds(policy, attempts, random_fraction)
        if at >= policy.give_up_after_hours * 3600:
            times.append(policy.give_up_after_hours * 3600)
            return times
        times.append(at)


def visibility_seconds(due: datetime, now: datetime) -> int:
    """SQS visibility timeout that brings a message back at ``due`` (at most 12 hours: longer waits wait again)."""
    return int(min(max(math.ceil((due - now).total_seconds()), 0), SQS_MAX_VISIBILITY_SECONDS))
