"""Which requests are served now: counted by what they cost, refused fast beyond capacity.

A request is admitted only once its body has arrived (a slow sender holds no slot while it
trickles), and only while both the number of requests in progress and their summed cost stay
within the configured capacity. Costs are in photo units, from the measured CPU per request
(`benchmarks/README.md`): one photo 1, a liveness_file 8 (up to 30 frames), a video 16. Beyond
capacity the answer is 503 with ``Retry-After: 1`` at once, never a queue. Photos together
hold at most `CHEAP_SHARE` of the cost budget, so a video finds room too. A request that finds
no room when its headers arrive is refused before its body is read (`Admission.check`): reading
and parsing megabytes of form data only to refuse them cost so much under overload that the
admitted requests starved (`benchmarks/load/overload.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

from aiohttp import web

from frontend.api.body import RawFields, read_fields
from frontend.contract.codes import Code, ContractError

CHEAP_BELOW = 8
"""Requests costing less (photos) are the cheap class; a liveness_file or a video is costly."""
CHEAP_SHARE = 0.75
"""The share of the cost budget the cheap class may hold at once: the rest stays for costly
requests, which would otherwise never find their units free under a flood of photos
(`benchmarks/load/overload.py`)."""


class Admission:
    """Args:
    max_requests: requests in progress at once.
    max_cost: their summed cost at once.
    """

    def __init__(self, max_requests: int, max_cost: int) -> None:
        self.max_requests = max_requests
        self.max_cost = max_cost
        self.requests = 0
        self.cost = 0
        self.cheap_cost = 0
        self.closed = False

    def close(self) -> None:
        """Draining: every new request is refused (503) from now on."""
        self.closed = True

    def check(self, cost: int) -> None:
        """Refuse now if a request of this cost would find no room (nothing is held).

        Raises:
            ContractError(503): no room for it now.
        """
        if self.closed:
            raise ContractError(Code.SERVICE_UNAVAILABLE, "draining: the server is stopping")
        cheap_room = CHEAP_SHARE * self.max_cost
        if (self.requests >= self.max_requests or self.cost + cost > max(self.max_cost, cost)
                or (cost < CHEAP_BELOW and self.cheap_cost + cost > max(cheap_room, cost))):
            raise ContractError(
                Code.SERVICE_UNAVAILABLE,
                f"at capacity: {self.requests} requests of cost {self.cost} in progress",
            )

    @contextmanager
    def admit(self, cost: int) -> Iterator[None]:
        """Hold capacity for one request of this cost while the block runs.

        Raises:
            ContractError(503): no room for it now.
        """
        self.check(cost)
        cheap = cost if cost < CHEAP_BELOW else 0
        self.requests += 1
        self.cost += cost
        self.cheap_cost += cheap
        try:
            yield
        finally:
            self.requests -= 1
            self.cost -= cost
            self.cheap_cost -= cheap


@dataclass
class Gate:
    """The way into a contract endpoint: the body within its deadline, then admission.

    Attributes:
        admission: capacity by count and cost.
        body_timeout_s: the whole body must arrive within this (408 otherwise).
        max_fields: most fields or parts in a body (1201 beyond).
    """

    admission: Admission
    body_timeout_s: float
    max_fields: int

    @asynccontextmanager
    async def enter(self, request: web.Request, cost: int) -> AsyncIterator[RawFields]:
        """The body's fields, with capacity for `cost` held while the block runs: refused at
        once, before the body is read, when there is no room now; else the body is read
        within its deadline and admitted if there is still room.

        Raises:
            ContractError(503): no room; (408): the body did not arrive in time.
        """
        self.admission.check(cost)
        raw = await self.read(request)
        with self.admission.admit(cost):
            yield raw

    async def read(self, request: web.Request) -> RawFields:
        """The body's fields, read within the deadline.

        Raises:
            ContractError(408): the body did not arrive in time (the connection is closed).
        """
        try:
            async with asyncio.timeout(self.body_timeout_s):
                return await read_fields(request, self.max_fields)
        except TimeoutError as error:
            raise ContractError(
                Code.REQUEST_TIMEOUT, f"body not received within {self.body_timeout_s:g} s"
            ) from error


GATE = web.AppKey("gate", Gate)
