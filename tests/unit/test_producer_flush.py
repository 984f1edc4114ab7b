"""Faust's producer-buffer flush, as iuran patches it (services.runtime.patches):
it waits for every message buffered before it started, and it returns under a steady
stream that never leaves the buffer empty (else no offset would be committed)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.producer import ProducerBuffer

from services.runtime.patches import _flush_means_everything


class _Channel:
    def __init__(self) -> None:
        self.published: list[int] = []

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(0.005)  # handing a message over takes a while
        self.published.append(fut.number)


def _message(channel: _Channel, number: int) -> Any:
    return SimpleNamespace(number=number, message=SimpleNamespace(channel=channel))


async def test_flush_returns_under_a_steady_stream_after_what_was_buffered() -> None:
    _flush_means_everything()
    buffer = ProducerBuffer()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    channel = _Channel()
    await buffer.start()
    numbers = iter(range(1_000_000))
    stop = asyncio.Event()

    async def feed() -> None:  # faster than the buffer drains: it is never empty
        while not stop.is_set():
            buffer.put(_message(channel, next(numbers)))
            buffer.put(_message(channel, next(numbers)))
            await asyncio.sleep(0.005)

    feeder = asyncio.create_task(feed())
    try:
        await asyncio.sleep(0.2)
        assert buffer.size > 0
        last_before = max(channel.published, default=-1) + buffer.size + 1
        await asyncio.wait_for(buffer.flush(), timeout=20)
        assert set(range(last_before)) <= set(channel.published)
        assert buffer.size > 0  # it returned although the stream goes on
    finally:
        stop.set()
        await feeder
        await asyncio.wait_for(buffer.flush(), timeout=20)
        await buffer.stop()
