"""Read replicas on real streaming replication: a primary and a standby made in the test.

Where a read ran is told by what it sees: with replay paused on the standby, a row written
straight on the primary is visible there and not on the standby.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest

import faceplate_models as fm
from faceplate_models import replicas
from faceplate_models.config import DatabaseTarget, Settings, load_settings
from faceplate_models.testing import connect, create_database
from tests import commands, servers


@pytest.fixture(scope="module")
def replicated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[servers.Cluster, servers.Cluster]]:
    root = tmp_path_factory.mktemp("replication")
    primary = servers.replicable(root / "primary")
    standby = servers.standby_of(primary, root / "standby")
    try:
        standby.start()
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()


@pytest.fixture
async def database(
    replicated: tuple[servers.Cluster, servers.Cluster], restore_db: DatabaseTarget
) -> AsyncIterator[tuple[DatabaseTarget, DatabaseTarget]]:
    """A migrated database on the primary, seen through the standby: (primary, standby)."""
    primary, standby = replicated
    target = await create_database(primary.target())
    await fm.init_db(target.url(), migrate=True)
    replica = standby.target(target.database)
    await wait_replayed(target, replica)
    yield target, replica
    await fm.close_db()
    await resume(replica)


def settings(replica: DatabaseTarget, max_lag: float = 30) -> Settings:
    return dataclasses.replace(
        load_settings(), replica_urls=(replica.url(),), replica_max_lag=max_lag, replica_wait=0.3
    )


async def sql(target: DatabaseTarget, statement: str, *args: Any) -> Any:
    conn = await connect(target)
    try:
        return await conn.fetchval(statement, *args)
    finally:
        await conn.close()


async def wait_replayed(primary: DatabaseTarget, standby: DatabaseTarget) -> None:
    position = await sql(primary, "SELECT pg_current_wal_lsn()")
    deadline = time.monotonic() + 10
    while True:
        try:
            if await sql(standby, "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", position):
                return
        except (OSError, asyncpg.PostgresError):
            pass  # the database is still on its way to the standby
        assert time.monotonic() < deadline, "the standby did not catch up"
        await asyncio.sleep(0.05)


async def pause(standby: DatabaseTarget) -> None:
    await sql(standby, "SELECT pg_wal_replay_pause()")


async def resume(standby: DatabaseTarget) -> None:
    await sql(standby, "SELECT pg_wal_replay_resume()")


async def behind_the_standby(primary: DatabaseTarget, conversation_id: uuid.UUID) -> str:
    """A message written straight on the primary: a read on the paused standby misses it."""
    marker = f"primary-only {uuid.uuid4().hex[:8]}"
    await sql(
        primary,
        """INSERT INTO faceplate.messages (id, conversation_id, role, content, created_at)
           VALUES ($1, $2, 'user', $3, now())""",
        uuid.uuid4(),
        conversation_id,
        marker,
    )
    return marker


async def contents(user: fm.User, conversation: fm.Conversation) -> list[str]:
    page = await fm.get_history(user_id=user.id, conversation_id=conversation.id)
    return [m.content or "" for m in page.items]


async def two_users() -> tuple[tuple[fm.User, fm.Conversation], tuple[fm.User, fm.Conversation]]:
    pairs = []
    for n in (1, 2):
        user = await fm.get_or_create_user(subject_id=f"r|{n}", email=f"r{n}@example.com")
        pairs.append((user, await fm.create_conversation(user_id=user.id)))
    return pairs[0], pairs[1]


async def test_reads_go_to_the_standby_and_writers_read_their_writes(
    database: tuple[DatabaseTarget, DatabaseTarget],
) -> None:
    primary, standby = database
    await fm.init_db(primary.url(), settings=settings(standby))
    (ada, ada_chat), (bob, bob_chat) = await two_users()
    await wait_replayed(primary, standby)
    await asyncio.sleep(2 * replicas.POLL)  # the watcher sees the standby caught up
    await pause(standby)

    # Bob has not written since: his reads go to the standby, which lacks the new row.
    fresh = await behind_the_standby(primary, bob_chat.id)
    assert fresh not in await contents(bob, bob_chat)

    # Ada writes through the store: her next read finds the standby behind, and waits for
    # it, then asks the primary.
    started = time.monotonic()
    await fm.append_message(
        user_id=ada.id, conversation_id=ada_chat.id, role="user", content="mine"
    )
    assert await contents(ada, ada_chat) == ["mine"]
    print(f"\nread after write with replay paused: {time.monotonic() - started:.2f} s")
    assert fresh not in await contents(bob, bob_chat)  # Bob still reads the standby

    await resume(standby)
    await wait_replayed(primary, standby)
    assert fresh in await contents(bob, bob_chat)


async def test_a_token_carries_a_write_to_another_process(
    database: tuple[DatabaseTarget, DatabaseTarget],
) -> None:
    primary, standby = database
    await fm.init_db(primary.url(), settings=settings(standby))
    (ada, chat), _ = await two_users()
    await wait_replayed(primary, standby)
    await asyncio.sleep(2 * replicas.POLL)
    await pause(standby)
    await fm.append_message(user_id=ada.id, conversation_id=chat.id, role="user", content="sent")
    token = fm.consistency_token(user_id=ada.id)
    assert token is not None

    def other_process(token: str | None) -> list[str]:
        script = f"""
import asyncio, json, faceplate_models as fm
async def main():
    async with fm.database():
        await asyncio.sleep(0.5)  # its watcher has looked at the standby
        fm.read_after(user_id={str(ada.id)!r}, token={token!r})
        page = await fm.get_history(user_id={str(ada.id)!r}, conversation_id={str(chat.id)!r})
        print(json.dumps([m.content for m in page.items]))
asyncio.run(main())
"""
        settings = {
            "FACEPLATE_DATABASE_URL": primary.url(),
            "FACEPLATE_DATABASE_REPLICA_URLS": standby.url(),
            "FACEPLATE_REPLICA_MAX_LAG": "30",
        }
        run = commands.run([sys.executable, "-c", script], env=settings)
        assert run.returncode == 0, run.stderr
        seen: list[str] = json.loads(run.stdout)
        return seen

    assert await asyncio.to_thread(other_process, token) == ["sent"]
    assert await asyncio.to_thread(other_process, None) == []  # without it: the stale standby


async def test_a_lagging_standby_is_skipped_and_comes_back(
    database: tuple[DatabaseTarget, DatabaseTarget],
) -> None:
    primary, standby = database
    await fm.init_db(primary.url(), settings=settings(standby, max_lag=1))
    _, (bob, chat) = await two_users()
    await wait_replayed(primary, standby)
    await asyncio.sleep(2 * replicas.POLL)
    await pause(standby)
    fresh = await behind_the_standby(primary, chat.id)
    assert fresh not in await contents(bob, chat)  # the standby serves while within the lag
    await asyncio.sleep(1 + 3 * replicas.POLL)  # now it lags more than a second
    assert fresh in await contents(bob, chat)  # skipped: the primary answers

    await resume(standby)
    await wait_replayed(primary, standby)
    await asyncio.sleep(3 * replicas.POLL)
    await pause(standby)
    fresher = await behind_the_standby(primary, chat.id)
    assert fresher not in await contents(bob, chat)  # back on the standby


async def test_the_standby_stopped_under_load_costs_no_caller_an_error(
    database: tuple[DatabaseTarget, DatabaseTarget],
    replicated: tuple[servers.Cluster, servers.Cluster],
) -> None:
    primary, standby = database
    _, cluster = replicated
    await fm.init_db(primary.url(), settings=settings(standby))
    _, (bob, chat) = await two_users()
    await fm.append_message(user_id=bob.id, conversation_id=chat.id, role="user", content="x")
    await wait_replayed(primary, standby)
    stop = asyncio.Event()
    errors: list[BaseException] = []
    reads = 0

    async def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                assert await contents(bob, chat) == ["x"]
                reads += 1
            except fm.FaceplateError as exc:
                errors.append(exc)
            await asyncio.sleep(0.005)

    readers = [asyncio.create_task(reader()) for _ in range(20)]
    await asyncio.sleep(0.5)
    await asyncio.to_thread(cluster.stop)
    await asyncio.sleep(1.5)
    await asyncio.to_thread(cluster.start)
    await wait_replayed(primary, standby)
    await asyncio.sleep(1)
    stop.set()
    await asyncio.gather(*readers)
    print(f"\nstandby stopped under 20 readers: {reads} reads, {len(errors)} errors")
    assert errors == [] and reads > 100
