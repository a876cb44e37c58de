"""The body limit holds on the stream itself: reading stops at the chunk that crosses it."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from users_api.middleware import BodyTooLarge, read_body

LIMIT = 1000


@settings(max_examples=60, deadline=None, database=None)
@given(chunks=st.lists(st.binary(max_size=400), max_size=12), disconnect=st.booleans())
def test_read_body_stops_at_the_limit_whatever_the_chunks(
    chunks: list[bytes], disconnect: bool
) -> None:
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]
    if disconnect:
        messages[-1]["more_body"] = True
        messages.append({"type": "http.disconnect"})
    pulled = 0

    async def receive() -> dict[str, object]:
        nonlocal pulled
        pulled += 1
        return messages[pulled - 1]

    total = sum(len(c) for c in chunks)
    if total > LIMIT:
        with pytest.raises(BodyTooLarge):
            asyncio.run(read_body(receive, LIMIT))
        crossing = next(
            i for i in range(len(chunks)) if sum(len(c) for c in chunks[: i + 1]) > LIMIT
        )
        assert pulled == crossing + 1  # not one message more
    else:
        assert asyncio.run(read_body(receive, LIMIT)) == b"".join(chunks)
