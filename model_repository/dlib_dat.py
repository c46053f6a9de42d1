"""Reader for dlib's serialised DNN files (``.dat``), as written by ``dlib::serialize``.

Only what dlib's ResNet face descriptor (``dlib_face_recognition_resnet_model_v1.dat``)
uses is supported: ``loss_metric`` on top of ``fc``, ``con``, ``affine``, ``relu``,
``max_pool``, ``avg_pool``, ``add_prev``, tag and skip layers and an
``input_rgb_image_sized`` input.

File layout (dlib 19.x ``serialize.h`` and ``dnn/core.h``):

* An integer is a control byte (bit 7: negative, low nibble: byte count ``n``)
  followed by ``n`` little-endian magnitude bytes.
* A float is two integers, mantissa then exponent: ``ldexp(mantissa, exponent)``,
  with exponents 32000/32001/32002 meaning +inf/-inf/NaN.
* A bool is one ASCII byte, ``'1'`` or ``'0'``; a string is a length then its bytes.
* A tensor is a version (2), four dimensions ``(n, k, nr, nc)`` and then raw
  little-endian float32 values.
* Every wrapper writes its version and then the network below it, so the file
  starts with the loss layer and the version numbers of all wrappers from the
  output inwards, followed by the input layer and the details of each layer from
  the input outwards. Tag and skip wrappers both write only version 1, so the
  file does not tell them apart, nor record which tag a skip or ``add_prev``
  refers to: the network definition in the C++ source is the only record of that.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path

import numpy as np

LOGGER = logging.getLogger(__name__)

_LOSS_VERSION = 1
_TAG_OR_SKIP_VERSION = 1
_ADD_LAYER_VERSION = 2
_INPUT_ADD_LAYER_VERSION = 3
_TENSOR_VERSION = 2
_ALIAS_TENSOR_VERSION = 1
_FC_NO_BIAS = 1
_FLOAT_SPECIALS = {32000: math.inf, 32001: -math.inf, 32002: math.nan}


class DlibDatError(ValueError):
    """A dlib ``.dat`` file is truncated, malformed or uses an unsupported layer."""


@dataclasses.dataclass(frozen=True)
class InputRGBImage:
    """``input_rgb_image_sized``: planar RGB, ``(pixel - mean_rgb) / 256``.

    Attributes:
        mean_rgb: Per-channel mean subtracted from the 0..255 pixel values.
        rows: Required image height.
        cols: Required image width.
    """

    mean_rgb: tuple[float, float, float]
    rows: int
    cols: int


@dataclasses.dataclass(frozen=True, eq=False)
class Conv:
    """``con_``: 2-D cross-correlation plus bias.

    Attributes:
        weight: float32 filters, shape ``(out_channels, in_channels, rows, cols)``.
        bias: float32, shape ``(out_channels,)``.
        stride: ``(y, x)`` stride.
        padding: ``(y, x)`` zero padding applied on both sides.
    """

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclasses.dataclass(frozen=True, eq=False)
class Affine:
    """``affine_`` in convolutional mode: ``gamma[c] * x + beta[c]`` per channel.

    Attributes:
        gamma: float32, shape ``(channels,)``.
        beta: float32, shape ``(channels,)``.
    """

    gamma: np.ndarray
    beta: np.ndarray


@dataclasses.dataclass(frozen=True)
class Relu:
    """``relu_``: ``max(x, 0)``."""


@dataclasses.dataclass(frozen=True)
class Pool:
    """``max_pool_`` or ``avg_pool_``.

    Attributes:
        kind: ``"max"`` or ``"avg"``.
        window: ``(rows, cols)``; ``(0, 0)`` pools over the whole input.
        stride: ``(y, x)`` stride.
        padding: ``(y, x)`` padding applied on both sides.
    """

    kind: str
    window: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]

    @property
    def is_global(self) -> bool:
        """Whether the window covers the whole input (dlib's ``*_pool_everything``)."""
        return self.window == (0, 0)


@dataclasses.dataclass(frozen=True, eq=False)
class FullyConnected:
    """``fc_``: ``x @ weight (+ bias)`` on the flattened input.

    Attributes:
        weight: float32, shape ``(num_inputs, num_outputs)``.
        bias: float32 of shape ``(num_outputs,)``, or None for ``fc_no_bias``.
    """

    weight: np.ndarray
    bias: np.ndarray | None


@dataclasses.dataclass(frozen=True)
class AddPrev:
    """``add_prev_``: adds a tagged earlier output, zero-padding the smaller one."""


@dataclasses.dataclass(frozen=True)
class TagOrSkip:
    """A ``tag`` or ``skip`` wrapper; the file does not say which, nor its id."""


@dataclasses.dataclass(frozen=True)
class LossMetric:
    """``loss_metric_``: training-only; kept for completeness.

    Attributes:
        margin: Metric-learning margin.
        distance_threshold: Distance under which two faces are the same person.
    """

    margin: float
    distance_threshold: float


Layer = Conv | Affine | Relu | Pool | FullyConnected | AddPrev | TagOrSkip


@dataclasses.dataclass(frozen=True, eq=False)
class DlibNetwork:
    """A parsed dlib network.

    Attributes:
        loss: The loss layer on top.
        input: The input layer.
        layers: The layers from the input to the output, tags and skips included.
    """

    loss: LossMetric
    input: InputRGBImage
    layers: tuple[Layer, ...]

    @property
    def num_parameters(self) -> int:
        """Number of learned values (weights, biases, gammas and betas)."""
        arrays = []
        for layer in self.layers:
            if isinstance(layer, Conv):
                arrays += [layer.weight, layer.bias]
            elif isinstance(layer, Affine):
                arrays += [layer.gamma, layer.beta]
            elif isinstance(layer, FullyConnected):
                arrays += [layer.weight] + ([] if layer.bias is None else [layer.bias])
        return sum(array.size for array in arrays)


class _Reader:
    """Sequential reader of dlib's serialisation primitives over an in-memory file."""

    def __init__(self, data: bytes, path: Path) -> None:
        self._data = data
        self._path = path
        self.offset = 0

    @property
    def at_end(self) -> bool:
        return self.offset == len(self._data)

    def error(self, message: str) -> DlibDatError:
        return DlibDatError(f"{self._path}: {message} (at byte {self.offset} of {len(self._data)})")

    def take(self, count: int, what: str) -> memoryview:
        if count > len(self._data) - self.offset:
            raise self.error(f"truncated file: {what} needs {count} bytes")
        view = memoryview(self._data)[self.offset : self.offset + count]
        self.offset += count
        return view

    def read_int(self) -> int:
        control = self.take(1, "an integer")[0]
        if control & 0x70 or (control & 0x0F) > 8:
            raise self.error(f"bad integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(control & 0x0F, "an integer"), "little")
        return -value if control & 0x80 else value

    def read_float(self) -> float:
        mantissa, exponent = self.read_int(), self.read_int()
        if exponent in _FLOAT_SPECIALS:
            return _FLOAT_SPECIALS[exponent]
        return math.ldexp(mantissa, exponent)

    def read_bool(self) -> bool:
        byte = bytes(self.take(1, "a bool"))
        if byte not in (b"0", b"1"):
            raise self.error(f"bad bool byte {byte!r}")
        return byte == b"1"

    def read_string(self) -> str:
        length = self.read_int()
        if length < 0:
            raise self.error(f"negative string length {length}")
        return bytes(self.take(length, "a string")).decode("latin-1")

    def expect_version(self, expected: int, what: str) -> None:
        version = self.read_int()
        if version != expected:
            raise self.error(f"{what} has version {version}, expected {expected}")

    def read_tensor(self) -> np.ndarray:
        self.expect_version(_TENSOR_VERSION, "tensor")
        shape = tuple(self.read_int() for _ in range(4))
        if min(shape) < 0:
            raise self.error(f"negative tensor dimensions {shape}")
        count = math.prod(shape)
        raw = self.take(4 * count, f"a tensor of shape {shape}")
        return np.frombuffer(raw, dtype="<f4").reshape(shape)

    def read_alias_shape(self) -> tuple[int, ...]:
        self.expect_version(_ALIAS_TENSOR_VERSION, "alias tensor")
        return tuple(self.read_int() for _ in range(4))


def load_dlib_dat(path: Path) -> DlibNetwork:
    """Parses a dlib DNN ``.dat`` file.

    Args:
        path: The ``.dat`` file, e.g. ``dlib_face_recognition_resnet_model_v1.dat``.

    Returns:
        The network. Arrays are read-only float32 views of the file's contents.

    Raises:
        DlibDatError: The file is truncated, malformed, has trailing bytes or uses
            a layer type or version this reader does not support.
        OSError: The file cannot be read.
    """
    path = Path(path)
    started = time.perf_counter()
    reader = _Reader(path.read_bytes(), path)

    reader.expect_version(_LOSS_VERSION, "loss layer wrapper")
    loss = _read_loss(reader)
    wrapper_versions = []
    while (version := reader.read_int()) != _INPUT_ADD_LAYER_VERSION:
        if version not in (_ADD_LAYER_VERSION, _TAG_OR_SKIP_VERSION):
            raise reader.error(f"unsupported layer wrapper version {version}")
        wrapper_versions.append(version)
    input_layer = _read_input(reader)
    layers = [_read_layer(reader)]
    _read_input_wrapper_state(reader)
    for version in reversed(wrapper_versions):
        if version == _TAG_OR_SKIP_VERSION:
            layers.append(TagOrSkip())
        else:
            layers.append(_read_layer(reader))
            _read_wrapper_state(reader)
    if not reader.at_end:
        raise reader.error("unexpected trailing bytes after the network")

    network = DlibNetwork(loss=loss, input=input_layer, layers=tuple(layers))
    LOGGER.debug(
        "Parsed %s: %d layers, %d parameters in %.3f s",
        path,
        len(network.layers),
        network.num_parameters,
        time.perf_counter() - started,
    )
    return network


def _read_loss(reader: _Reader) -> LossMetric:
    name = reader.read_string()
    if name != "loss_metric_2":
        raise reader.error(f"unsupported loss layer {name!r}")
    return LossMetric(margin=reader.read_float(), distance_threshold=reader.read_float())


def _read_input(reader: _Reader) -> InputRGBImage:
    name = reader.read_string()
    if name != "input_rgb_image_sized":
        raise reader.error(f"unsupported input layer {name!r}")
    mean_rgb = (reader.read_float(), reader.read_float(), reader.read_float())
    return InputRGBImage(mean_rgb=mean_rgb, rows=reader.read_int(), cols=reader.read_int())


def _read_wrapper_state(reader: _Reader) -> None:
    """Skips an ``add_layer``'s training state: 3 flags, x_grad, output, params_grad."""
    for _ in range(3):
        reader.read_bool()
    for _ in range(3):
        reader.read_tensor()


def _read_input_wrapper_state(reader: _Reader) -> None:
    """Skips the bottom ``add_layer``'s state: 3 flags, 3 tensors, expansion factor."""
    _read_wrapper_state(reader)
    reader.read_int()


def _read_layer(reader: _Reader) -> Layer:
    name = reader.read_string()
    if name == "con_4":
        return _read_conv(reader)
    if name == "affine_":
        return _read_affine(reader)
    if name == "fc_2":
        return _read_fully_connected(reader)
    if name in ("max_pool_2", "avg_pool_2"):
        window = (reader.read_int(), reader.read_int())
        stride = (reader.read_int(), reader.read_int())
        padding = (reader.read_int(), reader.read_int())
        return Pool(kind=name[:3], window=window, stride=stride, padding=padding)
    if name == "relu_":
        return Relu()
    if name == "add_prev_":
        return AddPrev()
    raise reader.error(f"unsupported layer {name!r}")


def _split_params(
    reader: _Reader, params: np.ndarray, shapes: list[tuple[int, ...]]
) -> list[np.ndarray]:
    """Cuts a layer's flat parameter tensor into consecutive arrays of the given shapes."""
    flat = params.reshape(-1)
    sizes = [math.prod(shape) for shape in shapes]
    if sum(sizes) != flat.size:
        raise reader.error(f"{flat.size} parameters do not fill the shapes {shapes}")
    bounds = np.cumsum([0] + sizes)
    return [
        flat[start:end].reshape(shape)
        for start, end, shape in zip(bounds[:-1], bounds[1:], shapes, strict=True)
    ]


def _read_learning_rate_multipliers(reader: _Reader) -> None:
    for _ in range(4):
        reader.read_float()


def _read_conv(reader: _Reader) -> Conv:
    params = reader.read_tensor()
    num_filters, rows, cols = reader.read_int(), reader.read_int(), reader.read_int()
    stride = (reader.read_int(), reader.read_int())
    padding = (reader.read_int(), reader.read_int())
    filters_shape = reader.read_alias_shape()
    biases_shape = reader.read_alias_shape()
    _read_learning_rate_multipliers(reader)
    if filters_shape[0] != num_filters or filters_shape[2:] != (rows, cols):
        raise reader.error(
            f"conv filters {filters_shape} disagree with {num_filters}x{rows}x{cols}"
        )
    if math.prod(biases_shape) != num_filters:
        raise reader.error(f"conv biases {biases_shape} disagree with {num_filters} filters")
    weight, bias = _split_params(reader, params, [filters_shape, (num_filters,)])
    return Conv(weight=weight, bias=bias, stride=stride, padding=padding)


def _read_affine(reader: _Reader) -> Affine:
    params = reader.read_tensor()
    gamma_shape, beta_shape = reader.read_alias_shape(), reader.read_alias_shape()
    mode = reader.read_int()
    if mode != 0 or gamma_shape != beta_shape or gamma_shape[0] != 1:
        raise reader.error(
            f"unsupported affine layer: mode {mode}, shapes {gamma_shape} {beta_shape}"
        )
    channels = math.prod(gamma_shape)
    gamma, beta = _split_params(reader, params, [(channels,), (channels,)])
    return Affine(gamma=gamma, beta=beta)


def _read_fully_connected(reader: _Reader) -> FullyConnected:
    num_outputs, num_inputs = reader.read_int(), reader.read_int()
    params = reader.read_tensor()
    reader.read_alias_shape()
    reader.read_alias_shape()
    bias_mode = reader.read_int()
    _read_learning_rate_multipliers(reader)
    if bias_mode == _FC_NO_BIAS:
        (weight,) = _split_params(reader, params, [(num_inputs, num_outputs)])
        return FullyConnected(weight=weight, bias=None)
    weight, bias = _split_params(reader, params, [(num_inputs, num_outputs), (num_outputs,)])
    return FullyConnected(weight=weight, bias=bias)
