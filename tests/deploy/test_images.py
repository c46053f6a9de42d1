"""deploy/docker: what the two images are built from and how they start, checked without Docker.

The build contexts are filtered by the per-Dockerfile ignore files; `_context_files` applies
Docker's rules (the last matching pattern wins, ``!`` re-admits, a pattern that matches a
folder covers everything below it) to the repository's files, so the tests see exactly what
``docker build`` would send.
"""

from __future__ import annotations

import datetime
import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from frontend.config import PREFIX, Settings
from model_repository.specs import MODELS
from model_repository.triton_config import TRT_ENGINE_CACHE
from tests.conftest import REPO_ROOT
from tests.deploy.files import DOCKER, NATIVE_REPOSITORY, dockerfile_instructions

FRONTEND = DOCKER / "Dockerfile.frontend"
TRITON = DOCKER / "Dockerfile.triton"
ENTRYPOINT = DOCKER / "triton-entrypoint.sh"
_SKIPPED_DIRS = {".git", ".venv", ".pytest_cache", ".ruff_cache", "__pycache__"}


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus ``**``) as a regex over a relative path."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def _rules(ignore_file: Path) -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in ignore_file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        admit = line.startswith("!")
        rules.append((admit, _pattern_regex(os.path.normpath(line.lstrip("!")).lstrip("/"))))
    return rules


def _ignored(path: str, rules) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]  # parents, then the path
    ignored = False
    for admit, regex in rules:
        if any(regex.match(c) for c in candidates):
            ignored = not admit
    return ignored


def _context_files(dockerfile: Path) -> set[str]:
    rules = _rules(dockerfile.with_name(dockerfile.name + ".dockerignore"))
    files = set()
    for root, dirs, names in os.walk(REPO_ROOT):
        dirs[:] = [d for d in dirs if d not in _SKIPPED_DIRS]
        for name in names:
            path = Path(root, name).relative_to(REPO_ROOT).as_posix()
            if not _ignored(path, rules):
                files.add(path)
    return files


def _instructions(dockerfile: Path, name: str) -> list[str]:
    return [args for kind, args in dockerfile_instructions(dockerfile) if kind == name]


def _copy_sources(dockerfile: Path) -> list[str]:
    """Sources of the COPY instructions that read the build context (not ``--from``)."""
    sources = []
    for args in _instructions(dockerfile, "COPY"):
        words = [w for w in args.split() if not w.startswith("--")]
        if "--from=" not in args:
            sources.extend(words[:-1])
    return sources


def _image_defaults(dockerfile: Path) -> dict[str, str]:
    """Default values of the ARGs."""
    return dict(a.split("=", 1) for a in _instructions(dockerfile, "ARG") if "=" in a)


@pytest.mark.parametrize("dockerfile", [FRONTEND, TRITON], ids=lambda p: p.name)
def test_base_images_are_pinned_to_a_release_tag(dockerfile: Path):
    args = _image_defaults(dockerfile)
    for image in _instructions(dockerfile, "FROM"):
        reference = image.split()[0]
        reference = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], reference)
        name, _, tag = reference.rpartition(":")
        assert name and re.fullmatch(r"\d+\.\d+(\.\d+)?(-[\w.-]+)?", tag), reference


def test_triton_image_is_the_official_2_51_release():
    assert _image_defaults(TRITON)["TRITON_IMAGE"] == "nvcr.io/nvidia/tritonserver:24.10-py3"


@pytest.mark.parametrize("dockerfile", [FRONTEND, TRITON], ids=lambda p: p.name)
def test_images_run_as_a_numeric_non_root_user(dockerfile: Path):
    (user,) = _instructions(dockerfile, "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or int(gid) > 0)


@pytest.mark.parametrize(
    ("dockerfile", "endpoint"),
    [(FRONTEND, "/healthz"), (TRITON, "/v2/health/ready")],
    ids=["frontend", "triton"],
)
def test_images_check_their_own_health_endpoint(dockerfile: Path, endpoint: str):
    (healthcheck,) = _instructions(dockerfile, "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:])
    assert command[0] in ("python", "python3") and endpoint in command[-1]
    # The check is a program, not a shell line: it runs in images without curl or a shell.
    compile(command[-1], "<healthcheck>", "exec")


def test_frontend_image_variables_are_server_settings():
    known = {f"{PREFIX}{name.upper()}" for name in Settings.__dataclass_fields__}
    for env in _instructions(FRONTEND, "ENV"):
        for name in re.findall(r"(\w+)=", env):
            assert not name.startswith(PREFIX) or name in known, name
    assert "FACEGATE_TRITON_URL=triton:8001" in " ".join(_instructions(FRONTEND, "ENV"))


def _image_env(dockerfile: Path) -> dict[str, str]:
    """The ENV defaults (``NAME=value`` pairs)."""
    return dict(re.findall(r"(\w+)=(\S+)", " ".join(_instructions(dockerfile, "ENV"))))


def test_frontend_image_serves_metrics_on_a_port_of_its_own():
    """Run without the deploy files, the image still keeps /metrics off the API port."""
    settings = Settings.from_env({k: v for k, v in _image_env(FRONTEND).items()
                                  if k.startswith(PREFIX)})
    assert settings.metrics_port and settings.metrics_port != settings.port
    exposed = {int(p) for args in _instructions(FRONTEND, "EXPOSE") for p in args.split()}
    assert exposed == {settings.port, settings.metrics_port}


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def health_server(tmp_path) -> Iterator:
    """Start a stand-in /healthz on a free port, plain or over TLS with a self-signed
    certificate; yields start(tls) -> (port, certificate file or "")."""
    servers = []

    def start(tls: bool, status: int = 200) -> tuple[int, str]:
        handler = type("Health", (_Health,), {"status": status})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        certificate = ""
        if tls:
            key = ec.generate_private_key(ec.SECP256R1())
            name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "facegate.test")])
            now = datetime.datetime.now(datetime.timezone.utc)
            cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                    .sign(key, hashes.SHA256()))
            cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            key_file.write_bytes(key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            certificate = str(cert_file)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server.server_address[1], certificate

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _frontend_healthcheck(environ: dict[str, str]) -> int:
    """Run the frontend image's HEALTHCHECK program here; its exit status."""
    (healthcheck,) = _instructions(FRONTEND, "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD") + 3:])
    result = subprocess.run([sys.executable, *command[1:]], env={"PATH": os.environ["PATH"],
                            **environ}, capture_output=True, timeout=30)
    return result.returncode


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_frontend_healthcheck_asks_healthz_over_http_or_https(health_server, tls: bool):
    """With FACEGATE_TLS_CERT_FILE set the server speaks only HTTPS on its port, and the
    check follows; a 503 from /healthz fails it."""
    port, certificate = health_server(tls)
    environ = {"FACEGATE_PORT": str(port)}
    if certificate:
        environ["FACEGATE_TLS_CERT_FILE"] = certificate
    assert _frontend_healthcheck(environ) == 0
    failing, certificate = health_server(tls, status=503)
    assert _frontend_healthcheck({**environ, "FACEGATE_PORT": str(failing)}) != 0


def test_frontend_context_holds_the_package_and_no_models_weights_or_venv():
    files = _context_files(FRONTEND)
    for source in _copy_sources(FRONTEND):
        assert any(f == source or f.startswith(source.rstrip("/") + "/") for f in files), source
    assert "pyproject.toml" in files and "frontend/__main__.py" in files
    assert "model_repository/calibration/face_embedder.json" in files
    forbidden = (".venv/", "model_repository/embedded/", "tests/", "benchmarks/", ".git/")
    assert not [f for f in files if f.startswith(forbidden)]
    assert not [f for f in files if re.match(r"model_repository/native/[^/]+/1/", f)]


def test_triton_context_holds_the_native_repository_and_the_entrypoint_only():
    files = _context_files(TRITON)
    onnx = {p.relative_to(REPO_ROOT).as_posix() for p in NATIVE_REPOSITORY.glob("*/1/model.onnx")}
    assert len(onnx) == len(MODELS) and onnx <= files
    assert {f for f in files if not f.startswith("model_repository/native/")} == {
        "deploy/docker/triton-entrypoint.sh"
    }
    assert set(_copy_sources(TRITON)) == {"model_repository/native", ENTRYPOINT.relative_to(
        REPO_ROOT).as_posix()}


def test_triton_image_points_the_engine_cache_where_the_native_configs_expect_it():
    env = " ".join(_instructions(TRITON, "ENV"))
    models_cache = re.search(r"FACEGATE_MODELS_CACHE=(\S+)", env).group(1)
    assert f"{models_cache}/trt" == TRT_ENGINE_CACHE
    assert _instructions(TRITON, "ENTRYPOINT") == ['["/usr/local/bin/facegate-triton-entrypoint"]']


def _run_entrypoint(
    tmp_path: Path, gpu: str, trt_library: str, *command: str
) -> subprocess.CompletedProcess:
    bin_dir, lib_dir = tmp_path / "bin", tmp_path / f"lib-{trt_library}"
    bin_dir.mkdir(exist_ok=True)
    lib_dir.mkdir(exist_ok=True)
    (lib_dir / trt_library).touch()
    smi = bin_dir / "nvidia-smi"  # prints what the real one prints for --query-gpu=name
    smi.write_text(f"#!/bin/sh\nprintf '%s\\n' '{gpu}' '{gpu}'\n")
    smi.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FACEGATE_TRT_CACHE_ROOT": str(tmp_path / "trt-cache"),
        "FACEGATE_MODELS_CACHE": str(tmp_path / "models_cache"),
        "FACEGATE_TRT_LIB_DIRS": f"{tmp_path / 'absent'} {lib_dir}",
    }
    return subprocess.run(["sh", str(ENTRYPOINT), *command], env=env, capture_output=True,
                          text=True, timeout=30, check=True)


def test_triton_entrypoint_keys_the_engine_cache_by_gpu_model_and_tensorrt_version(tmp_path):
    link = tmp_path / "models_cache" / "trt"
    result = _run_entrypoint(tmp_path, "NVIDIA H100 80GB HBM3", "libnvinfer.so.10.5.0",
                             "sh", "-c", "echo ran \"$@\"", "-", "tritonserver", "--x=1")
    assert result.stdout == "ran tritonserver --x=1\n"  # the command runs, arguments intact
    first = tmp_path / "trt-cache" / "NVIDIA_H100_80GB_HBM3" / "trt-10.5.0"
    assert link.is_symlink() and link.resolve() == first.resolve() and first.is_dir()
    (link / "engine").write_text("built once")

    # The same GPU and TensorRT again (a restart): the same folder, engines kept.
    _run_entrypoint(tmp_path, "NVIDIA H100 80GB HBM3", "libnvinfer.so.10.5.0", "true")
    assert (link / "engine").read_text() == "built once"

    # Another GPU model, then another TensorRT: each gets a fresh folder.
    _run_entrypoint(tmp_path, "NVIDIA L4", "libnvinfer.so.10.5.0", "true")
    assert link.resolve() == (tmp_path / "trt-cache" / "NVIDIA_L4" / "trt-10.5.0").resolve()
    _run_entrypoint(tmp_path, "NVIDIA L4", "libnvinfer.so.10.7.0", "true")
    assert link.resolve() == (tmp_path / "trt-cache" / "NVIDIA_L4" / "trt-10.7.0").resolve()
    assert not (link / "engine").exists()
