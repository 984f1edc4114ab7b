"""Consumer lag per topic and partition: the partition's high watermark (as the last fetch
saw it) minus the offset the group committed; and each process's position (the offset after
the last record it took), so that the work a process holds and has not committed shows.

The high watermark is taken from fetch responses rather than a ListOffsets request: the
embedded broker answers ListOffsets(latest) wrongly, fetch responses carry the right value,
and Kafka answers both alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily

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


class Positions:
    """The offset after the last record this process took, per topic partition, exported
    as iuran_consumer_position (read when Prometheus scrapes, for the partitions the
    consumer still has)."""

    def __init__(self, service: str, assigned: Callable[[], Iterable[Any]]) -> None:
        self.service = service
        self.assigned = assigned
        self.taken: dict[Any, int] = {}
        _COLLECTOR.trackers.append(self)

    def took(self, tp: Any, offset: int) -> None:
        """The record at ``offset`` of ``tp`` was taken for processing."""
        self.taken[tp] = offset + 1

    def samples(self) -> Iterator[tuple[list[str], int]]:
        assigned = set(self.assigned())
        for tp, offset in sorted(self.taken.items()):
            if tp in assigned:
                yield [self.service, tp.topic, str(tp.partition)], offset


class _PositionCollector:
    """One collector per process for every :class:`Positions` of it."""

    def __init__(self) -> None:
        self.trackers: list[Positions] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "iuran_consumer_position",
            "The offset after the last record this process took, per assigned topic and "
            "partition; minus the group's committed offset, the work it has not committed.",
            labels=["service", "topic", "partition"])
        for tracker in self.trackers:
            try:
                for labels, offset in tracker.samples():
                    family.add_metric(labels, offset)
            except Exception:  # a consumer between two assignments: none this scrape
                log.debug("positions not read", exc_info=True)
        yield family


_COLLECTOR = _PositionCollector()
REGISTRY.register(_COLLECTOR)
