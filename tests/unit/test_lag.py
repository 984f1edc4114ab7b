"""Consumer lag: high watermark minus committed offset, per partition of the source topics."""

from __future__ import annotations

from collections import namedtuple

from prometheus_client import REGISTRY

from services.runtime.lag import publish_lag

TP = namedtuple("TP", "topic partition")


def _gauge(service: str, topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value("iuran_consumer_lag_messages", {
        "service": service, "topic": topic, "partition": str(partition)})


def test_lag_is_highwater_minus_committed_for_the_source_topics_only() -> None:
    partitions = [TP("src", 0), TP("src", 1), TP("src", 2), TP("changelog", 0)]
    highwater = {TP("src", 0): 120, TP("src", 1): 40, TP("src", 2): None,
                 TP("changelog", 0): 999}
    committed = {TP("src", 0): 100, TP("src", 1): 45}
    total = publish_lag("unit", partitions, highwater.get, committed.get, ["src"])
    assert total == 20
    assert _gauge("unit", "src", 0) == 20
    assert _gauge("unit", "src", 1) == 0  # never negative
    assert _gauge("unit", "src", 2) is None  # nothing fetched yet: no figure
    assert _gauge("unit", "changelog", 0) is None


def test_a_partition_never_committed_counts_from_zero() -> None:
    assert publish_lag("unit2", [TP("src", 0)], lambda tp: 7, lambda tp: None, ["src"]) == 7


def test_positions_are_exported_for_the_partitions_the_consumer_still_holds() -> None:
    from services.runtime.lag import Positions

    assigned = {TP("src", 0), TP("src", 1)}
    positions = Positions("positions-unit", lambda: assigned)
    positions.took(TP("src", 0), 41)
    positions.took(TP("src", 0), 42)
    positions.took(TP("src", 1), 7)

    def sample(partition: int) -> float | None:
        return REGISTRY.get_sample_value("iuran_consumer_position", {
            "service": "positions-unit", "topic": "src", "partition": str(partition)})

    assert (sample(0), sample(1)) == (43, 8)  # the offset after the last record taken
    assigned.discard(TP("src", 1))  # revoked: no figure for it any more
    assert (sample(0), sample(1)) == (43, None)
