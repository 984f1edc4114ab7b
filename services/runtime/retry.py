"""The one way iuran waits out a transient fault: exponential backoff with tenacity."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential

T = TypeVar("T")
MaxDelay = float | Callable[[BaseException], float]

FIRST_DELAY_SECONDS = 0.2
MAX_DELAY_SECONDS = 5.0


def backoff(
    retry_on: tuple[type[BaseException], ...],
    *,
    on_retry: Callable[[BaseException, float], None] | None = None,
    first: float = FIRST_DELAY_SECONDS,
    max_delay: MaxDelay = MAX_DELAY_SECONDS,
) -> AsyncRetrying:
    """Retry forever while the call raises one of ``retry_on``, waiting ``first`` seconds,
    then twice as long each time up to ``max_delay`` (a number, or a function of the
    exception that was raised: some faults deserve a longer wait than others).
    ``on_retry(exc, delay)`` runs before each wait (to log and report not-ready); any other
    exception is raised unchanged."""
    exponential = wait_exponential(multiplier=first, max=float("inf"))

    def wait(state: RetryCallState) -> float:
        delay = exponential(state)
        if not callable(max_delay):
            return min(delay, max_delay)
        exc = state.outcome.exception() if state.outcome is not None else None
        return min(delay, max_delay(exc) if exc is not None else MAX_DELAY_SECONDS)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is None or state.outcome is None or state.next_action is None:
            return
        exc = state.outcome.exception()
        if exc is not None:
            on_retry(exc, state.next_action.sleep)

    return AsyncRetrying(
        retry=retry_if_exception_type(retry_on),
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
    )


async def until_done(
    call: Callable[[], Awaitable[T]],
    retry_on: tuple[type[BaseException], ...],
    *,
    on_retry: Callable[[BaseException, float], None] | None = None,
    first: float = FIRST_DELAY_SECONDS,
    max_delay: MaxDelay = MAX_DELAY_SECONDS,
) -> T:
    """``await call()``, retried as :func:`backoff` says. ``call`` must be a coroutine
    function (tenacity calls anything else without awaiting what it returns)."""
    retrying = backoff(retry_on, on_retry=on_retry, first=first, max_delay=max_delay)
    result: T = await retrying(call)
    return result
