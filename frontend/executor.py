"""CPU work off the event loop: the one helper every layer uses to run a function in a pool."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def run_cpu(
    executor: concurrent.futures.Executor | None, function: Callable[..., T], *args: Any,
    **kwargs: Any,
) -> T:
    """Run ``function(*args, **kwargs)`` in `executor` (None: the loop's default pool)."""
    call = functools.partial(function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)
