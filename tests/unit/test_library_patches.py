"""Canaries of services/runtime/patches.py: each runs the library as it ships and fails
when an upgraded library no longer behaves the way a workaround is for (or no longer has
the private name it relies on); each also runs the workaround and checks that it changes
that behaviour. When one fails, check whether the workaround is still needed; remove it if
not, adapt it if so."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from types import ModuleType, SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer import consumer as aiokafka_consumer
from faust.transport.consumer import Consumer as FaustConsumer

from services.runtime import patches


def _fresh(module_name: str) -> ModuleType:
    """A library module as it ships (the process may have patched the imported one)."""
    spec = importlib.util.find_spec(module_name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _worker_consumer(driver: ModuleType) -> AIOKafkaConsumer:
    """The aiokafka consumer Faust's consumer thread builds for an app (no broker needed)."""
    app = faust.App(f"canary-{id(driver)}", broker="kafka://127.0.0.1:1")
    thread = SimpleNamespace(app=app, consumer=SimpleNamespace(in_transaction=False))
    consumer: AIOKafkaConsumer = driver.AIOKafkaConsumerThread._create_worker_consumer(
        thread, app.transport)
    return consumer


class _FetcherBuilt(Exception):
    """Raised by the canary's Fetcher once it has seen what the consumer passes it."""


async def _fetch_wait_at_start(consumer: AIOKafkaConsumer,
                               monkeypatch: pytest.MonkeyPatch) -> int:
    """The fetch_max_wait_ms the consumer hands its fetcher when it starts."""
    seen: dict[str, Any] = {}

    def fetcher(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise _FetcherBuilt

    async def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(aiokafka_consumer, "Fetcher", fetcher)
    monkeypatch.setattr(consumer._client, "bootstrap", nothing)
    monkeypatch.setattr(consumer, "_wait_topics", nothing)
    with pytest.raises(_FetcherBuilt):
        await consumer.start()
    wait: int = seen["fetch_max_wait_ms"]
    return wait


async def test_faust_still_hard_codes_the_fetch_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    driver = _fresh("faust.transport.drivers.aiokafka")
    # the bug: the consumer Faust builds waits 1500 ms per fetch, and no setting changes it
    assert _worker_consumer(driver)._fetch_max_wait_ms == 1500
    assert [n for n in dir(faust.Settings) if "wait" in n and "fetch" in n] == []
    # the workaround: the consumer Faust builds waits what iuran asks for...
    monkeypatch.setattr(faust.transport.drivers, "aiokafka", driver)
    patches._bound_fetch_wait(50)
    consumer = _worker_consumer(driver)
    assert consumer._fetch_max_wait_ms == 50
    # ...and aiokafka reads it when the consumer starts, so its fetcher waits that long
    assert await _fetch_wait_at_start(consumer, monkeypatch) == 50


class _SlowChannel:
    """Hands a message over in 0.3 s (longer than the 0.1 s the buffer's flush waits)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.both_sent = asyncio.Event()

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(0.3)
        self.sent.append(fut)
        if len(self.sent) == 2:
            self.both_sent.set()


async def _flush_two_slow_messages(buffer_class: type) -> tuple[int, int]:
    """(messages handed over, messages still buffered) when flush returned."""
    buffer = buffer_class()
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
    channel = _SlowChannel()
    await buffer.start()
    try:
        for _ in range(2):
            buffer.put(SimpleNamespace(message=SimpleNamespace(channel=channel)))
        await asyncio.sleep(0)  # the buffer's task takes the first message
        await buffer.flush()
        outcome = len(channel.sent), buffer.size
        await asyncio.wait_for(channel.both_sent.wait(), 5)  # the rest goes before stop
    finally:
        await buffer.stop()
    return outcome


async def test_faust_buffer_flush_still_returns_before_the_buffer_is_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh = _fresh("faust.transport.producer")
    # the bug: flush gives up after 0.1 s with a message in flight and one buffered
    sent, buffered = await _flush_two_slow_messages(fresh.ProducerBuffer)
    assert (sent, buffered) == (0, 1)
    # the private names the workaround replaces, and that it fixes the bug
    assert callable(fresh.ProducerBuffer._send_pending)
    monkeypatch.setattr(faust.transport, "producer", fresh)
    patches._flush_means_everything()
    assert fresh.ProducerBuffer._iuran_flush is True
    assert await _flush_two_slow_messages(fresh.ProducerBuffer) == (2, 0)


async def test_faust_consumer_still_keeps_committed_offsets() -> None:
    # no public accessor for the committed offsets (seek_to_committed moves the position)
    public = [n for n in dir(FaustConsumer) if "committed" in n and not n.startswith("_")]
    assert public == ["seek_to_committed"]
    # the private mapping committed_offsets reads...
    app = faust.App(f"canary-{id(public)}", broker="kafka://127.0.0.1:1")
    offsets = patches.committed_offsets(app.consumer)
    assert offsets is app.consumer._committed_offset
    assert offsets[("topic", 0)] is None  # a defaultdict: unknown partitions read None
    # ...is what a commit the broker took fills
    tp = ("iuran.registrations.v1", 0)
    assert await _commit(_fresh("faust.transport.consumer").Consumer, accepted=True) == {tp: 7}


async def _commit(consumer_class: type, *, accepted: bool) -> dict[Any, int | None]:
    """What ``_commit_offsets`` leaves in ``_committed_offset`` when the broker takes (or
    refuses) the commit of offset 7 of a partition last committed at 3."""
    from mode.utils.logging import CompositeLogger

    async def flush() -> None:
        return None

    async def commit(offsets: Any) -> bool:
        return accepted

    tp = ("iuran.registrations.v1", 0)
    consumer = SimpleNamespace(
        log=CompositeLogger(logging.getLogger("canary"),
                            formatter=lambda *args, **_: args[1] if len(args) > 1 else ""),
        assignment=lambda: {tp}, in_transaction=False, _commit=commit,
        _committed_offset={tp: 3},
        app=SimpleNamespace(producer=SimpleNamespace(flush=flush),
                            monitor=SimpleNamespace(on_tp_commit=lambda offsets: None),
                            tables=SimpleNamespace(on_commit=lambda offsets: None)))
    did_commit = await consumer_class._commit_offsets(consumer, {tp: 7})
    assert did_commit is accepted
    return dict(consumer._committed_offset)


async def test_faust_still_records_a_failed_commit_as_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh = _fresh("faust.transport.consumer")
    tp = ("iuran.registrations.v1", 0)
    # the bug: the refused offset 7 is recorded as committed
    assert await _commit(fresh.Consumer, accepted=False) == {tp: 7}
    # the workaround forgets it: the next commit that succeeds sets it again
    monkeypatch.setattr(faust.transport, "consumer", fresh)
    patches._committed_only_when_committed()
    assert fresh.Consumer._iuran_commit_offsets is True
    assert await _commit(fresh.Consumer, accepted=False) == {}
