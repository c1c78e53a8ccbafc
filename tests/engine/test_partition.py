"""A real partition (nftables drops every packet of the server's port, both ways) while a
request holds a conversation's row lock and twenty others append to it.

The server finds its dead clients by the keepalive and TCP_USER_TIMEOUT settings every
connection tells it at startup (its own default is two hours of silence, and until then a
dead client's transaction keeps its row locks, up to the idle-in-transaction timeout): the
locks are gone before the network heals, and the first append after the heal is stored at
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tortoise.transactions import in_transaction

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget
from faceplate_models.engine import DEAD_PEER, current
from faceplate_models.errors import FaceplateError
from faceplate_models.testing import connect
from tests import faults, servers

PARTITION = 30.0
APPENDERS = 20
AFTER_HEAL = 8.0


@pytest.fixture
async def partitionable(
    tmp_path: Path, restore_db: DatabaseTarget
) -> AsyncIterator[tuple[DatabaseTarget, faults.Partition]]:
    """A migrated cluster of the test's own, reached over TCP, and a way to cut it off."""
    cluster = servers.Cluster(tmp_path / "cluster").init()
    partition = faults.Partition(cluster.port)
    cluster.allow("host all all 127.0.0.1/32 trust")
    cluster.start()
    try:
        await fm.init_db(cluster.target().url(), migrate=True)
        yield cluster.target(), partition
    finally:
        partition.heal()
        await fm.close_db()
        cluster.stop()


async def test_the_server_is_told_how_to_find_a_dead_client(
    partitionable: tuple[DatabaseTarget, faults.Partition],
) -> None:
    sql = "SELECT name, setting::int FROM pg_settings WHERE name = ANY($1)"
    rows = await current().run(lambda conn: conn.fetch(sql, list(DEAD_PEER)))
    assert {row["name"]: row["setting"] for row in rows} == DEAD_PEER


async def test_locks_of_partitioned_clients_are_gone_when_the_network_heals(
    partitionable: tuple[DatabaseTarget, faults.Partition],
) -> None:
    target, partition = partitionable
    owner = await fm.get_or_create_user(subject_id="partition", email="p@example.com")
    conversation = await fm.create_conversation(user_id=owner.id)
    at: dict[str, Any] = {"user_id": owner.id, "conversation_id": conversation.id}
    calls: list[tuple[float, float, str]] = []  # started, ended, outcome
    running = True

    async def appender() -> None:
        while running:
            started = time.monotonic()
            try:
                await fm.append_message(**at, role="user", content="x")
                outcome = "stored"
            except FaceplateError as exc:
                # A wait at the conversation's gate is the process's own queue, not a lock.
                gate = "FACEPLATE_DB_POOL_PER_CONVERSATION" in str(exc)
                outcome = "gate" if gate else type(exc).__name__
            calls.append((started, time.monotonic(), outcome))
            if outcome != "stored":
                await asyncio.sleep(0.05)

    locked = asyncio.Event()

    async def slow_request() -> None:
        """Holds the conversation's row lock in its transaction when the network goes, as a
        request waiting for the model between two writes does."""
        with contextlib.suppress(FaceplateError):
            async with in_transaction():
                await fm.append_message(**at, role="user", content="held")
                locked.set()
                await asyncio.sleep(PARTITION * 3)

    holder = asyncio.create_task(slow_request())
    await asyncio.wait_for(locked.wait(), 10)
    workers = [asyncio.create_task(appender()) for _ in range(APPENDERS)]
    await faults.wait_for_lock_waiters(target, 1)
    partition.cut()
    await asyncio.sleep(PARTITION)
    partition.heal()
    healed = time.monotonic()
    await asyncio.sleep(AFTER_HEAL)
    running = False
    holder.cancel()
    await asyncio.wait_for(asyncio.gather(*workers, holder, return_exceptions=True), 40)

    after = [(start, end, outcome) for start, end, outcome in calls if start >= healed]
    first = min((end for _, end, outcome in after if outcome == "stored"), default=float("inf"))
    outcomes = [outcome for *_, outcome in after]
    print(
        f"\nfirst append stored {(first - healed) * 1000:.0f} ms after the heal; after it: "
        f"{outcomes.count('stored')} stored, "
        f"{len(outcomes) - outcomes.count('stored')} failed ({sorted(set(outcomes))})"
    )
    assert first - healed < 2.0
    assert "LockTimeout" not in outcomes
    # The request that held the lock was rolled back by the server, not committed.
    monitor = await connect(target)
    try:
        held = await monitor.fetchval(
            "SELECT count(*) FROM faceplate.messages WHERE content = 'held'"
        )
    finally:
        await monitor.close()
    assert held == 0
