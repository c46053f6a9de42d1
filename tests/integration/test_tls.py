"""HTTPS and mutual TLS from `python -m frontend` itself (certificates made for the test)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import REPO_ROOT, free_port

KEY = "k" * 32


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(subject: str, issuer_key, public_key, issuer: str, *, ca: bool, dns=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(dns))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, ca_key.public_key(), "test CA", ca=True)
    files = {"ca": folder / "ca.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(name, ca_key, key.public_key(), "test CA", ca=False,
                            dns="127.0.0.1" if name == "server" else None)
        files[f"{name}_cert"] = folder / f"{name}.pem"
        files[f"{name}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{name}_key"] = folder / f"{name}.key"
        files[f"{name}_key"].write_bytes(_pem_key(key))
    return files


def _start(triton, extra: dict[str, str]) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "FACEGATE_AES_KEY": KEY, "FACEGATE_PORT": str(port),
           "FACEGATE_HOST": "127.0.0.1", "FACEGATE_TRITON_URL": triton.grpc_url, **extra}
    return subprocess.Popen([sys.executable, "-m", "frontend"], cwd=REPO_ROOT, env=env), port


@pytest.fixture
def tls_server(triton, pki) -> Iterator[int]:
    process, port = _start(triton, {
        "FACEGATE_TLS_CERT_FILE": str(pki["server_cert"]),
        "FACEGATE_TLS_KEY_FILE": str(pki["server_key"]),
        "FACEGATE_TLS_CLIENT_CA_FILE": str(pki["ca"]),
    })
    yield port
    process.terminate()
    process.wait(timeout=30)


def _client_context(pki, with_certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    if with_certificate:
        context.load_cert_chain(str(pki["client_cert"]), str(pki["client_key"]))
    return context


async def _get(port: int, context: ssl.SSLContext, deadline_s: float = 30) -> int:
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"https://127.0.0.1:{port}/healthz", ssl=context) as r:
                    return r.status
            except aiohttp.ClientConnectorError:
                if time.monotonic() - started > deadline_s:
                    raise
                await asyncio.sleep(0.2)


async def test_https_with_a_client_certificate_is_served(tls_server, pki):
    assert await _get(tls_server, _client_context(pki, with_certificate=True)) == 200


async def test_mutual_tls_refuses_a_client_without_a_certificate(tls_server, pki):
    await _get(tls_server, _client_context(pki, with_certificate=True))  # it is up
    with pytest.raises((aiohttp.ClientError, ssl.SSLError, ConnectionError)):
        await _get(tls_server, _client_context(pki, with_certificate=False), deadline_s=0)


async def test_a_certificate_that_does_not_load_stops_the_server_with_exit_code_2(
    triton, tmp_path
):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    process, _ = _start(triton, {"FACEGATE_TLS_CERT_FILE": str(bad)})
    assert process.wait(timeout=60) == 2
