"""Where the services' CPU work runs and how their stages are timed, given once to every service.

The event loop only waits: decoding, alignment, crops and quality measures run in a bounded
pool (`Stages.cpu`). Each pipeline stage is timed in one place (`Stages.timed`), reported to
one observer (the server's: `frontend.api.metrics.Metrics.observe_stage`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

ObserveStage = Callable[[str, float], None]
"""Called with a stage's name and its seconds."""


def ignore_stage(stage: str, seconds: float) -> None:
    """The observer of a caller that does not time stages."""


@dataclass(frozen=True)
class Stages:
    """Attributes:
    executor: the pool for CPU work (None: the event loop's default pool).
    observe: told each stage's wall time.
    """

    executor: concurrent.futures.Executor | None = None
    observe: ObserveStage = ignore_stage

    async def cpu(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in the pool, awaited."""
        call = functools.partial(function, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.executor, call)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Report the wall time of the ``with`` block as `stage`, whether it returns or raises."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.observe(stage, time.perf_counter() - started)
