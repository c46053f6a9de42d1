"""The decoded-pixel budget: reservations held for a request's scope, refused when full."""

from __future__ import annotations

import asyncio

import pytest

from frontend.contract.codes import Code, ContractError
from frontend.service.budget import PixelBudget


async def test_pixels_reserved_in_a_scope_are_given_back_when_it_ends():
    budget = PixelBudget(100)
    async with budget.scope():
        await budget.reserve(60)
        await asyncio.gather(budget.reserve(10), budget.reserve(20))
        assert budget.used_px == 90
    assert budget.used_px == 0


async def test_a_reservation_that_finds_no_room_in_time_is_503():
    budget = PixelBudget(100, wait_s=0.1)
    async with budget.scope():
        await budget.reserve(80)

        async def other() -> None:
            async with budget.scope():
                await budget.reserve(30)

        with pytest.raises(ContractError) as refused:
            await other()
        assert refused.value.code is Code.SERVICE_UNAVAILABLE
    assert budget.used_px == 0


async def test_a_reservation_waits_for_a_scope_that_ends_in_time():
    budget = PixelBudget(100, wait_s=2.0)
    released = asyncio.Event()

    async def holder() -> None:
        async with budget.scope():
            await budget.reserve(80)
            await released.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    async with budget.scope():
        asyncio.get_running_loop().call_later(0.05, released.set)
        await budget.reserve(50)
        assert budget.used_px == 50
    await task


async def test_one_request_larger_than_the_budget_still_fits_alone():
    budget = PixelBudget(100)
    async with budget.scope():
        await budget.reserve(500)
        assert budget.used_px == 100


async def test_outside_a_scope_nothing_is_counted():
    budget = PixelBudget(10)
    await budget.reserve(1000)
    assert budget.used_px == 0
