from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LivenessFile(_message.Message):
    __slots__ = ("format_version", "frames", "capture")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    frames: _containers.RepeatedCompositeFieldContainer[Frame]
    capture: CaptureInfo
    def __init__(self, format_version: _Optional[int] = ..., frames: _Optional[_Iterable[_Union[Frame, _Mapping]]] = ..., capture: _Optional[_Union[CaptureInfo, _Mapping]] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("jpeg", "timestamp_ms")
    JPEG_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    jpeg: bytes
    timestamp_ms: int
    def __init__(self, jpeg: _Optional[bytes] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class CaptureInfo(_message.Message):
    __slots__ = ("sdk", "device", "started_at_unix_ms", "source")
    SDK_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    sdk: str
    device: str
    started_at_unix_ms: int
    source: str
    def __init__(self, sdk: _Optional[str] = ..., device: _Optional[str] = ..., started_at_unix_ms: _Optional[int] = ..., source: _Optional[str] = ...) -> None: ...
