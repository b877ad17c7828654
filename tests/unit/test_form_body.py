"""decode_fields: a form post's body (urlencoded, multipart or JSON) into lists of strings.

Sample events: /work/shared/external/apigw/sam_HttpApi_v2_POST_form-urlencoded_base64.json
(aws-sam-cli 1.170.0 `sam local generate-event apigateway http-api-proxy`) and
/work/shared/external/apigw/powertools_apiGatewayProxyEventAnotherPath.json
(aws-powertools/powertools-lambda-python tests/events @fa1c29f2: isBase64Encoded with a non-base64 body).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from leadflow.domain.errors import MalformedBody, PayloadTooLarge, UnsupportedContentType
from leadflow.transport.form_body import MAX_BODY_BYTES, decode_fields
from leadflow.transport.http import lower_headers
from tests.conftest import external, load_json

pytestmark = pytest.mark.unit

URLENCODED = "application/x-www-form-urlencoded"
BOUNDARY = "----leadflowBoundary7MA4YWxkTrZu0gW"


@pytest.fixture(scope="module")
def sam_event() -> dict[str, Any]:
    return load_json(external("apigw/sam_HttpApi_v2_POST_form-urlencoded_base64.json"))


def text_event(body: str | None) -> dict[str, Any]:
    return {"body": body, "isBase64Encoded": False}


def bytes_event(body: bytes) -> dict[str, Any]:
    return {"body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}


def decode(event: dict[str, Any], content_type: str) -> tuple[dict[str, list[str]], str]:
    return decode_fields(event, {"content-type": content_type})


def multipart(*parts: tuple[dict[str, str], bytes], boundary: str = BOUNDARY) -> bytes:
    """A multipart/form-data body, each part given as (headers, content)."""
    chunks = []
    for headers, content in parts:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        chunks.append(f"--{boundary}\r\n{head}\r\n".encode() + content + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


def text_part(name: str, value: str) -> tuple[dict[str, str], bytes]:
    return {"Content-Disposition": f'form-data; name="{name}"'}, value.encode("utf-8")


# ---------------------------------------------------------------------------- the real API Gateway sample


def test_the_sam_sample_form_post_decodes(sam_event: dict[str, Any]):
    # GIVEN the SAM CLI's HTTP API form post (base64 body), with the content type a browser sends
    event = copy.deepcopy(sam_event)
    event["headers"] = {**event["headers"], "content-type": URLENCODED}

    # WHEN its body is decoded
    fields, media_type = decode_fields(event, lower_headers(event))

    # THEN every field is there, percent- and plus-decoded
    assert media_type == URLENCODED
    assert fields == {
        "email": ["jane@example.com"],
        "first_name": ["Jane"],
        "utm_source": ["newsletter"],
        "utm_campaign": ["spring launch"],
    }


def test_the_sam_sample_without_a_content_type_is_unsupported(sam_event: dict[str, Any]):
    # GIVEN the SAM sample as generated (its headers carry no content type)
    # WHEN its body is decoded
    # THEN the missing content type is reported
    with pytest.raises(UnsupportedContentType, match=r"\(none\)"):
        decode_fields(sam_event, lower_headers(sam_event))


def test_a_body_flagged_base64_that_is_not_base64_is_malformed():
    # GIVEN the Powertools sample whose body "Hello from Lambda!" is flagged isBase64Encoded
    event = load_json(external("apigw/powertools_apiGatewayProxyEventAnotherPath.json"))

    # WHEN it is decoded as a form post
    # THEN the body is malformed
    with pytest.raises(MalformedBody, match="base64"):
        decode(event, URLENCODED)


# ---------------------------------------------------------------------------- urlencoded


def test_urlencoded_keeps_repeats_and_blanks():
    # GIVEN a post with a repeated field and empty fields
    event = text_event("interest=crm&interest=email&company=&utm_source")

    # WHEN it is decoded
    fields, _ = decode(event, URLENCODED)

    # THEN repeats are a list and blanks are kept as empty strings
    assert fields == {"interest": ["crm", "email"], "company": [""], "utm_source": [""]}


def test_urlencoded_decodes_utf8_percent_escapes():
    # GIVEN percent-encoded UTF-8 (what a browser sends for "Zoë Ørsted 東京")
    event = text_event("first_name=Zo%C3%AB+%C3%98rsted&city=%E6%9D%B1%E4%BA%AC")

    # WHEN it is decoded
    fields, _ = decode(event, URLENCODED)

    # THEN the text is back
    assert fields == {"first_name": ["Zoë Ørsted"], "city": ["東京"]}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded; charset=UTF-8",
        "Application/X-WWW-Form-URLEncoded",
        "application/x-www-form-urlencoded;charset=utf8",
        ' application/x-www-form-urlencoded ; charset="utf-8"',
    ],
)
def test_urlencoded_content_type_variants_are_recognised(content_type: str):
    # GIVEN a post whose content type is spelled with case, parameters and quotes
    # WHEN it is decoded
    fields, media_type = decode(text_event("email=jane%40example.com"), content_type)

    # THEN it is read as urlencoded
    assert (fields, media_type) == ({"email": ["jane@example.com"]}, URLENCODED)


@pytest.mark.parametrize("body", [None, ""], ids=repr)
def test_an_empty_urlencoded_body_has_no_fields(body: str | None):
    # GIVEN a post with no body
    # WHEN it is decoded
    fields, _ = decode(text_event(body), URLENCODED)

    # THEN there are no fields
    assert fields == {}


@pytest.mark.parametrize("body", ["email=%FF%FE", "first_name=%C3", "x=%ED%A0%80"], ids=repr)
def test_urlencoded_percent_escapes_that_are_not_utf8_are_malformed(body: str):
    # GIVEN percent escapes that decode to invalid UTF-8 (a lone surrogate's encoding included)
    # WHEN the body is decoded
    # THEN it is malformed
    with pytest.raises(MalformedBody):
        decode(text_event(body), URLENCODED)


def test_more_than_200_urlencoded_fields_are_malformed():
    # GIVEN a post with 201 fields
    body = "&".join(f"f{i}=x" for i in range(201))

    # WHEN it is decoded
    # THEN it is refused
    with pytest.raises(MalformedBody, match="200"):
        decode(text_event(body), URLENCODED)


def test_a_base64_urlencoded_body_is_decoded():
    # GIVEN a urlencoded body that API Gateway base64-encoded
    event = bytes_event(b"email=jane%40example.com&consent=on")

    # WHEN it is decoded
    fields, _ = decode(event, URLENCODED)

    # THEN the fields are read
    assert fields == {"email": ["jane@example.com"], "consent": ["on"]}


@pytest.mark.parametrize("body", ["not base64!", "ZW1haWw", "ZW1haWw9=a", "ZW1h\naWw9"], ids=repr)
def test_an_invalid_base64_body_is_malformed(body: str):
    # GIVEN a body flagged base64 that is not (strictly) base64
    # WHEN it is decoded
    # THEN it is malformed
    with pytest.raises(MalformedBody, match="base64"):
        decode({"body": body, "isBase64Encoded": True}, URLENCODED)


@pytest.mark.parametrize("charset", ["iso-8859-1", "latin-1", "windows-1252", "ISO_8859-1"])
def test_a_json_body_is_read_in_its_declared_charset(charset: str):
    # GIVEN a base64 JSON body whose bytes are Latin-1, declared as such (issue 13, defect 11)
    event = bytes_event('{"first_name": "Zoë", "company": "Café €"}'.encode("cp1252"))

    # WHEN it is decoded
    fields, _ = decode(event, f"application/json; charset={charset}")

    # THEN the text is what the client meant, not mojibake
    assert fields == {"first_name": ["Zoë"], "company": ["Café €"]}


def test_an_urlencoded_body_is_read_in_its_declared_charset():
    # GIVEN an HTML form posted by a Latin-1 page: raw and percent-encoded Latin-1 bytes
    event = bytes_event(b"first_name=Zo%EB&company=Caf\xe9")

    # WHEN it is decoded with the declared charset
    fields, _ = decode(event, URLENCODED + "; charset=ISO-8859-1")

    # THEN both read as Latin-1
    assert fields == {"first_name": ["Zoë"], "company": ["Café"]}


def test_a_multipart_body_is_read_in_its_declared_charset():
    # GIVEN a multipart body in Latin-1, declared on the request
    body = multipart(({"Content-Disposition": 'form-data; name="first_name"'}, "Zoë".encode("latin-1")))

    # WHEN it is decoded
    fields, _ = decode(bytes_event(body), f"multipart/form-data; boundary={BOUNDARY}; charset=latin-1")

    # THEN the field is read as Latin-1
    assert fields == {"first_name": ["Zoë"]}


@pytest.mark.parametrize("content_type", [URLENCODED, "application/json"])
def test_bytes_that_are_not_utf8_are_malformed_when_utf8_is_declared(content_type: str):
    # GIVEN a base64 body whose bytes are Latin-1, declared (or defaulting to) UTF-8
    event = bytes_event('{"first_name": "Zoë"}'.encode("latin-1"))

    # WHEN it is decoded
    # THEN it is malformed
    for declared in (content_type, content_type + "; charset=utf-8"):
        with pytest.raises(MalformedBody, match="UTF-8"):
            decode(event, declared)


@pytest.mark.parametrize("charset", ["rot13", "base64", "utf-7", "unicode_escape", "no-such-charset", "utf-16"])
def test_a_charset_no_browser_posts_is_refused(charset: str):
    # GIVEN a body declaring a codec that is not a web encoding (some are Python bytes-to-bytes codecs)
    event = bytes_event(b'{"first_name": "x"}')

    # WHEN it is decoded
    # THEN it is refused as an unsupported content type (415), never decoded with that codec
    with pytest.raises(UnsupportedContentType, match="charset"):
        decode(event, f"application/json; charset={charset}")


def test_a_text_body_with_a_lone_surrogate_is_malformed():
    # GIVEN a non-base64 body string carrying a lone surrogate
    # WHEN it is decoded
    # THEN it is malformed (never an encoding error)
    with pytest.raises(MalformedBody):
        decode(text_event("first_name=\ud800"), URLENCODED)


# ---------------------------------------------------------------------------- multipart


def test_multipart_text_fields_are_read():
    # GIVEN a multipart body with text fields, one of them twice and one in UTF-8
    body = multipart(
        text_part("email", "jane@example.com"),
        text_part("first_name", "Zoë"),
        text_part("interest", "crm"),
        text_part("interest", "email"),
        text_part("company", ""),
    )

    # WHEN it is decoded
    fields, media_type = decode(bytes_event(body), f"multipart/form-data; boundary={BOUNDARY}")

    # THEN every text field is there
    assert media_type == "multipart/form-data"
    assert fields == {
        "email": ["jane@example.com"],
        "first_name": ["Zoë"],
        "interest": ["crm", "email"],
        "company": [""],
    }


def test_multipart_file_parts_are_dropped():
    # GIVEN a multipart body with an uploaded file beside a text field
    file_part = (
        {"Content-Disposition": 'form-data; name="cv"; filename="cv.pdf"', "Content-Type": "application/pdf"},
        b"%PDF-1.4\x00\xff\xfe binary",
    )
    body = multipart(text_part("email", "jane@example.com"), file_part)

    # WHEN it is decoded
    fields, _ = decode(bytes_event(body), f"multipart/form-data; boundary={BOUNDARY}")

    # THEN only the text field is kept
    assert fields == {"email": ["jane@example.com"]}


def test_multipart_with_a_quoted_boundary_is_read():
    # GIVEN a content type whose boundary is quoted
    body = multipart(text_part("email", "jane@example.com"), boundary="quoted boundary")

    # WHEN it is decoded
    fields, _ = decode(bytes_event(body), 'multipart/form-data; boundary="quoted boundary"')

    # THEN the fields are read
    assert fields == {"email": ["jane@example.com"]}


def test_the_mautic_field_names_survive_multipart():
    # GIVEN a Mautic form's multipart post (bracketed field names, like the Mautic sample form)
    body = multipart(
        text_part("mauticform[email_address]", "jane@example.com"),
        text_part("mauticform[formId]", "12"),
        text_part("mauticform[return]", ""),
    )

    # WHEN it is decoded
    fields, _ = decode(bytes_event(body), f"multipart/form-data; boundary={BOUNDARY}")

    # THEN the names are kept as posted
    assert fields == {
        "mauticform[email_address]": ["jane@example.com"],
        "mauticform[formId]": ["12"],
        "mauticform[return]": [""],
    }


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data;"]
)
def test_multipart_without_a_boundary_is_malformed(content_type: str):
    # GIVEN a multipart content type without a boundary
    # WHEN the body is decoded
    # THEN it is malformed
    with pytest.raises(MalformedBody, match="boundary"):
        decode(bytes_event(multipart(text_part("email", "jane@example.com"))), content_type)


@pytest.mark.parametrize(
    "body",
    [b"just some text", b"--other\r\nContent-Disposition: form-data; name=x\r\n\r\ny\r\n--other--\r\n"],
    ids=["no parts", "wrong boundary"],
)
def test_multipart_that_does_not_parse_is_malformed(body: bytes):
    # GIVEN a body that is not multipart with the declared boundary
    # WHEN it is decoded
    # THEN it is malformed
    with pytest.raises(MalformedBody):
        decode(bytes_event(body), f"multipart/form-data; boundary={BOUNDARY}")


def test_a_multipart_field_that_is_not_utf8_is_malformed_when_none_is_declared():
    # GIVEN a multipart text field in Latin-1
    body = multipart(({"Content-Disposition": 'form-data; name="first_name"'}, "Zoë".encode("latin-1")))

    # WHEN it is decoded
    # THEN the field is named as not UTF-8
    with pytest.raises(MalformedBody, match="first_name"):
        decode(bytes_event(body), f"multipart/form-data; boundary={BOUNDARY}")


def test_more_than_200_multipart_fields_are_malformed():
    # GIVEN a multipart body with 201 fields
    body = multipart(*(text_part(f"f{i}", "x") for i in range(201)))

    # WHEN it is decoded
    # THEN it is refused
    with pytest.raises(MalformedBody, match="200"):
        decode(bytes_event(body), f"multipart/form-data; boundary={BOUNDARY}")


# ---------------------------------------------------------------------------- JSON


def test_json_scalars_become_strings():
    # GIVEN a JSON object with text, numbers, booleans and null
    body = {"email": "jane@example.com", "seats": 25, "budget": 2.5, "consent": True, "newsletter": False, "x": None}

    # WHEN it is decoded
    fields, media_type = decode(text_event(json.dumps(body)), "application/json")

    # THEN each is one string; false and null are blank (an unticked box)
    assert media_type == "application/json"
    assert fields == {
        "email": ["jane@example.com"],
        "seats": ["25"],
        "budget": ["2.5"],
        "consent": ["true"],
        "newsletter": [""],
        "x": [""],
    }


def test_json_lists_are_repeated_values():
    # GIVEN a JSON list of scalars
    body = json.dumps({"interest": ["crm", "email", 3, None], "tags": []})

    # WHEN it is decoded
    fields, _ = decode(text_event(body), "application/json")

    # THEN it is several values of one field
    assert fields == {"interest": ["crm", "email", "3", ""], "tags": []}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.leadflow+json"])
def test_json_content_type_variants_are_recognised(content_type: str):
    # GIVEN a JSON post with a charset or a +json media type
    # WHEN it is decoded
    fields, media_type = decode(text_event('{"email": "jane@example.com"}'), content_type)

    # THEN it is read as JSON
    assert (fields, media_type) == ({"email": ["jane@example.com"]}, "application/json")


def test_json_unicode_escapes_are_decoded():
    # GIVEN JSON with \\u escapes
    # WHEN it is decoded
    fields, _ = decode(text_event('{"first_name": "Zo\\u00eb"}'), "application/json")

    # THEN the text is back
    assert fields == {"first_name": ["Zoë"]}


@pytest.mark.parametrize(
    "body",
    [
        '{"company": {"name": "ACME"}}',
        '{"interest": ["crm", {"x": 1}]}',
        '{"interest": [["nested"]]}',
        '["jane@example.com"]',
        '"jane@example.com"',
        "42",
        "null",
        "",
        "{not json}",
        '{"email": "jane@example.com"',
        '{"budget": NaN}',
        '{"budget": Infinity}',
        '{"budget": 1e999}',
    ],
    ids=repr,
)
def test_json_that_is_not_a_flat_object_of_scalars_is_malformed(body: str):
    # GIVEN JSON that is not an object of text, numbers, booleans or lists of those
    # WHEN it is decoded
    # THEN it is malformed
    with pytest.raises(MalformedBody):
        decode(text_event(body), "application/json")


def test_deeply_nested_json_is_malformed_not_a_crash():
    # GIVEN JSON nested deeper than the parser's recursion limit, within the size limit
    body = '{"a":' + "[" * 30_000 + "]" * 30_000 + "}"

    # WHEN it is decoded
    # THEN it is malformed
    with pytest.raises(MalformedBody):
        decode(text_event(body), "application/json")


def test_more_than_200_json_fields_are_malformed():
    # GIVEN a JSON object with 201 keys
    body = json.dumps({f"f{i}": "x" for i in range(201)})

    # WHEN it is decoded
    # THEN it is refused
    with pytest.raises(MalformedBody, match="200"):
        decode(text_event(body), "application/json")


def test_a_json_integer_too_long_to_convert_is_malformed():
    # GIVEN a JSON number of 5000 digits (well within the 64 KB body limit)
    body = '{"seats": ' + "9" * 5000 + "}"

    # WHEN it is decoded
    # THEN it is malformed, like any other JSON the parser cannot take
    with pytest.raises(MalformedBody):
        decode(text_event(body), "application/json")


# ---------------------------------------------------------------------------- content type and size


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "text/html", "", "multipart/mixed", "json"])
def test_other_content_types_are_unsupported(content_type: str):
    # GIVEN a post in a content type forms do not use
    # WHEN it is decoded
    with pytest.raises(UnsupportedContentType) as refused:
        decode(text_event("email=jane@example.com"), content_type)

    # THEN the media type is named
    assert str(refused.value) == (content_type or "(none)")


def test_a_body_of_exactly_64_kb_is_accepted():
    # GIVEN a urlencoded body of exactly the limit
    body = "interest=" + "x" * (MAX_BODY_BYTES - len("interest="))

    # WHEN it is decoded
    fields, _ = decode(text_event(body), URLENCODED)

    # THEN it is read
    assert len(fields["interest"][0]) == MAX_BODY_BYTES - len("interest=")


@pytest.mark.parametrize("content_type", [URLENCODED, "application/json", "text/plain"])
def test_a_body_over_64_kb_is_too_large(content_type: str):
    # GIVEN a body one byte over the limit (in any content type: size is checked first)
    body = "interest=" + "x" * (MAX_BODY_BYTES + 1 - len("interest="))

    # WHEN it is decoded
    # THEN it is too large
    with pytest.raises(PayloadTooLarge):
        decode(text_event(body), content_type)


def test_the_limit_counts_the_decoded_bytes():
    # GIVEN a base64 body whose decoded bytes are over the limit, and multi-byte text under it in characters
    base64_over = bytes_event(b"x" * (MAX_BODY_BYTES + 1))
    utf8_over = text_event("é" * (MAX_BODY_BYTES // 2 + 1))

    # WHEN they are decoded
    # THEN both are too large
    with pytest.raises(PayloadTooLarge):
        decode(base64_over, URLENCODED)
    with pytest.raises(PayloadTooLarge):
        decode(utf8_over, URLENCODED)
