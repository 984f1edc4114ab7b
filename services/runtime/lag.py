"""Consumer lag per topic and partition: the partition's high watermark (as the last fetch
saw it) minus the offset the group committed.

The high watermark is taken from fetch responses rather than a ListOffsets request: the
embedded broker answers ListOffsets(latest) wrongly, fetch responses carry the right value,
and Kafka answers both alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from services.runtime import metrics
from services.runtime.patches import committed_offsets

log = logging.getLogger(__name__)


def publish_lag(
    service: str,
    partitions: Iterable[Any],
    highwater: Callable[[Any], int | None],
    committed: Callable[[Any], int | None],
    topics: Iterable[str],
) -> int:
    """Set iuran_consumer_lag_messages for each assigned partition; returns the total."""
    wanted = set(topics)
    total = 0
    for tp in partitions:
        if tp.topic not in wanted:
            continue
        end = highwater(tp)
        if end is None:
            continue
        behind = max(end - (committed(tp) or 0), 0)
        metrics.CONSUMER_LAG.labels(service, tp.topic, str(tp.partition)).set(behind)
        total += behind
    return total


def install_faust_lag(app: Any, service: str, topics: list[str], every: float = 10.0) -> None:
    """A Faust timer that reports the lag of the app's consumer on its source topics."""

    @app.timer(every)  # type: ignore[untyped-decorator]  # app is Any here
    async def _report_lag() -> None:
        consumer = app.consumer
        committed = committed_offsets(consumer)
        try:
            publish_lag(service, consumer.assignment(), consumer.highwater, committed.get,
                        topics)
        except Exception:  # never let reporting disturb processing
            log.debug("lag report skipped", exc_info=True)
