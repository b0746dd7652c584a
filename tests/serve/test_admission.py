"""Admission: at most max_concurrency running, max_queue waiting, the rest refused; every
place given back however the request ends."""

from __future__ import annotations

import asyncio

import pytest

from matrix_align.serve.admission import Admission
from matrix_align.serve.api_errors import APIError


async def test_slots_then_queue_then_503() -> None:
    admission = Admission(max_concurrency=2, max_queue=1)
    tickets = [admission.enter() for _ in range(3)]
    with pytest.raises(APIError) as caught:
        admission.enter()
    assert caught.value.status == 503 and caught.value.headers["Retry-After"] == "1"

    await tickets[0].__aenter__()
    await tickets[1].__aenter__()
    waiter = asyncio.create_task(tickets[2].__aenter__())
    await asyncio.sleep(0)
    assert (admission.running, admission.waiting) == (2, 1) and not waiter.done()

    tickets[0].close()  # a slot frees: the queued one runs
    await waiter
    assert (admission.running, admission.waiting, admission.peak) == (2, 0, 2)
    for ticket in tickets:
        ticket.close()
        ticket.close()  # closing twice gives back nothing twice
    assert (admission.running, admission.waiting) == (0, 0)


async def test_a_request_cancelled_while_queued_gives_its_place_back() -> None:
    admission = Admission(max_concurrency=1, max_queue=1)
    first, second = admission.enter(), admission.enter()
    await first.__aenter__()
    waiter = asyncio.create_task(second.__aenter__())
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (admission.running, admission.waiting) == (1, 0)
    first.close()
    third = admission.enter()  # the slot is really free: no wait
    await asyncio.wait_for(third.__aenter__(), 5)
    third.close()
    assert (admission.running, admission.waiting) == (0, 0)


async def test_a_place_never_used_is_given_back() -> None:
    admission = Admission(max_concurrency=1, max_queue=0)
    ticket = admission.enter()
    with pytest.raises(APIError):
        admission.enter()
    ticket.close()
    admission.enter().close()
    assert (admission.running, admission.waiting) == (0, 0)
