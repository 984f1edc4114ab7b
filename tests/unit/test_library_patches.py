"""Canaries of services/runtime/patches.py: each fails when the upgraded library no longer
has the bug a workaround is for, or no longer has the private name it relies on. When one
fails, check whether the workaround is still needed; remove it if not, adapt it if so."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
from types import ModuleType, SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer import consumer as aiokafka_consumer
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as faust_driver

from services.runtime import patches


async def test_faust_still_hard_codes_the_fetch_wait() -> None:
    # the bug: no setting reaches the consumer's fetch_max_wait_ms, Faust passes 1500
    assert "fetch_max_wait_ms=1500," in inspect.getsource(faust_driver)
    settings = [n for n in dir(faust.Settings) if "wait" in n and "fetch" in n]
    assert settings == []
    # the private names the workaround uses
    assert callable(faust_driver.AIOKafkaConsumerThread._create_worker_consumer)
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", fetch_max_wait_ms=1500)
    assert consumer._fetch_max_wait_ms == 1500
    # ...read when the consumer starts, so setting it before start() takes effect
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(
        aiokafka_consumer.AIOKafkaConsumer.start)


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


def _fresh_producer_module() -> ModuleType:
    """faust.transport.producer as the library ships it (the process may have patched the
    imported one already)."""
    spec = importlib.util.find_spec("faust.transport.producer")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
    fresh = _fresh_producer_module()
    # the bug: flush gives up after 0.1 s with a message in flight and one buffered
    sent, buffered = await _flush_two_slow_messages(fresh.ProducerBuffer)
    assert (sent, buffered) == (0, 1)
    # the private names the workaround replaces, and that it fixes the bug
    assert callable(fresh.ProducerBuffer._send_pending)
    monkeypatch.setattr(faust.transport, "producer", fresh)
    patches._flush_means_everything()
    assert fresh.ProducerBuffer._iuran_flush is True
    assert await _flush_two_slow_messages(fresh.ProducerBuffer) == (2, 0)


def test_faust_consumer_still_keeps_committed_offsets() -> None:
    # no public accessor for the committed offsets (seek_to_committed moves the position)
    public = [n for n in dir(FaustConsumer) if "committed" in n and not n.startswith("_")]
    assert public == ["seek_to_committed"]
    # the private mapping the lag report reads, filled by every commit
    app = faust.App(f"canary-{id(public)}", broker="kafka://127.0.0.1:1")
    offsets = patches.committed_offsets(app.consumer)
    assert offsets is app.consumer._committed_offset
    assert offsets[("topic", 0)] is None  # a defaultdict: unknown partitions read None
    assert "self._committed_offset.update(" in inspect.getsource(FaustConsumer)


def _fresh_consumer_module() -> ModuleType:
    """faust.transport.consumer as the library ships it (unpatched)."""
    spec = importlib.util.find_spec("faust.transport.consumer")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _commit_that_fails(consumer_class: type) -> dict[Any, int | None]:
    """What ``_commit_offsets`` leaves in ``_committed_offset`` when the broker refuses the
    commit of offset 7 of a partition last committed at 3."""
    from mode.utils.logging import CompositeLogger

    async def flush() -> None:
        return None

    async def refused(offsets: Any) -> bool:
        return False

    tp = ("iuran.registrations.v1", 0)
    consumer = SimpleNamespace(
        log=CompositeLogger(logging.getLogger("canary"),
                            formatter=lambda *args, **_: args[1] if len(args) > 1 else ""),
        assignment=lambda: {tp}, in_transaction=False, _commit=refused,
        _committed_offset={tp: 3},
        app=SimpleNamespace(producer=SimpleNamespace(flush=flush),
                            monitor=SimpleNamespace(on_tp_commit=lambda offsets: None),
                            tables=SimpleNamespace(on_commit=lambda offsets: None)))
    did_commit = await consumer_class._commit_offsets(consumer, {tp: 7})
    assert did_commit is False
    return dict(consumer._committed_offset)


async def test_faust_still_records_a_failed_commit_as_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh = _fresh_consumer_module()
    tp = ("iuran.registrations.v1", 0)
    # the bug: the refused offset 7 is recorded as committed
    assert await _commit_that_fails(fresh.Consumer) == {tp: 7}
    # the workaround forgets it: the next commit that succeeds sets it again
    monkeypatch.setattr(faust.transport, "consumer", fresh)
    patches._committed_only_when_committed()
    assert fresh.Consumer._iuran_commit_offsets is True
    assert await _commit_that_fails(fresh.Consumer) == {}
