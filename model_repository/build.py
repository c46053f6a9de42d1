"""The model builder: pretrained weights in, a servable Triton model repository out.

    python -m model_repository.build [--weights-dir DIR] [--out DIR] [--cache-dir DIR]

For each model of `specs.MODELS` it locates and checks the weight files, builds the ONNX graph
with that model's converter, checks the graph's inputs and outputs against the description,
and writes two repositories that share the ONNX file:

    <out>/native/<model>/config.pbtxt        official Triton container (onnxruntime backend)
    <out>/native/<model>/1/model.onnx
    <out>/native/<model>/1/build_info.json   weights and ONNX checksums, for provenance
    <out>/embedded/<model>/config.pbtxt      embedded tritonserver (python backend)
    <out>/embedded/<model>/1/model.py        `onnx_runner.py`
    <out>/embedded/<model>/1/model.onnx      link to the native file

Builds are reproducible: the same weights give byte-identical ONNX files.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import onnx

from model_repository import detector_onnx, embedder_onnx, liveness_onnx
from model_repository.specs import FACE_DETECTOR_SMALL, MODELS, ModelSpec
from model_repository.triton_config import render
from model_repository.weights import (
    REPO_ROOT,
    WeightsError,
    default_cache_dir,
    default_weights_dir,
    locate,
    sha256_of,
)

LOGGER = logging.getLogger(__name__)

DEFAULT_OUT = REPO_ROOT / "model_repository"
RUNNER = Path(__file__).with_name("onnx_runner.py")

CONVERTERS: dict[str, Callable[..., onnx.ModelProto]] = {
    "face_detector": detector_onnx.build_detector_onnx,
    "face_detector_320": functools.partial(detector_onnx.build_detector_onnx,
                                           spec=FACE_DETECTOR_SMALL),
    "face_embedder": embedder_onnx.build_embedder_onnx,
    "face_liveness": liveness_onnx.build_liveness_onnx,
}

_ONNX_DTYPES = {"uint8": onnx.TensorProto.UINT8, "float32": onnx.TensorProto.FLOAT}


class BuildError(RuntimeError):
    """A built graph does not match its model description."""


def check_graph(model: onnx.ModelProto, spec: ModelSpec) -> None:
    """Raise `BuildError` unless the graph's inputs and outputs are exactly the spec's."""

    def signature(values) -> list[tuple[str, int, list]]:
        result = []
        for value in values:
            tensor = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
            result.append((value.name, tensor.elem_type, dims))
        return result

    def expected(tensors) -> list[tuple[str, int, list]]:
        return [(t.name, _ONNX_DTYPES[t.dtype], [None, *t.dims]) for t in tensors]

    initializers = {init.name for init in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in initializers]
    for kind, got, want in (
        ("inputs", signature(inputs), expected(spec.inputs)),
        ("outputs", signature(model.graph.output), expected(spec.outputs)),
    ):
        if got != want:
            raise BuildError(f"{spec.name}: graph {kind} {got} differ from its description {want}")


def build_model(spec: ModelSpec, weights_dir: Path | None, cache_dir: Path, out: Path) -> Path:
    """Build one model into both repositories; return the ONNX path."""
    started = time.monotonic()
    paths = [locate(weight, weights_dir, cache_dir) for weight in spec.weights]
    model = CONVERTERS[spec.name](*paths)
    check_graph(model, spec)

    version_dir = out / "native" / spec.name / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = version_dir / "model.onnx"
    partial = onnx_path.with_suffix(".onnx.partial")
    partial.write_bytes(model.SerializeToString())
    partial.replace(onnx_path)
    info = {
        "model": spec.name,
        "onnx_sha256": sha256_of(onnx_path),
        "weights": [
            {"name": w.name, "sha256": w.sha256, "source": w.source, "licence": w.licence}
            for w in spec.weights
        ],
    }
    (version_dir / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")

    write_embedded(spec, onnx_path, out / "embedded")
    (out / "native" / spec.name / "config.pbtxt").write_text(render(spec, "native"))
    LOGGER.info(
        "built %s in %.2f s (%.1f MB)",
        spec.name, time.monotonic() - started, onnx_path.stat().st_size / 1e6,
    )
    return onnx_path


def write_embedded(
    spec: ModelSpec, onnx_path: Path, repository: Path, *, dynamic_batching: bool = True
) -> None:
    """Lay out one model for the embedded tritonserver: config, runner, link to the ONNX file."""
    version_dir = repository / spec.name / "1"
    version_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(RUNNER, version_dir / "model.py")
    link = version_dir / "model.onnx"
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(onnx_path, version_dir))
    config = render(spec, "embedded", dynamic_batching=dynamic_batching)
    (repository / spec.name / "config.pbtxt").write_text(config)


def build_all(weights_dir: Path | None, cache_dir: Path, out: Path) -> list[Path]:
    """Build every model of `specs.MODELS`."""
    return [build_model(spec, weights_dir, cache_dir, out) for spec in MODELS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    env_weights = os.environ.get("FACEGATE_WEIGHTS_DIR")
    parser.add_argument(
        "--weights-dir", type=Path,
        default=Path(env_weights) if env_weights else default_weights_dir(),
        help="folder with the weight files no package carries "
             "(FACEGATE_WEIGHTS_DIR; default ../shared/models when it exists)",
    )
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        build_all(args.weights_dir, args.cache_dir, args.out)
    except (WeightsError, BuildError) as error:
        LOGGER.error("model build failed: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
