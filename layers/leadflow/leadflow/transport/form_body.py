"""Decoding a form post's body: urlencoded, multipart or JSON, into lists of strings."""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from typing import Any
from urllib.parse import parse_qs

from leadflow.domain.errors import MalformedBody, PayloadTooLarge, UnsupportedContentType

MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 200


def raw_body(event: dict[str, Any]) -> bytes:
    """The request body as bytes (API Gateway base64-encodes non-text bodies)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedBody("body is not valid base64") from None
    return body.encode("utf-8", errors="surrogatepass")


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    main, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), params


def _text(data: bytes, charset: str) -> str:
    try:
        return data.decode(charset if charset.lower() in ("utf-8", "utf8", "us-ascii", "ascii") else "utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("body is not valid UTF-8") from None


def _scalar(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise MalformedBody(f"field '{name}' is not a finite number")
        return str(value)
    if isinstance(value, str):
        return value
    raise MalformedBody(f"field '{name}' must be text, a number, a boolean or a list of those")


def _json_fields(data: bytes, charset: str) -> dict[str, list[str]]:
    try:
        document = json.loads(_text(data, charset))
    except (ValueError, RecursionError):  # JSONDecodeError, and integers past Python's digit limit
        raise MalformedBody("body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedBody("JSON body must be an object of field names to values")
    if len(document) > MAX_FIELDS:
        raise MalformedBody(f"more than {MAX_FIELDS} fields")
    fields: dict[str, list[str]] = {}
    for name, value in document.items():
        values = value if isinstance(value, list) else [value]
        fields[name] = [_scalar(name, v) for v in values[:MAX_FIELDS]]
    return fields


def _urlencoded_fields(data: bytes, charset: str) -> dict[str, list[str]]:
    text = _text(data, charset)
    try:
        return parse_qs(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise MalformedBody("a field is not valid percent-encoded UTF-8") from None
    except ValueError:
        raise MalformedBody(f"more than {MAX_FIELDS} fields") from None


def _multipart_fields(data: bytes, content_type: str, params: dict[str, str]) -> dict[str, list[str]]:
    from python_multipart import parse_form
    from python_multipart.exceptions import FormParserError

    if not params.get("boundary"):
        raise MalformedBody("multipart body without a boundary")
    fields: dict[str, list[str]] = {}
    problems: list[str] = []

    def on_field(field: Any) -> None:
        if len(fields) >= MAX_FIELDS:
            problems.append(f"more than {MAX_FIELDS} fields")
            return
        name = (field.field_name or b"").decode("utf-8", errors="replace")
        try:
            value = (field.value or b"").decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"field '{name}' is not valid UTF-8")
            return
        fields.setdefault(name, []).append(value)

    def on_file(file: Any) -> None:  # leadflow forms take no uploads: file parts are dropped
        file.close()

    headers = {
        "Content-Type": content_type.encode("latin-1", errors="replace"),
        "Content-Length": str(len(data)).encode(),
    }
    try:
        parse_form(headers, io.BytesIO(data), on_field, on_file)
    except (FormParserError, ValueError, UnicodeDecodeError) as error:
        raise MalformedBody(f"multipart body could not be parsed: {type(error).__name__}") from None
    if problems:
        raise MalformedBody(problems[0])
    return fields


def decode_fields(event: dict[str, Any], headers: dict[str, str]) -> tuple[dict[str, list[str]], str]:
    """The posted fields and the body's media type.

    Raises:
        PayloadTooLarge: body over 64 KB.
        UnsupportedContentType: not urlencoded, multipart or JSON.
        MalformedBody: the body does not decode as its content type says.
    """
    data = raw_body(event)
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body is over {MAX_BODY_BYTES} bytes")
    content_type = headers.get("content-type", "")
    media_type, params = _media_type(content_type)
    charset = params.get("charset", "utf-8")
    if media_type == "application/x-www-form-urlencoded":
        return _urlencoded_fields(data, charset), media_type
    if media_type == "multipart/form-data":
        return _multipart_fields(data, content_type, params), media_type
    if media_type == "application/json" or media_type.endswith("+json"):
        return _json_fields(data, charset), "application/json"
    raise UnsupportedContentType(media_type or "(none)")
