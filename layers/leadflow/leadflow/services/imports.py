"""Importing contacts: rows of a file checked (``domain.imports``) and written through the capture
transaction, a chunk at a time, resumable.

Each row is one capture of ``origin: import`` with the idempotency key ``import:<id>:<row>``: the
email guard keeps one lead per person, the merge only fills blanks, a row written before an
interruption is found again (not written twice) when the same import runs again. The import's
record counts per chunk and remembers the last finished chunk (``rows_done``), so a resumed run
skips what was counted and counts a row written but not yet counted by its first outcome.
Opt-outs (Pinpoint ``OptOut: ALL``, HubSpot "Unsubscribed from all email", Mailchimp
``UNSUB_TIME``) become a withdrawn consent and a suppression-list entry; a suppressed address
stays suppressed whatever the file says (an import never lifts one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from leadflow.domain.audience import IMPORT, stated_plan
from leadflow.domain.errors import IdempotencyConflict
from leadflow.domain.ids import new_id
from leadflow.domain.imports import ColumnMapping, ImportOptions, ParsedRow, RejectedRow, parse_row
from leadflow.domain.leads import CapturePlan
from leadflow.ports.clock import Clock
from leadflow.ports.leads import StoredCapture

CHUNK = 100
COUNTERS = ("read", "created", "updated", "rejected", "skipped", "suppressed")
Record = tuple[int, dict[str | None, Any]] | RejectedRow


class ImportStore(Protocol):
    def capture(self, plan: CapturePlan, window: None, day: str) -> StoredCapture: ...

    def suppress(self, email_key: str, reason: str, at: str) -> None: ...

    def start_import(self, import_id: str, meta: dict[str, Any], at: Any) -> dict[str, Any]: ...

    def count(
        self, import_id: str, counts: dict[str, int], status: str | None, at: Any, rows_done: int | None = None
    ) -> None: ...

    def reject(self, import_id: str, rows: list[dict[str, Any]], at: Any) -> None: ...

    def import_status(self, import_id: str) -> dict[str, Any] | None: ...

    def chunk_counted(self, import_id: str, first_row: int) -> bool: ...

    def update_import(self, import_id: str, fields: dict[str, Any], at: Any) -> None: ...

    def count_chunk(self, import_id: str, first_row: int, counts: dict[str, int], at: Any) -> bool: ...

    def rejected_rows(self, import_id: str, page: int | None = None) -> Iterator[dict[str, Any]]: ...

    def recent_imports(self, limit: int) -> list[dict[str, Any]]: ...


@dataclass
class ImportResult:
    """What one run did (this run's counts; the import's record holds the totals)."""

    import_id: str
    format: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    rejected: list[RejectedRow] = field(default_factory=list)
    lead_ids: list[str] = field(default_factory=list)
    ignored_columns: tuple[str, ...] = ()


class ImportService:
    def __init__(self, store: ImportStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def status(self, import_id: str, rejected_limit: int = 100) -> dict[str, Any] | None:
        """An import's record (counts, status, progress) and its first rejected rows; None: no such import."""
        record = self.store.import_status(import_id)
        if record is None:
            return None
        rejected: list[dict[str, Any]] = []
        for row in self.store.rejected_rows(import_id, page=rejected_limit):
            if len(rejected) >= rejected_limit:
                break
            rejected.append({"row": int(row["row"]), "reason": str(row["reason"])})
        return _view(import_id, record, rejected)

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest imports (kept 30 days), newest first: each as ``status`` shows it, without rejected rows."""
        return [
            _view(str(record["PK"]).removeprefix("IMPORT#"), record, []) for record in self.store.recent_imports(limit)
        ]

    def rejected(self, import_id: str) -> Iterator[dict[str, Any]]:
        """Every rejected row of an import, in row order: ``row``, ``reason``, ``values`` (column -> value)."""
        yield from self.store.rejected_rows(import_id)

    def run(  # noqa: PLR0917 - the import, its rows, and how to treat them
        self,
        import_id: str,
        records: Iterable[Record],
        mapping: ColumnMapping,
        options: ImportOptions,
        meta: dict[str, Any],
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> ImportResult:
        """Import ``records`` (the header excluded) under ``import_id``; resumes a run of the same id."""
        now = self.clock.now()
        result = ImportResult(import_id, mapping.format, ignored_columns=mapping.ignored)
        done = 0
        if not dry_run:
            stored = self.store.start_import(import_id, {**meta, "format": mapping.format, "rows_done": 0}, now)
            done = int(stored.get("rows_done") or 0)
        for chunk in _chunks(records, CHUNK):
            last = max(r.row if isinstance(r, RejectedRow) else r[0] for r in chunk)
            if last <= done:
                if progress is not None:
                    progress(len(chunk))
                continue  # counted by the interrupted run
            counts = self._chunk(import_id, chunk, mapping, options, dry_run, result)
            for name, value in counts.items():
                result.counts[name] += value
            if not dry_run:
                self.store.count(import_id, counts, None, self.clock.now(), rows_done=last)
            if progress is not None:
                progress(len(chunk))
        if not dry_run:
            self.store.count(import_id, {}, "done", self.clock.now())
        return result

    def run_chunk(
        self, import_id: str, first_row: int, records: Iterable[Record], mapping: ColumnMapping, options: ImportOptions
    ) -> dict[str, int] | None:
        """One chunk of a large import (a Distributed Map worker's share), counted once: a chunk
        already counted is skipped (None), a retried one rewrites nothing (each row's capture is
        idempotent) and its counts are added to the import's only if no earlier try added them."""
        if self.store.chunk_counted(import_id, first_row):
            return None
        result = ImportResult(import_id, mapping.format)
        counts = self._chunk(import_id, list(records), mapping, options, False, result)
        counts["rows_done"] = counts["read"]
        return counts if self.store.count_chunk(import_id, first_row, counts, self.clock.now()) else None

    def _chunk(  # noqa: PLR0917 - one chunk of the run
        self,
        import_id: str,
        chunk: list[Record],
        mapping: ColumnMapping,
        options: ImportOptions,
        dry_run: bool,
        result: ImportResult,
    ) -> dict[str, int]:
        now = self.clock.now()
        counts = dict.fromkeys(COUNTERS, 0)
        rejected: list[RejectedRow] = []
        for record in chunk:
            counts["read"] += 1
            if isinstance(record, RejectedRow):
                rejected.append(record)
                continue
            number, values = record
            if mapping.format == "pinpoint" and str(values.get("ChannelType", "EMAIL")).upper() != "EMAIL":
                counts["skipped"] += 1
                continue
            parsed = parse_row(mapping, number, values, options, now)
            if isinstance(parsed, RejectedRow):
                rejected.append(parsed)
                continue
            if dry_run:
                counts["created"] += 1  # would be written (created or merged)
                continue
            outcome = self._write(import_id, parsed)
            if outcome is None:
                rejected.append(RejectedRow(number, "this row's key was used for other values", {}))
                continue
            counts["created" if outcome.created else "updated"] += 1
            result.lead_ids.append(outcome.lead_id)
            if parsed.opt_out:
                self.store.suppress(parsed.submission.email.key, "import_opt_out", now.isoformat())
                counts["suppressed"] += 1
        counts["rejected"] = len(rejected)
        result.rejected += rejected
        if rejected and not dry_run:
            self.store.reject(
                import_id, [{"row": r.row, "reason": r.reason, "values": r.values} for r in rejected], now
            )
        return counts

    def _write(self, import_id: str, parsed: ParsedRow) -> StoredCapture | None:
        now = self.clock.now()
        ids = (new_id(now), new_id(now), new_id(now), new_id(now))
        plan = stated_plan(
            parsed.submission,
            IMPORT,
            f"import:{import_id}",
            ids,
            f"import:{import_id}:{parsed.row}",
            {"import_id": import_id, "row": parsed.row},
            parsed.tags,
        )
        try:
            return self.store.capture(plan, None, now.date().isoformat())
        except IdempotencyConflict:
            return None


def _view(import_id: str, record: dict[str, Any], rejected: list[dict[str, Any]]) -> dict[str, Any]:
    """An import's record as the API and the console show it."""
    return {
        "import_id": import_id,
        "status": str(record.get("status", "running")),
        "file": str(record.get("file", "")),
        "format": str(record.get("format", "")),
        "rows_done": int(record.get("rows_done") or 0),
        **{name: int(record.get(name) or 0) for name in COUNTERS},
        "rejected_rows": rejected,
        "updated_at": record.get("updated_at"),
        "started_at": str(record.get("GSI2SK", "")).rsplit("#", 1)[0] or None,
    }


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
