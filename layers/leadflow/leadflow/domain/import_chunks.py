"""A large import cut into chunks: byte ranges of the file, each a whole number of records, that
parallel workers read on their own (``Range`` GETs) and parse exactly as one reader of the whole
file would. Pure: bytes in, chunks and records out.

``split`` reads the file once, as a stream, with the same CSV reader the import uses
(``domain.imports.csv_records``): it sees records where that reader sees them (quoted newlines
kept inside their record, a BOM, CRLF or LF, an unreadable record counted as one row), and ends a
chunk after ``rows`` records or ``max_bytes`` bytes, whichever comes first. A Pinpoint endpoint
export (JSON lines) is cut at line ends. Each chunk knows the spreadsheet number of its first row,
so ``chunk_records`` numbers its records as the whole file's reader would: a rejected row keeps
its number, and a row's idempotency key (``import:<id>:<row>``) is the same in every run.

Bytes are decoded with ``surrogateescape`` while splitting, so a line's length in bytes is known
exactly even when the file is not valid UTF-8; a chunk's own bytes are decoded as the import
decodes a file (invalid bytes replaced).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final

from leadflow.domain.imports import RejectedRow, csv_rows, ndjson_records

CHUNK_ROWS: Final = 500
"""Records a chunk holds (one worker's share: about 5 s of capture transactions in AWS)."""
CHUNK_BYTES: Final = 4 << 20
"""Bytes after which a chunk ends even with fewer records (a record is never cut: one longer than
this is a chunk of its own)."""
MANIFEST_HEADER: Final = ("first_row", "start", "end", "rows")


@dataclass(frozen=True)
class Chunk:
    """Bytes ``[start, end)`` of the file, holding ``rows`` records from row ``first_row`` on."""

    first_row: int
    start: int
    end: int
    rows: int

    def as_row(self) -> list[str]:
        return [str(self.first_row), str(self.start), str(self.end), str(self.rows)]

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Chunk:
        """A manifest line as the Distributed Map's CSV reader hands it over (values as text)."""
        return cls(int(item["first_row"]), int(item["start"]), int(item["end"]), int(item["rows"]))


@dataclass
class Split:
    """What ``split`` found: the header (CSV) and the data rows counted."""

    ndjson: bool
    header: list[str]
    rows: int = 0


class _Lines:
    """The text lines of a binary stream, counting the bytes handed out (``offset``)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._text = io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")  # type: ignore[type-var]
        self.offset = 0

    def __iter__(self) -> Iterator[str]:
        first = True
        for line in self._text:
            self.offset += len(line.encode("utf-8", "surrogateescape"))
            yield line.removeprefix("\ufeff") if first else line
            first = False


def is_ndjson(head: bytes) -> bool:
    """Whether the file's first bytes are a JSON-lines export (its first non-blank byte is ``{``)."""
    return head.lstrip(codecs.BOM_UTF8).lstrip().startswith(b"{")


def split(
    raw: IO[bytes], ndjson: bool, rows: int = CHUNK_ROWS, max_bytes: int = CHUNK_BYTES
) -> tuple[Split, Iterator[Chunk]]:
    """The file's header and its chunks (lazily: the caller consumes them as the stream is read).
    The header is read at once; a CSV without one has no chunks."""
    lines = _Lines(raw)
    found = Split(ndjson, [])
    if ndjson:
        return found, _chunked(iter(lines), lines, found, 1, rows, max_bytes)
    reader = csv.reader(iter(lines), strict=False)
    try:
        found.header = [h.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for h in next(reader)]
    except StopIteration:
        return found, iter(())
    return found, _chunked(_records(reader), lines, found, 2, rows, max_bytes)


def _records(reader: Iterator[list[str]]) -> Iterator[None]:
    """One step per record the reader reads (an unreadable one too: csv_records rejects it as a row)."""
    while True:
        try:
            next(reader)
        except StopIteration:
            return
        except csv.Error:
            pass
        yield None


def _chunked(  # noqa: PLR0917 - the records, where they end, and the two limits
    records: Iterator[Any], lines: _Lines, found: Split, first: int, rows: int, max_bytes: int
) -> Iterator[Chunk]:
    """Chunks of whole records: each ends where the reader stopped after its last record."""
    start, count = lines.offset, 0
    for number, _ in enumerate(records, start=first):
        count += 1
        if count >= rows or lines.offset - start >= max_bytes:
            yield Chunk(number - count + 1, start, lines.offset, count)
            found.rows += count
            start, count = lines.offset, 0
    if count:
        yield Chunk(first + found.rows, start, lines.offset, count)
        found.rows += count


def chunk_records(
    data: bytes, chunk: Chunk, header: list[str], ndjson: bool
) -> Iterator[tuple[int, dict[str | None, Any]] | RejectedRow]:
    """The records of one chunk's bytes, numbered as in the whole file (the header excluded)."""
    text = io.StringIO(data.decode("utf-8", "replace"), newline="")
    if ndjson:
        yield from ndjson_records(text, first=chunk.first_row)
        return
    yield from csv_rows(csv.reader(text, strict=False), header, chunk.first_row - 1)


def manifest(chunks: Iterable[Chunk]) -> Iterator[str]:
    """The chunks as a CSV manifest (a header line, then one line per chunk): what the
    Distributed Map's CSV ItemReader hands, a line each, to its workers."""
    yield ",".join(MANIFEST_HEADER) + "\n"
    for chunk in chunks:
        yield ",".join(chunk.as_row()) + "\n"
