"""A budget of decoded pixels across the requests in progress, so small files can't claim GBs.

A 116 KB PNG can declare 8192 x 4880 pixels, 120 MB once decoded (and about three times that
while Pillow, numpy and OpenCV hand it on). Before a photo or video is decoded, its request
reserves the pixels it will hold (`PixelBudget.reserve`); they are given back when the
request ends (`PixelBudget.scope`, opened around each request). A reservation waits up to
`wait_s` for others to finish, then the request is refused with 503 (retryable): memory
stays bounded whatever arrives at once. A request that held many pixels hands the freed heap
back to the system as it ends (glibc's ``malloc_trim``): without it a burst of large photos
left hundreds of MB with the process.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from frontend.contract.codes import Code, ContractError

TRIM_AFTER_PX = 4_000_000
"""A request that held this many pixels or more trims the heap when it ends."""

try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL("libc.so.6")
except OSError:  # not glibc: nothing to trim
    _LIBC = None

_HELD: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "facegate_pixels_held", default=None
)


class PixelBudget:
    """Args:
    capacity_px: pixels decoded and held at once, over every request.
    wait_s: how long a reservation may wait for room before the request is refused.
    """

    def __init__(self, capacity_px: int, wait_s: float = 2.0) -> None:
        self.capacity_px = capacity_px
        self.wait_s = wait_s
        self.used_px = 0
        self._room = asyncio.Condition()

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[None]:
        """One request: everything it reserves inside is given back when the block ends."""
        held: list[int] = []
        token = _HELD.set(held)
        try:
            yield
        finally:
            _HELD.reset(token)
            if held:
                async with self._room:
                    self.used_px -= sum(held)
                    self._room.notify_all()
                if sum(held) >= TRIM_AFTER_PX and _LIBC is not None:
                    _LIBC.malloc_trim(0)

    async def reserve(self, pixels: int) -> None:
        """Hold `pixels` until the request's scope ends; outside a scope nothing is counted
        (the in-process tools).

        Raises:
            ContractError(503): no room within `wait_s`.
        """
        held = _HELD.get()
        if held is None:
            return
        pixels = min(pixels, self.capacity_px)  # one request alone always fits
        async with self._room:
            try:
                await asyncio.wait_for(
                    self._room.wait_for(lambda: self.used_px + pixels <= self.capacity_px),
                    self.wait_s,
                )
            except TimeoutError as error:
                raise ContractError(
                    Code.SERVICE_UNAVAILABLE,
                    f"{pixels} px to decode, {self.used_px} of {self.capacity_px} in use",
                ) from error
            self.used_px += pixels
            held.append(pixels)
