"""Decoding a form post's body: urlencoded, multipart or JSON, into lists of strings."""

from __future__ import annotations

import base64
import binascii
import codecs
import io
import json
import math
from typing import Any
from urllib.parse import parse_qs

from leadflow.domain.errors import MalformedBody, PayloadTooLarge, UnsupportedContentType

MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 200
# Charsets a browser may post a form in (the WHATWG Encoding Standard's legacy single- and
# multi-byte encodings), by Python codec name. As in browsers, the Latin-1 labels mean
# windows-1252. Others (UTF-16, UTF-7, Python's own bytes-to-bytes codecs) are refused.
_LATIN1_LABELS = frozenset({"iso-8859-1", "iso8859-1", "iso_8859-1", "latin-1", "latin1", "l1", "cp819", "ibm819"})
_CHARSET_CODECS = frozenset(
    {"utf-8", "ascii", "cp1252", "cp874", "koi8-r", "koi8-u", "shift_jis", "cp932", "euc_jp", "iso2022_jp"}
    | {"euc_kr", "gbk", "gb2312", "gb18030", "big5", "big5hkscs", "mac-roman", "mac-cyrillic", "cp866"}
    | {f"iso8859-{n}" for n in (2, 3, 4, 5, 6, 7, 8, 10, 13, 14, 15, 16)}
    | {f"cp{n}" for n in range(1250, 1259)}
)


def raw_body(event: dict[str, Any]) -> bytes:
    """The request body as bytes (API Gateway base64-encodes non-text bodies)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedBody("body is not valid base64") from None
    return body.encode("utf-8", errors="surrogatepass")


def codec_for(charset: str) -> str:
    """The Python codec that reads a body declared in ``charset``.

    Raises:
        UnsupportedContentType: a charset no browser posts a form in.
    """
    label = charset.strip().strip('"').lower()
    if label in _LATIN1_LABELS:
        return "cp1252"
    try:
        name = codecs.lookup(label).name
    except LookupError:
        raise UnsupportedContentType(f"charset {charset[:40]!r}") from None
    if name not in _CHARSET_CODECS:
        raise UnsupportedContentType(f"charset {charset[:40]!r}")
    return name


def _media_type(content_type: str) -> tuple[str, dict[str, str]]:
    main, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return main.strip().lower(), params


def _decode(data: bytes, codec: str) -> str:
    """``data`` in ``codec``; windows-1252's five unassigned bytes read as Latin-1, as browsers do."""
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        if codec == "cp1252":
            return data.decode("latin-1")
        raise


def _text(data: bytes, codec: str) -> str:
    try:
        return _decode(data, codec)
    except UnicodeDecodeError:
        raise MalformedBody(f"body is not valid {codec.upper()}") from None


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


def _json_fields(text: str) -> dict[str, list[str]]:
    try:
        document = json.loads(text)
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


def _urlencoded_fields(text: str, codec: str) -> dict[str, list[str]]:
    # Percent-escapes stand for bytes in the form's charset, as the browser encoded them.
    try:
        return parse_qs(text, keep_blank_values=True, encoding=codec, errors="strict", max_num_fields=MAX_FIELDS)
    except UnicodeDecodeError:
        raise MalformedBody(f"a field is not valid percent-encoded {codec.upper()}") from None
    except ValueError:
        raise MalformedBody(f"more than {MAX_FIELDS} fields") from None


def _multipart_fields(data: bytes, content_type: str, params: dict[str, str], codec: str) -> dict[str, list[str]]:
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
            value = _decode(field.value or b"", codec)
        except UnicodeDecodeError:
            problems.append(f"field '{name}' is not valid {codec.upper()}")
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

    The body is read in the charset its content type declares (UTF-8 when it declares
    none). A body API Gateway passed as text (not base64) is already text: it is read as is.

    Raises:
        PayloadTooLarge: body over 64 KB.
        UnsupportedContentType: not urlencoded, multipart or JSON, or a charset no browser posts.
        MalformedBody: the body does not decode as its content type says.
    """
    data = raw_body(event)
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"body is over {MAX_BODY_BYTES} bytes")
    content_type = headers.get("content-type", "")
    media_type, params = _media_type(content_type)
    is_json = media_type == "application/json" or media_type.endswith("+json")
    if media_type not in ("application/x-www-form-urlencoded", "multipart/form-data") and not is_json:
        raise UnsupportedContentType(media_type or "(none)")
    codec = codec_for(params.get("charset", "utf-8"))
    if media_type == "multipart/form-data":
        return _multipart_fields(data, content_type, params, codec), media_type
    text = _text(data, codec if event.get("isBase64Encoded") else "utf-8")
    if media_type == "application/x-www-form-urlencoded":
        return _urlencoded_fields(text, codec), media_type
    return _json_fields(text), "application/json"
