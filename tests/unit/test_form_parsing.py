"""A form body parses exactly as `urllib.parse.parse_qsl` parses it (the first value of a
repeated name wins), however its escapes are spelled; only faster for base64 values."""

from __future__ import annotations

import base64
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontend.api.body import _form
from frontend.contract.codes import Code, ContractError


def parse_qsl_fields(body: bytes, max_fields: int = 64) -> dict[str, str]:
    """What the form parser gave before its fast path: urllib's own parse."""
    pairs = urllib.parse.parse_qsl(body.decode("ascii"), keep_blank_values=True,
                                   encoding="utf-8", errors="strict",
                                   max_num_fields=max_fields)
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def outcome(parse, body: bytes):
    try:
        return parse(body)
    except (ValueError, ContractError) as error:  # UnicodeDecodeError is a ValueError
        return type(error).__name__ if not isinstance(error, ContractError) else error.code


# the characters that matter to the parser, so that escapes, '+', '&' and '=' meet often
FORM_TEXT = st.text(alphabet="%+&=2bBfF3dD0aZ/ xé", max_size=60)


@settings(max_examples=600, deadline=None)
@given(FORM_TEXT)
def test_any_ascii_form_parses_as_urllib_parses_it(text):
    body = text.encode("utf-8", errors="ignore")
    try:
        body.decode("ascii")
    except UnicodeDecodeError:
        with pytest.raises(ContractError):
            _form(body, 64)
        return
    expected = outcome(parse_qsl_fields, body)
    got = outcome(lambda b: _form(b, 64), body)
    if isinstance(expected, dict):
        assert got == expected
    elif expected == "ValueError":  # more fields than allowed
        assert got == Code.TOO_MANY_FIELDS
    else:  # an escape that is not UTF-8
        assert got == Code.INVALID_ARGUMENT


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=10), st.binary(max_size=300), max_size=5))
def test_urlencoded_base64_values_come_back_whole(values):
    fields = {name: base64.b64encode(raw).decode() for name, raw in values.items()}
    body = urllib.parse.urlencode(fields).encode()
    assert _form(body, 64) == fields == parse_qsl_fields(body)


def test_escapes_beyond_base64s_decode_to_their_utf8_text():
    assert _form(b"a=%2B%41%2f%e2%82%ac+x", 64) == {"a": "+A/\u20ac x"}


def test_an_escape_that_is_not_utf8_is_a_contract_error():
    with pytest.raises(ContractError) as caught:
        _form(b"a=%ff", 64)
    assert caught.value.code == Code.INVALID_ARGUMENT
