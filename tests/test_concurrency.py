"""Uniqueness under a race: the database index decides, not a pre-check."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from tests.support.serving import Configure

pytestmark = pytest.mark.postgres


async def test_twenty_concurrent_creates_with_one_email(
    clean_pg: str, configure: Configure
) -> None:
    pg_url = clean_pg
    configure(DATABASE_URL=pg_url, DB_POOL_SIZE="20")
    from users_api.app import create_app
    from users_api.db import dispose_engine

    app = create_app()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(
                *(
                    client.post("/users", json={"name": f"N{i}", "email": "Same@Example.com"})
                    for i in range(20)
                )
            )
    finally:
        await dispose_engine()

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, statuses
    conn = await asyncpg.connect(pg_url.replace("+asyncpg", ""))
    try:
        assert await conn.fetchval("SELECT count(*) FROM users") == 1
    finally:
        await conn.close()
