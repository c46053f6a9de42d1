"""Reading PyTorch state-dict files (`.pth` / `.pt`) without torch.

Two container formats exist:

* legacy (torch < 1.6 default): five pickles in a row (magic number, protocol version,
  system info, the state dict, the list of storage keys), followed by every storage's raw
  bytes in the order of that list, each as `<int64 LE element count><data>`;
* zip (torch >= 1.6 default): `<name>/data.pkl` is the state dict pickle, and
  `<name>/data/<key>` holds the raw bytes of storage `key`.

In both, a tensor is pickled as a call of `torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)`, where `storage` is a persistent id `('storage', torch.FloatStorage, key,
location, numel, ...)`. The unpickler here is restricted: it resolves only the few globals a
state dict needs, to local stand-ins, and refuses any other, so loading a file never runs code
named by the file.
"""

from __future__ import annotations

import collections
import io
import logging
import pickle
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LOGGER = logging.getLogger(__name__)

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class TorchWeightsError(ValueError):
    """A file is not a readable torch state dict (malformed, truncated or unsupported)."""


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int
    offset: int = 0


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_: Any) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise TorchWeightsError(f"tensor built from {type(storage).__name__}, not a storage")
    return _TensorRef(storage, int(offset), tuple(map(int, size)), tuple(map(int, stride)))


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only OrderedDict, `_rebuild_tensor_v2` and the typed storage classes."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
        raise TorchWeightsError(f"refusing pickle global {module}.{name}")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TorchWeightsError(f"unsupported persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise TorchWeightsError(f"unsupported storage type {storage_type!r:.80}")
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return _StorageRef(str(key), storage_type.dtype, int(numel))
        _view_key, view_offset, view_numel = view
        return _StorageRef(str(key), storage_type.dtype, int(view_numel), int(view_offset))


def _unpickle(stream: BinaryIO) -> Any:
    return _RestrictedUnpickler(stream).load()


def _materialize(tensor: _TensorRef, buffers: dict[str, np.ndarray]) -> np.ndarray:
    ref = tensor.storage
    if ref.key not in buffers:
        raise TorchWeightsError(f"tensor refers to missing storage {ref.key}")
    flat = buffers[ref.key][ref.offset : ref.offset + ref.numel]
    if len(flat) != ref.numel:
        raise TorchWeightsError(f"storage {ref.key} holds fewer than {ref.numel} elements")
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.size, tensor.stride, strict=True))
    if 0 in tensor.size:
        return np.zeros(tensor.size, flat.dtype)
    if tensor.offset < 0 or min(tensor.stride, default=0) < 0 or last >= len(flat):
        raise TorchWeightsError(f"tensor view runs outside storage {ref.key}")
    strides = tuple(s * flat.itemsize for s in tensor.stride)
    view = np.lib.stride_tricks.as_strided(flat[tensor.offset :], tensor.size, strides)
    return np.array(view)


def _to_arrays(state: Any, buffers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if not isinstance(state, dict):
        raise TorchWeightsError(f"top-level object is a {type(state).__name__}, not a dict")
    arrays = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise TorchWeightsError(f"entry {name!r} is a {type(value).__name__}, not a tensor")
        arrays[str(name)] = _materialize(value, buffers)
    return arrays


def _storage_refs(state: Any) -> dict[str, _StorageRef]:
    if not isinstance(state, dict):
        return {}
    refs = (v.storage for v in state.values() if isinstance(v, _TensorRef))
    return {ref.key: ref for ref in refs}


def _read_legacy(stream: BinaryIO) -> dict[str, np.ndarray]:
    if _unpickle(stream) != _LEGACY_MAGIC:
        raise TorchWeightsError("not a torch file (bad magic number)")
    protocol = _unpickle(stream)
    if protocol != _LEGACY_PROTOCOL:
        raise TorchWeightsError(f"unsupported legacy protocol version {protocol!r}")
    sys_info = _unpickle(stream)
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian")):
        raise TorchWeightsError("only little-endian legacy files are supported")
    state = _unpickle(stream)
    keys = _unpickle(stream)
    refs = _storage_refs(state)
    buffers = {}
    for key in keys:
        if key not in refs:
            raise TorchWeightsError(f"storage {key} is not used by any tensor")
        header = stream.read(8)
        if len(header) != 8:
            raise TorchWeightsError(f"file is truncated before storage {key}")
        (numel,) = struct.unpack("<q", header)
        dtype = refs[key].dtype
        data = stream.read(numel * dtype.itemsize)
        if numel < 0 or len(data) != numel * dtype.itemsize:
            raise TorchWeightsError(f"file is truncated inside storage {key}")
        buffers[key] = np.frombuffer(data, dtype.newbyteorder("<"))
    return _to_arrays(state, buffers)


def _read_zip(archive: zipfile.ZipFile) -> dict[str, np.ndarray]:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise TorchWeightsError("zip archive has no single <name>/data.pkl")
    prefix = pickles[0][: -len("data.pkl")]
    if f"{prefix}byteorder" in archive.namelist():
        if archive.read(f"{prefix}byteorder") != b"little":
            raise TorchWeightsError("only little-endian zip files are supported")
    state = _unpickle(io.BytesIO(archive.read(pickles[0])))
    buffers = {}
    for key, ref in _storage_refs(state).items():
        data = archive.read(f"{prefix}data/{key}")
        usable = len(data) - len(data) % ref.dtype.itemsize
        buffers[key] = np.frombuffer(data[:usable], ref.dtype.newbyteorder("<"))
    return _to_arrays(state, buffers)


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Reads a torch state dict into numpy arrays, without torch and without running code.

    Args:
        path: a file written by `torch.save(model.state_dict(), path)`, in the legacy
            (pre-1.6) or the zip format.

    Returns:
        The tensors by name, in file order, as C-contiguous arrays (names are kept as
        stored, e.g. with the `module.` prefix of `DataParallel`).

    Raises:
        TorchWeightsError: the file is truncated or malformed, holds something other than a
            flat dict of tensors, or names a pickle global outside the allowed few.
        OSError: the file cannot be read.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                arrays = _read_zip(archive)
        else:
            with path.open("rb") as stream:
                arrays = _read_legacy(stream)
    except TorchWeightsError as error:
        raise TorchWeightsError(f"{path}: {error}") from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, KeyError) as error:
        raise TorchWeightsError(f"{path}: malformed or truncated torch file ({error!r})") from error
    except (TypeError, ValueError, AttributeError, IndexError, struct.error) as error:
        raise TorchWeightsError(f"{path}: malformed torch file ({error!r})") from error
    LOGGER.debug("read %d tensors from %s", len(arrays), path)
    return arrays
