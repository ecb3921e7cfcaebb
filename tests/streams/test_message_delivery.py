"""``cheap_message_delivery``: faust's fetch loop hands each record to its stream through
``consumer.wait_first(callback(message), consumer.suspend_flow.wait())``. The fix runs a
delivery that finishes at once without tasks, and one that has to wait through faust's
``wait_first`` as before, resumed where it stopped. These drive the consumer's real
``wait_first`` (no broker: the consumer is never started) with deliveries that finish,
wait, fail and are cancelled by a suspended flow. And ``without_monitor``: faust's Monitor
sensor (called four times a record) left out when the app starts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import faust
import pytest

from streams.faust_fixes import cheap_message_delivery, without_monitor


@pytest.fixture
async def consumer() -> AsyncIterator[Any]:
    # built in the running loop: faust's services take the loop current when built
    app = faust.App("test-delivery", broker="kafka://127.0.0.1:1", web_enabled=False,
                    loop=asyncio.get_running_loop())
    original = app.consumer.wait_first
    calls: list[tuple[Any, ...]] = []

    async def counted(*coros: Any, timeout: Any = None) -> Any:  # noqa: ASYNC109
        calls.append(coros)
        return await original(*coros, timeout=timeout)

    app.consumer.wait_first = counted  # type: ignore[method-assign]
    cheap_message_delivery(app)
    consumer: Any = app.consumer
    consumer.faust_calls = calls
    yield consumer


async def test_a_delivery_that_finishes_at_once_takes_no_task(consumer: Any) -> None:
    delivered: list[str] = []

    async def deliver(value: str) -> None:
        delivered.append(value)

    tasks_before = len(asyncio.all_tasks())
    flow = consumer.suspend_flow.wait()
    await consumer.wait_first(deliver("a"), flow)
    assert delivered == ["a"]
    assert flow.cr_frame is None  # closed, not left to warn "never awaited"
    assert consumer.faust_calls == []  # faust's wait_first (four tasks) not used
    assert len(asyncio.all_tasks()) == tasks_before


async def test_a_delivery_that_waits_goes_through_faust_and_resumes(consumer: Any) -> None:
    room: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def deliver() -> str:
        steps.append("before")
        got = await room  # a full stream buffer
        steps.append(f"after {got}")
        await asyncio.sleep(0)  # and a bare yield to the loop
        steps.append("done")
        return got

    waiting = asyncio.ensure_future(
        consumer.wait_first(deliver(), consumer.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    assert steps == ["before"] and not waiting.done()
    assert len(consumer.faust_calls) == 1  # the rest went through faust's wait_first
    room.set_result("room")
    result = await asyncio.wait_for(waiting, 5)
    assert steps == ["before", "after room", "done"]
    assert result.results == ["room"]


async def test_a_suspended_flow_cancels_a_waiting_delivery(consumer: Any) -> None:
    """A rebalance suspends the flow while a delivery waits on a full buffer: faust gives
    the delivery up (cancelled), and the fetch loop goes on."""
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def deliver() -> None:
        try:
            await never
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    waiting = asyncio.ensure_future(
        consumer.wait_first(deliver(), consumer.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    consumer.suspend_flow.set()
    try:
        await asyncio.wait_for(waiting, 5)
    finally:
        consumer.suspend_flow.clear()
    await asyncio.sleep(0.01)  # the cancellation reaches the delivery
    assert seen == ["cancelled"]
    assert never.cancelled()


async def test_a_delivery_that_fails_raises_as_before(consumer: Any) -> None:
    async def at_once() -> None:
        raise ValueError("bad record")

    async def later() -> None:
        await asyncio.sleep(0)
        raise KeyError("later")

    flow = consumer.suspend_flow.wait()
    with pytest.raises(ValueError, match="bad record"):
        await consumer.wait_first(at_once(), flow)
    assert flow.cr_frame is None
    with pytest.raises(KeyError, match="later"):
        await consumer.wait_first(later(), consumer.suspend_flow.wait())


async def test_the_consumers_other_waits_are_fausts(consumer: Any) -> None:
    async def answer() -> int:
        return 42

    result = await consumer.wait(answer())  # mode's wait -> wait_first with one argument
    assert result.result == 42
    assert len(consumer.faust_calls) == 1


async def test_without_monitor_leaves_fausts_monitor_sensor_out() -> None:
    def app_of(name: str) -> faust.App:
        return faust.App(name, broker="kafka://127.0.0.1:1", web_enabled=False,
                         loop=asyncio.get_running_loop())

    stock = app_of("test-monitor-stock")
    list(stock.on_init_dependencies())  # what faust does as the app starts
    assert stock.monitor in set(stock.sensors)

    app = app_of("test-monitor-off")
    without_monitor(app)
    list(app.on_init_dependencies())
    assert app.monitor not in set(app.sensors)
