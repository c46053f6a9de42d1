"""Admission by count and cost, and refusing before the body is read."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from frontend.api.admission import GATE, Admission, Gate
from frontend.api.handlers import contract_handler
from frontend.contract.codes import Code, ContractError
from frontend.contract.fields import FACE_QUALITY


def test_check_refuses_without_holding_anything_and_admit_holds_until_the_block_ends():
    admission = Admission(max_requests=2, max_cost=10)
    admission.check(10)
    assert (admission.requests, admission.cost) == (0, 0)
    with admission.admit(8):
        assert (admission.requests, admission.cost) == (1, 8)
        with pytest.raises(ContractError) as refused:
            admission.check(3)  # 8 + 3 > 10
        assert refused.value.code is Code.SERVICE_UNAVAILABLE
        admission.check(2)
    assert (admission.requests, admission.cost) == (0, 0)


def test_a_request_costlier_than_the_whole_budget_is_admitted_alone():
    admission = Admission(max_requests=4, max_cost=10)
    with admission.admit(16):
        with pytest.raises(ContractError):
            admission.check(1)


async def test_a_request_without_room_is_refused_before_its_body_is_read():
    admission = Admission(max_requests=1, max_cost=64)
    gate = Gate(admission, body_timeout_s=5.0, max_fields=10)
    read = []

    async def body_read(request):
        read.append(request)
        raise AssertionError("the body was read")

    gate.read = body_read
    app = web.Application()
    app[GATE] = gate
    handler = contract_handler(FACE_QUALITY, logic=None, cost=1)
    request = make_mocked_request("POST", FACE_QUALITY.path, app=app,
                                  headers={"Content-Length": "1000000"})
    with admission.admit(1):  # the one slot is taken
        with pytest.raises(ContractError) as refused:
            await handler(request)
    assert refused.value.code is Code.SERVICE_UNAVAILABLE
    assert read == []


def test_photos_leave_a_quarter_of_the_cost_budget_for_a_liveness_file_or_a_video():
    admission = Admission(max_requests=64, max_cost=64)
    held = [admission.admit(2) for _ in range(24)]  # 24 image_verifications: 48 units
    for block in held:
        block.__enter__()
    with pytest.raises(ContractError):
        admission.check(1)  # photos hold their whole share
    admission.check(16)  # a video still finds its units
    with admission.admit(16):
        assert admission.cost == 64
    for block in held:
        block.__exit__(None, None, None)
    assert (admission.requests, admission.cost, admission.cheap_cost) == (0, 0, 0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _hold(admission: Admission, cost: int, count: int = 1) -> list:
    blocks = [admission.admit(cost) for _ in range(count)]
    for block in blocks:
        block.__enter__()
    return blocks


def test_the_costly_kind_refused_first_gets_the_next_room_not_the_client_that_asks_first():
    clock = Clock()
    admission = Admission(max_requests=64, max_cost=64, clock=clock)
    photos = _hold(admission, 2, 24)  # photos hold their 48 units
    video = _hold(admission, 16)  # a video holds the other 16
    with pytest.raises(ContractError):
        admission.check(9)  # a liveness_file finds no room: it waits from now
    clock.now += 0.5
    video[0].__exit__(None, None, None)  # the video ends; its client asks again at once
    with pytest.raises(ContractError):
        admission.check(16)  # the room is kept for the liveness_file
    clock.now += 0.5
    with admission.admit(9):  # the liveness_file's client, back after its Retry-After
        with pytest.raises(ContractError):
            admission.check(9)  # only 7 units left
    clock.now += 0.5
    with pytest.raises(ContractError):
        admission.check(9)  # a second liveness_file now waits behind the video refused before
    admission.check(16)  # the video, refused first, gets the room
    for block in photos:
        block.__exit__(None, None, None)


def test_a_kind_whose_clients_stopped_coming_back_holds_nothing_up():
    clock = Clock()
    admission = Admission(max_requests=64, max_cost=64, clock=clock)
    video = _hold(admission, 16, 4)  # all 64 units
    with pytest.raises(ContractError):
        admission.check(9)
    clock.now += 3.0  # no liveness_file for longer than WAITING_S
    video[0].__exit__(None, None, None)
    admission.check(16)


def test_a_kind_that_needs_more_than_the_photos_leave_holds_nothing_up():
    clock = Clock()
    admission = Admission(max_requests=64, max_cost=64, clock=clock)
    photos = _hold(admission, 2, 24)  # 48 units: 16 left for every costly request
    with pytest.raises(ContractError):
        admission.check(17)  # a silent_image_verification needs 17: it cannot fit now
    admission.check(16)  # so a video is not kept waiting for it
    admission.check(9)
    for block in photos:
        block.__exit__(None, None, None)


def test_photos_leave_room_for_the_costliest_request_beside_them():
    admission = Admission(max_requests=64, max_cost=64, costliest=17)
    photos = _hold(admission, 1, 47)
    with pytest.raises(ContractError):
        admission.check(1)  # 47 units of photos: 17 stay for a video with its photo
    admission.check(17)
    for block in photos:
        block.__exit__(None, None, None)
