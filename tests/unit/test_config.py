"""Settings come from FACEGATE_* variables, typed and validated once."""

from __future__ import annotations

import logging

import pytest

from frontend.api.app import create_app
from frontend.config import Settings, SettingsError


def test_settings_from_env_reads_typed_values():
    settings = Settings.from_env({"FACEGATE_PORT": "3100", "FACEGATE_TRITON_URL": "triton:8001",
                                  "FACEGATE_TRITON_TIMEOUT_S": "2.5", "PATH": "/bin"})
    assert (settings.port, settings.triton_url, settings.triton_timeout_s) == (
        3100, "triton:8001", 2.5)
    assert not settings.embedded_triton


def test_settings_default_to_the_embedded_triton_on_port_3000():
    settings = Settings.from_env({})
    assert settings.port == 3000 and settings.embedded_triton


def test_settings_refuse_a_port_that_is_not_a_number():
    with pytest.raises(SettingsError, match="FACEGATE_PORT='http' is not a valid int"):
        Settings.from_env({"FACEGATE_PORT": "http"})


def test_settings_refuse_a_port_out_of_range():
    with pytest.raises(SettingsError, match="FACEGATE_PORT=70000 is not a TCP port"):
        Settings.from_env({"FACEGATE_PORT": "70000"})


def test_settings_refuse_an_unknown_log_level():
    with pytest.raises(SettingsError, match="FACEGATE_LOG_LEVEL=LOUD"):
        Settings.from_env({"FACEGATE_LOG_LEVEL": "LOUD"})


def test_session_origins_are_listed_origins_without_paths():
    settings = Settings.from_env(
        {"FACEGATE_SESSION_ORIGINS": "https://bank.example, http://localhost:8080"})
    assert settings.origins == ["https://bank.example", "http://localhost:8080"]
    with pytest.raises(SettingsError, match="FACEGATE_SESSION_ORIGINS: 'https://bank.example/kyc'"):
        Settings.from_env({"FACEGATE_SESSION_ORIGINS": "https://bank.example/kyc"})


def test_settings_warn_about_an_unknown_facegate_variable(caplog):
    with caplog.at_level(logging.WARNING):
        Settings.from_env({"FACEGATE_PROT": "3000"})
    assert "ignoring FACEGATE_PROT: not a facegate setting" in caplog.text


def test_the_server_refuses_to_start_with_an_unusable_calibration(tmp_path):
    broken = tmp_path / "calibration.json"
    broken.write_text("{}")
    with pytest.raises(SettingsError, match="FACEGATE_CALIBRATION_FILE"):
        create_app(Settings(plaintext=True, calibration_file=broken))


def test_the_server_refuses_to_start_without_an_aes_key():
    with pytest.raises(SettingsError, match="FACEGATE_AES_KEY"):
        create_app(Settings())


def test_every_setting_is_in_the_readmes_configuration_table():
    from dataclasses import fields
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme[readme.index("## Configuration"):readme.index("## Deployment")]
    def listed(name: str) -> bool:  # rows may pair names: `FACEGATE_TLS_CERT_FILE` / `_KEY_FILE`
        upper = name.upper()
        return any(f"`{form}`" in table for form in (
            f"FACEGATE_{upper}", f"_{upper}", f"_{upper.split('_', 1)[-1]}",
        ))

    assert [f.name for f in fields(Settings) if not listed(f.name)] == []
