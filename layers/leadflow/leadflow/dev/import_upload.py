"""``leadflow import FILE`` through the stack's import engine: the file uploaded to the presigned
URL ``POST /api/v1/imports {"upload": true}`` answers, ``POST /api/v1/imports/{id}/start``, then
``GET /api/v1/imports/{id}`` polled with a progress bar until the import is done; the rejected
rows downloaded to ``FILE.rejected.csv``. The same calls against a running ``leadflow dev``
(``--dev URL``) and a deployed stack (``--api URL``, SigV4).

The import's id is the file's digest (``--import-id`` to choose one), so running the same file
again resumes an import that failed or was stopped, and answers one already done as it stands.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

from leadflow.domain.imports import clean_tags

POLL_SECONDS = 1.0
ENGINE_MAPPINGS = frozenset({"auto", "hubspot", "mautic", "mailchimp", "pinpoint"})


class _Counted:
    """A file read by the upload, each block counted on the progress bar."""

    def __init__(self, raw: IO[bytes], step: Any) -> None:
        self.raw, self.step = raw, step

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.step(len(data))
        return data


def _put(url: str, path: Path) -> None:
    from leadflow.dev.cli import Progress

    size = path.stat().st_size
    bar = Progress(size, "bytes uploaded")
    with path.open("rb") as raw:
        # A content type of its own: urllib's default (a form) would be parsed as one by some servers.
        headers = {"Content-Length": str(size), "Content-Type": "application/octet-stream"}
        request = urllib.request.Request(  # noqa: S310 - the presigned URL the stack answered
            url,
            data=_Counted(raw, bar.step),
            method="PUT",
            headers=headers,  # type: ignore[arg-type]
        )
        with urllib.request.urlopen(request, timeout=300) as response:  # noqa: S310  # nosec B310
            response.read()
    bar.close()


def _download(url: str, out: Path) -> None:
    with urllib.request.urlopen(url, timeout=300) as response, out.open("wb") as file:  # noqa: S310  # nosec B310
        for block in iter(lambda: response.read(1 << 20), b""):
            file.write(block)


def _wait(api: Any, import_id: str, seconds: float) -> dict[str, Any]:
    """Poll the import until it is done or failed, with a progress bar of the rows read."""
    from leadflow.dev.cli import Progress

    bar: Progress | None = None
    deadline = time.monotonic() + seconds
    while True:
        status, view = api.call("GET", f"/api/v1/imports/{import_id}")
        if status != 200:
            raise SystemExit(f"leadflow import: GET /api/v1/imports/{import_id} answered {status}: {view}")
        if view.get("rows_total") is not None:
            if bar is None:
                bar = Progress(int(view["rows_total"]), "rows")
            bar.step(int(view["read"]) - bar.done)
        if view["status"] in {"done", "failed"} or time.monotonic() > deadline:
            if bar is not None:
                bar.close()
            return dict(view)
        time.sleep(POLL_SECONDS)


def import_through_engine(args: argparse.Namespace, path: Path, import_id: str) -> int:
    """Upload, start and follow an import on the stack's engine; the summary printed as the
    direct path prints it."""
    from leadflow.dev.enroll_cli import client_for

    api = client_for(args)
    body = {
        "upload": True,
        "import_id": import_id,
        "file_name": path.name[:200],
        "mapping": args.mapping,
        "consent_basis": args.consent_basis,
        "tags": sorted(clean_tags(args.tag or ())),
    }
    status, opened = api.call("POST", "/api/v1/imports", body)
    if status != 201:
        raise SystemExit(f"leadflow import: POST /api/v1/imports answered {status}: {opened.get('message', opened)}")
    if opened.get("upload"):
        _put(opened["upload"]["url"], path)
    if opened["status"] != "done":
        status, started = api.call("POST", f"/api/v1/imports/{import_id}/start")
        if status != 202:
            raise SystemExit(f"leadflow import: the stack refused to start the import ({status}): {started['message']}")
    view = _wait(api, import_id, args.timeout)
    print(
        f"imported {path.name} as {view['format']} (import {import_id}, on the stack's engine): "
        f"read {view['read']:,}, created {view['created']:,}, updated {view['updated']:,}, "
        f"rejected {view['rejected']:,}, skipped {view['skipped']:,}, suppressed {view['suppressed']:,}"
    )
    if not args.consent_basis:
        print("no --consent-basis: every row is imported as not consented", file=sys.stderr)
    for row in view.get("rejected_rows", [])[:20]:
        print(f"  row {row['row']}: {row['reason']}", file=sys.stderr)
    if view.get("rejected_csv"):
        out = Path(args.rejected or f"{path}.rejected.csv")
        _download(view["rejected_csv"], out)
        print(f"{view['rejected']:,} rejected rows written to {out} (fix them and import that file)", file=sys.stderr)
    if view["status"] != "done":
        reason = view.get("error") or "still running"
        print(f"the import is {view['status']} ({reason}): run the same command again to resume it", file=sys.stderr)
        return 1
    return 0
