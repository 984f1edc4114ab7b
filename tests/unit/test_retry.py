"""The shared backoff: transient faults are waited out, anything else is raised at once."""

from __future__ import annotations

import pytest

from services.runtime.retry import until_done


async def test_a_transient_fault_is_retried_with_growing_delays() -> None:
    calls: list[int] = []
    waits: list[tuple[str, float]] = []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise OSError("refused")
        return "connected"

    result = await until_done(flaky, (OSError,), first=0.001, max_delay=0.002,
                              on_retry=lambda exc, delay: waits.append((str(exc), delay)))
    assert result == "connected"
    assert len(calls) == 4
    assert waits == [("refused", 0.001), ("refused", 0.002), ("refused", 0.002)]


async def test_any_other_fault_is_raised_unchanged_without_retrying() -> None:
    calls: list[int] = []

    async def broken() -> None:
        calls.append(1)
        raise ValueError("a bug, not a fault")

    with pytest.raises(ValueError, match="a bug"):
        await until_done(broken, (OSError,), first=0.001)
    assert len(calls) == 1


async def test_the_longest_wait_can_depend_on_the_fault() -> None:
    class Slow(Exception):
        pass

    faults = [OSError("refused"), Slow("own fault"), Slow("own fault"), OSError("refused")]
    waits: list[tuple[str, float]] = []

    async def flaky() -> str:
        if faults:
            raise faults.pop(0)
        return "done"

    result = await until_done(
        flaky, (OSError, Slow), first=0.001,
        max_delay=lambda exc: 0.003 if isinstance(exc, Slow) else 0.0015,
        on_retry=lambda exc, delay: waits.append((str(exc), delay)))
    assert result == "done"
    assert waits == [("refused", 0.001), ("own fault", 0.002), ("own fault", 0.003),
                     ("refused", 0.0015)]
