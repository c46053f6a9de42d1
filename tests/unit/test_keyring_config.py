"""Key ring configuration: `KeyRing.from_strings` and `keyring_from_env` (CONTRACT.md section 6)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from frontend.crypto import KeyRing, keyring_from_env

# The SenseID manual's sample: AESCipher("dcbbad6765e14139a07d34b92292a672", "df25d188a061").
SAMPLE_KEY = "dcbbad6765e14139a07d34b92292a672"
SAMPLE_IV = "df25d188a061"
OTHER_KEY = "0123456789abcdef0123456789abcdef"


def test_from_strings_uses_each_keys_utf8_bytes_as_in_the_vendor_sample():
    ring = KeyRing.from_strings([SAMPLE_KEY, OTHER_KEY], SAMPLE_IV)
    assert ring == KeyRing(
        keys=(SAMPLE_KEY.encode(), OTHER_KEY.encode()), legacy_iv=SAMPLE_IV.encode()
    )
    vendor = base64.b64encode(AESGCM(SAMPLE_KEY.encode()).encrypt(SAMPLE_IV.encode(), b"p", None))
    assert ring.decrypt(vendor) == b"p"


def test_from_strings_without_iv_has_no_legacy_form_and_drops_repeated_keys():
    ring = KeyRing.from_strings([SAMPLE_KEY, SAMPLE_KEY], None, allow_legacy=False)
    assert ring == KeyRing(keys=(SAMPLE_KEY.encode(),), legacy_iv=None, allow_legacy=False)


@pytest.mark.parametrize(
    ("keys", "iv", "message"),
    [
        ([SAMPLE_KEY, "short"], None,
         "AES key 2 is 5 bytes in UTF-8; an AES-256 key is 32 characters"),
        (["é" * 32], None, "AES key 1 is 64 bytes in UTF-8; an AES-256 key is 32 characters"),
        ([SAMPLE_KEY], "df25d188a06",
         "the legacy IV is 11 bytes in UTF-8; the IV is 12 characters"),
    ],
)
def test_from_strings_raises_value_error_for_a_wrong_length(keys, iv, message):
    with pytest.raises(ValueError) as caught:
        KeyRing.from_strings(keys, iv)
    assert str(caught.value) == message


def test_from_strings_in_plaintext_mode_needs_no_key():
    assert KeyRing.from_strings([], None, plaintext=True) == KeyRing(keys=(), plaintext=True)


def test_keyring_from_env_reads_comma_separated_keys_the_first_encrypting():
    ring = keyring_from_env({
        "FACEGATE_AES_KEY": f" {SAMPLE_KEY} , {OTHER_KEY} ",
        "FACEGATE_AES_IV": SAMPLE_IV,
    })
    assert ring == KeyRing(keys=(SAMPLE_KEY.encode(), OTHER_KEY.encode()),
                           legacy_iv=SAMPLE_IV.encode())
    assert KeyRing(keys=(SAMPLE_KEY.encode(),)).decrypt(ring.encrypt(b"x")) == b"x"


def test_keyring_from_env_appends_the_key_file_after_the_variable(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(
        f"# rotated 2024-05\n\n{OTHER_KEY}  # newest\n  {SAMPLE_KEY}  \n", encoding="utf-8"
    )
    ring = keyring_from_env(
        {"FACEGATE_AES_KEY": SAMPLE_KEY, "FACEGATE_AES_KEY_FILE": str(key_file)}
    )
    assert ring == KeyRing(keys=(SAMPLE_KEY.encode(), OTHER_KEY.encode()))


def test_keyring_from_env_reads_the_key_file_alone(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(f"{OTHER_KEY}\n", encoding="utf-8")
    assert keyring_from_env({"FACEGATE_AES_KEY_FILE": str(key_file)}) == KeyRing(
        keys=(OTHER_KEY.encode(),)
    )


def test_keyring_from_env_plaintext_mode_needs_no_key():
    ring = keyring_from_env({"FACEGATE_PLAINTEXT": "TRUE"})
    assert ring == KeyRing(keys=(), plaintext=True)


def test_keyring_from_env_names_the_variable_of_a_short_key_without_showing_it():
    with pytest.raises(ValueError) as caught:
        keyring_from_env({"FACEGATE_AES_KEY": f"{SAMPLE_KEY},secret-but-short"})
    assert str(caught.value) == (
        "FACEGATE_AES_KEY (key 2) is 16 bytes in UTF-8; an AES-256 key is 32 characters"
    )


def test_keyring_from_env_names_the_file_and_line_of_a_bad_key(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text(f"# comment\n{SAMPLE_KEY}\nnope\n", encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        keyring_from_env({"FACEGATE_AES_KEY_FILE": str(key_file)})
    assert str(caught.value) == (
        f"FACEGATE_AES_KEY_FILE={key_file} line 3 is 4 bytes in UTF-8; "
        "an AES-256 key is 32 characters"
    )


def test_keyring_from_env_names_the_iv_variable_of_a_wrong_iv():
    with pytest.raises(ValueError) as caught:
        keyring_from_env({"FACEGATE_AES_KEY": SAMPLE_KEY, "FACEGATE_AES_IV": "0123456789abc"})
    assert str(caught.value) == "FACEGATE_AES_IV is 13 bytes in UTF-8; the IV is 12 characters"


def test_keyring_from_env_without_any_key_in_the_file_says_what_to_set(tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(ValueError, match="^no AES key configured"):
        keyring_from_env({"FACEGATE_AES_KEY_FILE": str(key_file)})


def test_keyring_from_env_can_refuse_the_legacy_form_despite_an_iv():
    ring = keyring_from_env({"FACEGATE_AES_KEY": SAMPLE_KEY, "FACEGATE_AES_IV": SAMPLE_IV,
                             "FACEGATE_ALLOW_LEGACY_IV": "off"})
    assert ring == KeyRing(keys=(SAMPLE_KEY.encode(),), legacy_iv=SAMPLE_IV.encode(),
                           allow_legacy=False)


def test_keyring_from_env_refuses_a_missing_key_file(tmp_path):
    missing = tmp_path / "absent"
    with pytest.raises(ValueError, match=f"^FACEGATE_AES_KEY_FILE={missing} cannot be read: "):
        keyring_from_env({"FACEGATE_AES_KEY_FILE": str(missing)})


def test_keyring_from_env_without_any_key_says_what_to_set():
    with pytest.raises(ValueError) as caught:
        keyring_from_env({"FACEGATE_AES_IV": SAMPLE_IV})
    assert str(caught.value) == (
        "no AES key configured: set FACEGATE_AES_KEY or FACEGATE_AES_KEY_FILE "
        "(or FACEGATE_PLAINTEXT=true, for development only)"
    )


def test_keyring_from_env_refuses_a_plaintext_value_that_is_not_a_boolean():
    with pytest.raises(ValueError) as caught:
        keyring_from_env({"FACEGATE_AES_KEY": SAMPLE_KEY, "FACEGATE_PLAINTEXT": "maybe"})
    assert str(caught.value) == (
        "FACEGATE_PLAINTEXT='maybe' is not a boolean (true/false, 1/0, yes/no, on/off)"
    )


def test_keyring_from_env_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("FACEGATE_AES_KEY", OTHER_KEY)
    for name in ("FACEGATE_AES_KEY_FILE", "FACEGATE_AES_IV", "FACEGATE_ALLOW_LEGACY_IV",
                 "FACEGATE_PLAINTEXT"):
        monkeypatch.delenv(name, raising=False)
    assert keyring_from_env() == KeyRing(keys=(OTHER_KEY.encode(),))
