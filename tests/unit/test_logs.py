"""Log records stay one line whatever a client sends; the JSON form carries the request id."""

from __future__ import annotations

import json
import logging

from frontend.api.logs import REQUEST_ID, JsonFormatter, TextFormatter, escape

FORGED = 'x"\n2026-12-03 10:00:00,000 ERROR frontend: forged\r\u2028'


def _record(message: str, *args, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord("frontend.api", logging.INFO, __file__, 1, message, args, exc_info)


def test_escape_turns_control_characters_into_visible_escapes():
    assert escape("a\nb\r\tc\x00\u2028") == "a\\nb\\r\\tc\\x00\\u2028"


def test_a_client_text_with_a_newline_stays_on_the_records_line():
    line = TextFormatter().format(_record("unknown field %s", FORGED))
    assert "\n" not in line and "\r" not in line
    expected = 'unknown field x"\\n2026-12-03 10:00:00,000 ERROR frontend: forged\\r\\u2028'
    assert line.endswith(expected)


def test_a_traceback_is_indented_so_no_line_of_it_looks_like_a_record():
    try:
        raise ValueError(FORGED)
    except ValueError as error:
        line = TextFormatter().format(_record("failed", exc_info=(type(error), error, None)))
    first, *rest = line.split("\n")
    assert first.endswith("failed") and rest
    assert all(part.startswith("    | ") for part in rest)


def test_json_records_are_one_object_with_the_request_id():
    token = REQUEST_ID.set("abc123")
    try:
        line = JsonFormatter().format(_record("unknown field %s", FORGED))
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "abc123" and entry["message"] == f"unknown field {FORGED}"
    assert entry["level"] == "INFO" and entry["logger"] == "frontend.api"
