"""``python -m frontend``: start facegate (and the embedded Triton unless FACEGATE_TRITON_URL is
set)."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import sys

from deploy.embedded_triton import TritonStartError
from frontend.api import logs
from frontend.api.app import create_app
from frontend.api.serve import serve
from frontend.config import Settings, SettingsError

MANUAL_SAMPLE_KEY = "dcbbad6765e14139a07d34b92292a672"


_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8


def _return_freed_memory() -> None:
    """Let glibc give decoded photos' memory back to the system when they are freed.

    By default glibc raises its mmap threshold after large frees, so later photo-sized buffers
    come from the heap and stay with the process (a burst of large photos left 775 MB held);
    a fixed threshold keeps every buffer over 1 MiB in its own mapping, and two arenas stop
    each worker thread from keeping a heap of its own.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc
    libc.mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)
    libc.mallopt(_M_ARENA_MAX, 2)


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"facegate: bad configuration: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format)
    _return_freed_memory()
    try:
        app = create_app(settings)
    except SettingsError as error:
        print(f"facegate: bad configuration: {error}", file=sys.stderr)
        return 2
    if settings.aes_key.split(",")[0].strip() == MANUAL_SAMPLE_KEY:
        logging.getLogger("facegate").warning(
            "FACEGATE_AES_KEY is the SenseID manual's published sample key: development only"
        )
    try:
        asyncio.run(serve(app, settings))
    except TritonStartError as error:
        logging.getLogger("facegate").error("embedded Triton did not start: %s", error)
        return 1
    except SettingsError as error:
        print(f"facegate: bad configuration: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
