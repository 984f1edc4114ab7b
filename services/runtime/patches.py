"""Workarounds for bugs and missing settings of Faust and aiokafka, one function each.

Each names what it works around (and the upstream issue where one exists), and each has a
canary test in tests/unit/test_library_patches.py that fails when an upgraded library no
longer has the bug or no longer has the private name the workaround relies on, so an
upgrade is noticed, not silent. pyproject.toml pins the versions these were tested on.

- :func:`_bound_fetch_wait`: Faust hard-codes ``fetch_max_wait_ms=1500`` for its consumer
  and has no setting for it (robinhood/faust#281, never merged; still hard-coded in
  faust-streaming). Canary: ``test_faust_still_hard_codes_the_fetch_wait``.
- :func:`_flush_means_everything`: ``ProducerBuffer.flush`` returns while messages are
  still buffered or being handed over (and waiting for an empty buffer instead would never
  return under a steady stream) (no upstream issue found; faust-streaming/faust#273
  added the flush before the commit that this makes complete). Canary:
  ``test_faust_buffer_flush_still_returns_before_the_buffer_is_empty``.
- :func:`_committed_only_when_committed`: ``Consumer._commit_offsets`` records the offsets
  as committed even when the commit failed (faust-streaming/faust#316, fixed upstream by
  faust-streaming/faust#692, in no release up to 0.15.3). Canary:
  ``test_faust_still_records_a_failed_commit_as_committed``.
- :func:`committed_offsets`: Faust keeps the offsets it committed only in the consumer's
  private ``_committed_offset``; the public ``AIOKafkaConsumer.committed`` asks the group
  coordinator once per partition. Canary: ``test_faust_consumer_still_keeps_committed_offsets``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

_fetch_wait = {"ms": 50}


def _bound_fetch_wait(ms: int) -> None:
    """Faust builds its aiokafka consumer with fetch_max_wait_ms=1500 and no setting to
    change it. The embedded broker holds a fetch for most of that wait even when data has
    arrived, which put ~0.4 s on every hop of a quiet stream; Kafka answers as soon as
    fetch_min_bytes are there, so a short wait costs it nothing. The wait is set on the
    consumer Faust created, before it starts."""
    from faust.transport.drivers import aiokafka as driver

    _fetch_wait["ms"] = ms
    thread_class = driver.AIOKafkaConsumerThread
    if getattr(thread_class, "_iuran_fetch_wait", False):
        return
    original = thread_class._create_worker_consumer

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = _fetch_wait["ms"]  # noqa: SLF001
        return consumer

    thread_class._create_worker_consumer = create_worker_consumer  # type: ignore[method-assign]
    thread_class._iuran_fetch_wait = True  # type: ignore[attr-defined]


def _flush_means_everything() -> None:
    """Make Faust's producer-buffer flush wait until every message buffered before it
    started is handed over.

    Before committing offsets Faust flushes its producer, but the buffer that ``send_soon``
    and every table write go through returned from ``flush`` as soon as one message took
    longer than 0.1 s, and did not count the message being handed over at that moment.
    Offsets could then be committed while schedules or changelog records were still in the
    buffer, and a ``kill -9`` lost them for good. Now flush returns once the messages that
    were buffered or in flight when it started are handed over (the buffer is a FIFO; the
    offsets to commit are chosen before the flush, and an event's messages are buffered
    before it is acked, so these include every output of the events committed); if the
    broker is away it waits, and so does the commit (at-least-once). It does not wait for
    the buffer to be empty: under a steady stream it never is, and no commit would come.
    """
    from faust.transport import producer as faust_producer

    buffer_class = faust_producer.ProducerBuffer
    if getattr(buffer_class, "_iuran_flush", False):
        return
    send_pending = buffer_class._send_pending

    async def counted_send_pending(self: Any, fut: Any) -> None:
        self._iuran_in_flight = getattr(self, "_iuran_in_flight", 0) + 1
        try:
            await send_pending(self, fut)
        finally:
            self._iuran_in_flight -= 1
            self._iuran_handed = getattr(self, "_iuran_handed", 0) + 1

    async def flush(self: Any) -> None:
        handed = getattr(self, "_iuran_handed", 0)
        target = handed + self.size + getattr(self, "_iuran_in_flight", 0)
        while getattr(self, "_iuran_handed", 0) < target:
            if self.state != "running" and self.size:
                raise RuntimeError("Cannot flush: Producer not Running")
            self.message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.message_sent.wait(), timeout=0.1)

    buffer_class._send_pending = counted_send_pending  # type: ignore[method-assign]
    buffer_class.flush = flush  # type: ignore[method-assign]
    buffer_class._iuran_flush = True  # type: ignore[attr-defined]


def _committed_only_when_committed() -> None:
    """Forget the committed offset of each partition whose commit failed.

    Faust's ``Consumer._commit_offsets`` writes the offsets it tried into
    ``_committed_offset`` whether or not the broker took them. When a commit fails in a
    rebalance (``UnknownMemberIdError`` after a broker restart, say), the revocation clears
    that mapping and the failed commit's offsets are written back after it: once the
    partitions are assigned again, every event at or below those offsets is refused by
    ``ack`` (it looks committed already), so nothing is committed any more until an event
    beyond them arrives, and the group's lag never reaches zero on a quiet topic. Now a
    commit that did not happen leaves those partitions with no known committed offset (the
    next commit that succeeds sets it), as upstream does since faust-streaming/faust#692.
    """
    from faust.transport import consumer as faust_consumer

    consumer_class = faust_consumer.Consumer
    if getattr(consumer_class, "_iuran_commit_offsets", False):
        return
    commit_offsets = consumer_class._commit_offsets

    async def checked_commit_offsets(self: Any, offsets: Mapping[Any, int],
                                     start_new_transaction: bool = True) -> bool:
        did_commit: bool = await commit_offsets(self, offsets, start_new_transaction)
        if not did_commit:
            for tp in offsets:
                self._committed_offset.pop(tp, None)
        return did_commit

    consumer_class._commit_offsets = checked_commit_offsets  # type: ignore[method-assign]
    consumer_class._iuran_commit_offsets = True  # type: ignore[attr-defined]


def committed_offsets(consumer: Any) -> Mapping[Any, int | None]:
    """The offsets a Faust consumer last committed, per partition (empty when unknown).

    Faust has no public accessor for them; it keeps them in ``Consumer._committed_offset``."""
    committed: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
    return committed


def apply(fetch_wait_ms: int) -> None:
    """Install every workaround (idempotent): call before the Faust app is created."""
    _bound_fetch_wait(fetch_wait_ms)
    _flush_means_everything()
    _committed_only_when_committed()
