"""The validator commits its offsets regularly under a steady stream: its
consumer group's committed offset on the registrations topic advances while registrations
are still being published, not only once the stream pauses (a commit that waited for an
empty producer would never come while outputs keep flowing)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from schemas.events import TOPIC_REGISTRATIONS
from services.validator.app import APP_ID
from tests.support import faults
from tests.support.faults import FaultStack, Progress, committed_offsets, publish_paced
from tests.support.workers import as_message, registration

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SECONDS = 20
RATE = 300  # registrations a second: more than a loaded validator keeps up with


@pytest.fixture(scope="module")
def commit_stack() -> Iterator[FaultStack]:
    with faults.fault_stack("validator-commits") as stack:
        yield stack


async def test_committed_offset_advances_while_publishing_continues(
    commit_stack: FaultStack,
) -> None:
    settings = commit_stack.settings
    messages = [as_message(registration()) for _ in range(SECONDS * RATE)]
    progress = Progress()
    publisher = asyncio.create_task(publish_paced(
        settings, TOPIC_REGISTRATIONS, messages, chunks=SECONDS * 4, pause=0.25,
        progress=progress))
    seen: list[tuple[int, int]] = []  # (committed, published) while publishing goes on
    try:
        while not progress.done:
            committed = sum((await committed_offsets(settings, APP_ID,
                                                     TOPIC_REGISTRATIONS)).values())
            if not progress.done:
                seen.append((committed, progress.published))
            await asyncio.sleep(1.0)
    finally:
        await publisher
    advances = [later for (earlier, _), (later, _) in zip(seen, seen[1:], strict=False)
                if later > earlier]
    assert len(advances) >= 3, f"committed offsets while publishing: {seen}"
    # the commits keep up: well before the end, the group has committed most of what was
    # published a few seconds earlier
    late = [(c, p) for c, p in seen if p >= len(messages) // 2]
    assert late and max(c for c, _ in late) >= len(messages) // 4, seen
