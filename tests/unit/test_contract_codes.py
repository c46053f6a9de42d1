"""The contract's code table is complete and unambiguous (CONTRACT.md section 4)."""

from __future__ import annotations

from frontend.contract.codes import Code, ContractError

CONTRACT_TABLE = {
    1200: "invalid argument", 2003: "invalid image size", 2004: "invalid content length",
    2005: "invalid image type or corrupted", 2006: "corrupted image error",
    2007: "corrupted liveness data error", 2008: "invalid video error", 4000: "detection failed",
    4004: "face occlusion", 4007: "liveness silent check failed",
}


def test_every_error_code_of_the_contract_is_there_with_its_message_and_http_400():
    errors = {c.info.code: c.info.message for c in Code if c is not Code.OK}
    assert errors == CONTRACT_TABLE
    assert {c.info.http_status for c in Code if c is not Code.OK} == {400}


def test_codes_are_unique():
    numbers = [c.info.code for c in Code]
    assert len(numbers) == len(set(numbers))


def test_contract_error_carries_its_code_and_says_it():
    error = ContractError(Code.DETECTION_FAILED, "no face in first_image")
    assert error.code is Code.DETECTION_FAILED
    assert str(error) == "4000 detection failed: no face in first_image"
