"""Which requests are served now: counted by what they cost, refused fast beyond capacity.

A request is admitted only once its body has arrived (a slow sender holds no slot while it
trickles), and only while both the number of requests in progress and their summed cost stay
within the configured capacity. Costs are in photo units, from the measured CPU per request
(`benchmarks/README.md`): one photo 1, a liveness_file 8 (up to 30 frames), a video 16. Beyond
capacity the answer is 503 with ``Retry-After: 1`` at once, never a queue. Photos together
hold at most `CHEAP_SHARE` of the cost budget (less where the costliest request would not fit
beside them), so a video finds room too. Among the costly requests, the kind (by cost) refused
first gets the next room (`WAITING_S`): a client that resends the moment its answer arrives
would otherwise keep the room from every client that waits its Retry-After (liveness files
were served 0-0.08/s beside videos under overload). A request that finds no room when its
headers arrive is refused before its body is read (`Admission.check`): reading and parsing
megabytes of form data only to refuse them cost so much under overload that the admitted
requests starved (`benchmarks/load/overload.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
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
WAITING_S = 2.5
"""A costly kind of request refused within this long is still waiting for room (its clients
come back after ``Retry-After: 1``); one refused longer ago has gone and holds nothing up."""


class Admission:
    """Args:
    max_requests: requests in progress at once.
    max_cost: their summed cost at once.
    costliest: the largest cost an endpoint has: photos leave at least that much of the
        budget, or a video with its reference photo (17) would never fit beside 48 units of
        photos.
    clock: seconds, for `WAITING_S`.
    """

    def __init__(self, max_requests: int, max_cost: int, *, costliest: int = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_requests = max_requests
        self.max_cost = max_cost
        self.cheap_room = CHEAP_SHARE * max_cost
        if costliest < max_cost:
            self.cheap_room = min(self.cheap_room, max_cost - costliest)
        self.requests = 0
        self.cost = 0
        self.cheap_cost = 0
        self.closed = False
        self.clock = clock
        self._waiting: dict[int, tuple[float, float]] = {}
        """costly kind (its cost) -> its first and its latest refusal since it was last admitted"""

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
        now = self.clock()
        if (self.requests >= self.max_requests or self.cost + cost > max(self.max_cost, cost)
                or (cost < CHEAP_BELOW and self.cheap_cost + cost > max(self.cheap_room, cost))
                or self._held_for_another(cost, now)):
            if cost >= CHEAP_BELOW:
                self._waiting[cost] = (self._first_refused(cost, now), now)
            raise ContractError(
                Code.SERVICE_UNAVAILABLE,
                f"at capacity: {self.requests} requests of cost {self.cost} in progress",
            )

    def _held_for_another(self, cost: int, now: float) -> bool:
        """The room this costly request would take is kept for another kind of costly request
        that was refused before it, still comes back, and fits once the costly requests now
        running end (a kind that needs more than the photos leave holds nothing up)."""
        if cost < CHEAP_BELOW:
            return False
        mine = self._first_refused(cost, now)
        free_after = self.max_cost - self.cost - cost
        return any(
            self._first_refused(kind, now) < mine and free_after < kind
            and kind <= self.max_cost - self.cheap_cost
            for kind in self._waiting if kind != cost
        )

    def _first_refused(self, kind: int, now: float) -> float:
        """When this kind was first refused since it was last admitted: now, if it was not, or
        if its clients stopped coming back (no refusal for `WAITING_S`)."""
        first, latest = self._waiting.get(kind, (now, now))
        return first if now - latest <= WAITING_S else now

    @contextmanager
    def admit(self, cost: int) -> Iterator[None]:
        """Hold capacity for one request of this cost while the block runs.

        Raises:
            ContractError(503): no room for it now.
        """
        self.check(cost)
        self._waiting.pop(cost, None)
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
