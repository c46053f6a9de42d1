"""The contract's code table is complete and unambiguous (CONTRACT.md section 4)."""

from __future__ import annotations

from pathlib import Path

from frontend.contract.codes import CONTRACT_ERRORS, HTTP_ERRORS, Code, ContractError

CONTRACT_TABLE = {
    1200: "invalid argument", 2003: "invalid image size", 2004: "invalid content length",
    2005: "invalid image type or corrupted", 2006: "corrupted image error",
    2007: "corrupted liveness data error", 2008: "invalid video error", 4000: "detection failed",
    4004: "face occlusion", 4007: "liveness silent check failed",
}
EXTENSIONS = {
    1201: "too many fields", 4010: "multiple faces",
    4101: "session expired", 4102: "invalid session", 4103: "session already used",
    4104: "no session result",
}
"""Codes of the opt-in extensions (CONTRACT.md section 9) and of the liveness sessions: only
a client that opts in or opens a session sees them."""


def test_every_error_code_of_the_contract_and_its_extensions_is_there_with_http_400():
    errors = {c.info.code: c.info.message for c in CONTRACT_ERRORS}
    assert errors == CONTRACT_TABLE | EXTENSIONS
    assert {c.info.http_status for c in CONTRACT_ERRORS} == {400}


def test_http_level_answers_use_the_status_as_code_and_the_seeds_status_names():
    assert {c.info.code: c.info.message for c in HTTP_ERRORS} == {
        401: "UNAUTHORIZED", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
        408: "REQUEST_TIMEOUT", 411: "LENGTH_REQUIRED", 413: "PAYLOAD_TOO_LARGE",
        429: "TOO_MANY_REQUESTS", 500: "INTERNAL_ERROR", 503: "SERVICE_UNAVAILABLE",
    }


def test_codes_are_unique():
    numbers = [c.info.code for c in Code]
    assert len(numbers) == len(set(numbers))


def test_contract_error_carries_its_code_and_says_it():
    error = ContractError(Code.DETECTION_FAILED, "no face in first_image")
    assert error.code is Code.DETECTION_FAILED
    assert str(error) == "4000 detection failed: no face in first_image"


def test_the_readme_code_table_is_the_code_table():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for code in Code:
        info = code.info
        assert f"| {info.code} | {info.message} | {info.http_status} | {info.when} |" in readme
