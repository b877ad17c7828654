"""Property tests of the large import's chunk parser (``domain.import_chunks``): a file cut into
chunks and each chunk parsed on its own gives exactly the records, row numbers and rejections one
reader of the whole file gives, whatever the file holds (quoted newlines, CR, LF and CRLF, a BOM,
stray quotes, wrong cell counts, blank lines, bytes that are not UTF-8, naughty strings), and the
chunks tile the file with no byte read twice or missed.

Strings: /work/shared/external/suites/blns.json (minimaxir/big-list-of-naughty-strings @db33ec7b).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadflow.domain.import_chunks import Chunk, chunk_records, manifest, split
from leadflow.domain.imports import csv_records, ndjson_records
from tests.conftest import external, load_json

pytestmark = pytest.mark.unit


@cache
def naughty() -> list[str]:
    return [s for s in load_json(external("suites/blns.json")) if isinstance(s, str)]


def whole(data: bytes, ndjson: bool) -> list[Any]:
    """The records one reader of the whole file gives (as the command line reads a file)."""
    text = io.StringIO(data.decode("utf-8-sig", "replace"), newline="")
    return list(ndjson_records(text)) if ndjson else list(csv_records(text))[1:]


def pieces(data: bytes, ndjson: bool, rows: int, max_bytes: int) -> tuple[list[Chunk], list[Any]]:
    found, chunks = split(io.BytesIO(data), ndjson, rows=rows, max_bytes=max_bytes)
    cut = list(chunks)
    records = [r for c in cut for r in chunk_records(data[c.start : c.end], c, found.header, ndjson)]
    return cut, records


def tiled(data: bytes, cut: list[Chunk], ndjson: bool) -> None:
    """The chunks follow one another to the end of the file, numbered in order."""
    for before, after in itertools.pairwise(cut):
        assert before.end == after.start and before.first_row + before.rows == after.first_row
    if cut:
        assert cut[-1].end == len(data)
        assert cut[0].first_row == (1 if ndjson else 2)


cell = st.one_of(
    st.text(alphabet=st.sampled_from('ab,"\r\n é\x00;'), max_size=12),
    st.sampled_from(["", '"', '""', 'a"b', '"a,b"', "x\r\ny", "\ufeff"]),
    st.builds(lambda i: naughty()[i % len(naughty())], st.integers(min_value=0)),
)
line_end = st.sampled_from(["\r\n", "\n", "\r"])


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    columns = draw(st.integers(min_value=1, max_value=4))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(line_end))
    writer.writerow([f"c{i}" for i in range(columns)])
    for _ in range(draw(st.integers(min_value=0, max_value=12))):
        if draw(st.booleans()):
            writer.writerow(draw(st.lists(cell, min_size=0, max_size=columns + 2)))
        else:  # written by hand: unbalanced quotes, blank lines, cells as they come
            out.write(",".join(draw(st.lists(cell, max_size=columns + 1))) + draw(line_end))
    data = out.getvalue().encode("utf-8", "surrogatepass")
    prefix = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    junk = draw(st.sampled_from([b"", b"\xff\xfe", b"a,\xc3"]))
    return prefix + data + junk


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_files(), rows=st.integers(min_value=1, max_value=5), max_bytes=st.integers(min_value=1, max_value=200))
@example(data=b'email,name\r\na@x.org,"multi\r\nline"\r\n\r\nb@x.org,B,extra\r\n', rows=1, max_bytes=1000)
@example(data=b"\xef\xbb\xbfemail\r\n", rows=1, max_bytes=1)
@example(data=b"", rows=1, max_bytes=1)
def test_chunks_of_a_csv_parse_as_the_whole_file_does(data: bytes, rows: int, max_bytes: int) -> None:
    cut, records = pieces(data, False, rows, max_bytes)
    assert records == whole(data, False)
    tiled(data, cut, False)
    assert all(c.rows <= rows for c in cut)


endpoint = st.one_of(
    st.builds(
        lambda address, name, opt: json.dumps(
            {"ChannelType": "EMAIL", "Address": address, "OptOut": opt, "User": {"UserAttributes": {"n": [name]}}}
        ),
        st.text(max_size=20),
        st.text(max_size=10),
        st.sampled_from(["ALL", "NONE"]),
    ),
    st.text(alphabet=st.sampled_from('{}[]":,ab \t'), max_size=15),
    st.just(""),
)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(endpoint, max_size=10),
    rows=st.integers(min_value=1, max_value=4),
    max_bytes=st.integers(min_value=1, max_value=300),
)
def test_chunks_of_a_pinpoint_export_parse_as_the_whole_file_does(lines: list[str], rows: int, max_bytes: int) -> None:
    data = "\n".join(lines).encode()
    cut, records = pieces(data, True, rows, max_bytes)
    assert records == whole(data, True)
    tiled(data, cut, True)


def test_the_manifest_is_what_the_item_reader_hands_out() -> None:
    chunks = [Chunk(2, 10, 20, 500), Chunk(502, 20, 31, 3)]
    lines = "".join(manifest(chunks))
    items = list(csv.DictReader(io.StringIO(lines)))
    assert [Chunk.from_item(i) for i in items] == chunks
