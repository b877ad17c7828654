"""Reports: the report writer and the lead facts it counts, the counters the A/B winners read,
and the page-view counter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from leadflow.domain.reporting import Key


class ReportWriter(Protocol):
    def existing(self, keys: list[Key]) -> set[Key]: ...

    def items(self, keys: list[Key]) -> dict[Key, dict[str, Any]]: ...

    def apply(self, markers: list[tuple[Key, dict[str, Any]]], counters: dict[Key, dict[str, int]]) -> None: ...

    def query(self, pk: str, sk_from: str, sk_to: str) -> list[dict[str, Any]]: ...

    def query_many(self, ranges: list[tuple[str, str, str]]) -> list[list[dict[str, Any]]]: ...


class LeadFacts(Protocol):
    def profiles(self, lead_ids: list[str]) -> dict[str, dict[str, Any]]: ...

    def form_stats(self, days: list[str]) -> list[tuple[str, dict[str, Any]]]: ...

    def mail_logs(self, lead_ids: list[str]) -> dict[str, list[dict[str, Any]]]: ...


class CounterReader(Protocol):
    def query(self, pk: str, sk_from: str, sk_to: str) -> list[dict[str, Any]]: ...


class PageViewCounter(Protocol):
    def viewed(self, key: tuple[str, str]) -> None: ...
