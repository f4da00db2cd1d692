"""ModelGate: a global cap on watch model calls, round-robin between keys, interactive calls first."""

from __future__ import annotations

import asyncio

from livesight.watches.gate import ModelGate


async def test_cap_and_round_robin_between_keys() -> None:
    gate = ModelGate(1)
    order: list[str] = []

    async def call(owner: str) -> None:
        await gate.acquire(owner)
        order.append(owner)
        await asyncio.sleep(0)
        gate.release()

    await gate.acquire("first")  # holds the only slot while the others queue
    tasks = [asyncio.create_task(call(o)) for o in ["a"] * 5 + ["b"]]
    await asyncio.sleep(0.01)
    assert gate.running == 1 and gate.waiting == 6
    gate.release()
    await asyncio.gather(*tasks)
    # key b waited behind five calls of key a but goes second, not last
    assert order == ["a", "b", "a", "a", "a", "a"]
    assert gate.running == 0 and gate.waiting == 0


async def test_interactive_calls_go_first() -> None:
    gate = ModelGate(2)
    started: list[str] = []

    async def watch_call(name: str) -> None:
        await gate.acquire("k")
        started.append(name)
        gate.release()

    async with gate.interactive():
        task = asyncio.create_task(watch_call("w"))
        await asyncio.sleep(0.01)
        assert started == [] and gate.waiting == 1  # a free slot, but an interactive call is in flight
    await asyncio.wait_for(task, 1)
    assert started == ["w"]


async def test_a_cancelled_waiter_frees_its_place() -> None:
    gate = ModelGate(1)
    await gate.acquire("x")
    waiter = asyncio.create_task(gate.acquire("y"))
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert gate.waiting == 0
    gate.release()
    await asyncio.wait_for(gate.acquire("z"), 1)
    assert gate.running == 1
