"""The tree migration on a live, large database: the previous release writes throughout, the
upgrade is killed during its backfill and one of its index builds is terminated, and a run
that starts again finishes the job. Nothing is lost, no append waits long on the
migration's locks, and what the previous release wrote appears on the new release's paths.

A million messages on the embedded server (the default run); a tenth of that on a server
of FACEPLATE_TEST_DATABASE_URL, which CI runs second.
"""

from __future__ import annotations

import asyncio
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget, Settings, load_settings
from faceplate_models.db import tortoise_config
from faceplate_models.migrate import migrations_location, upgrade, version_files
from faceplate_models.testing import connect, create_database, drop_database
from tests import commands, previous_release

PREVIOUS = 3  # the previous release's migrations: 0, 1 and 2
WRITERS = 20
MESSAGES = 1_000_000 if load_settings().test_database_url is None else 100_000
PER_CONVERSATION = 500


@pytest.fixture
def previous_migrations(tmp_path: Path) -> Path:
    """The migrations folder as the previous release shipped it."""
    folder = tmp_path / "migrations" / "models"
    folder.mkdir(parents=True)
    for name in version_files()[:PREVIOUS]:
        (folder / name).write_text((migrations_location() / "models" / name).read_text())
    return tmp_path / "migrations"


@pytest.fixture
async def live_database(
    faceplate_server: DatabaseTarget, restore_db: DatabaseTarget, previous_migrations: Path
) -> AsyncIterator[tuple[DatabaseTarget, list[tuple[uuid.UUID, uuid.UUID]]]]:
    """A database at the previous release's schema, holding MESSAGES messages."""
    target = await create_database(faceplate_server, "live")
    try:
        await upgrade(tortoise_config(target, Settings(), migrating=True), previous_migrations)
        yield target, await load(target, MESSAGES)
    finally:
        await fm.close_db()
        await drop_database(faceplate_server, target.database)


async def load(target: DatabaseTarget, messages: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Histories as the previous release wrote them: every tenth message an assistant's tool
    call answered by the next; the last call of every tenth conversation left open.
    Returns (user, conversation) pairs."""
    start = datetime.now(UTC) - timedelta(days=30)
    users = [(uuid.uuid4(), f"live{n}@example.com", f"live|{n}") for n in range(100)]
    chats = [(uuid.uuid4(), users[n % 100][0]) for n in range(messages // PER_CONVERSATION)]
    rows: list[tuple[Any, ...]] = []
    calls: list[tuple[Any, ...]] = []
    for number, (cid, _) in enumerate(chats):
        for n in range(PER_CONVERSATION):
            at = start + timedelta(seconds=number * PER_CONVERSATION + n)
            message_id = uuid.uuid4()
            if n % 10 == 1:
                function = '{"name": "t", "arguments": "{}"}'
                call = f'[{{"id": "call_{n}", "type": "function", "function": {function}}}]'
                rows.append((message_id, cid, "assistant", None, call, None, at))
                calls.append((uuid.uuid4(), cid, f"call_{n}", message_id, None, at))
            elif n % 10 == 2 and not (number % 10 == 0 and n == PER_CONVERSATION - 8):
                result = f'[{{"tool_call_id": "call_{n - 1}", "content": "ok"}}]'
                rows.append((message_id, cid, "tool", None, None, result, at))
                calls[-1] = (*calls[-1][:4], message_id, at)
            else:
                role = "user" if n % 2 == 0 else "assistant"
                rows.append((message_id, cid, role, f"m{n}", None, None, at))
    conn = await connect(target)
    try:
        await conn.copy_records_to_table(
            "users",
            schema_name="faceplate",
            records=[(*u, start, start) for u in users],
            columns=["id", "email", "subject_id", "created_at", "updated_at"],
        )
        await conn.copy_records_to_table(
            "conversations",
            schema_name="faceplate",
            records=[(cid, uid, "Live", start, start + timedelta(days=29)) for cid, uid in chats],
            columns=["id", "user_id", "title", "created_at", "updated_at"],
        )
        columns = ["id", "conversation_id", "role", "content", "tool_calls", "tool_results"]
        await conn.copy_records_to_table(
            "messages", schema_name="faceplate", records=rows, columns=[*columns, "created_at"]
        )
        await conn.copy_records_to_table(
            "tool_calls",
            schema_name="faceplate",
            records=calls,
            columns=[
                "id",
                "conversation_id",
                "call_id",
                "message_id",
                "result_message_id",
                "created_at",
            ],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return [(uid, cid) for cid, uid in chats]


@dataclass
class Writers:
    """The previous release, appending to a hot set of conversations until told to stop."""

    target: DatabaseTarget
    chats: list[tuple[uuid.UUID, uuid.UUID]]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    acknowledged: list[uuid.UUID] = field(default_factory=list)
    waits: list[tuple[float, float]] = field(default_factory=list)  # (when, how long)
    errors: list[BaseException] = field(default_factory=list)
    touched: set[uuid.UUID] = field(default_factory=set)

    async def run(self) -> None:
        conn = await connect(self.target)
        rng = random.Random()
        try:
            while not self.stop.is_set():
                uid, cid = rng.choice(self.chats[:50])
                started = time.monotonic()
                try:
                    ids = await previous_release.append(conn, uid, cid, rng.choice((1, 2)))
                except (asyncpg.PostgresError, OSError) as exc:
                    self.errors.append(exc)
                    continue
                self.waits.append((started, time.monotonic() - started))
                self.acknowledged += ids
                self.touched.add(cid)
                await asyncio.sleep(0.005)
        finally:
            await conn.close()


def faceplate_db_upgrade(target: DatabaseTarget) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "faceplate_models.cli", "upgrade"],
        cwd=commands.ROOT,
        env=commands.environment({"FACEPLATE_DATABASE_URL": target.url()}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait_for(conn: asyncpg.Connection, sql: str, process: subprocess.Popen[str]) -> Any:
    """Poll `sql` while `process` runs (at most five minutes) until it returns a row."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if (row := await conn.fetchrow(sql)) is not None:
            return row
        await asyncio.sleep(0.05)
    out, err = process.communicate(timeout=60) if process.poll() is not None else ("", "")
    raise AssertionError(f"never saw: {sql}\n{out}{err}")


async def test_the_tree_migration_under_live_writers_survives_a_crash_and_loses_nothing(
    live_database: tuple[DatabaseTarget, list[tuple[uuid.UUID, uuid.UUID]]],
) -> None:
    target, chats = live_database
    writers = Writers(target, chats)
    tasks = [asyncio.create_task(writers.run()) for _ in range(WRITERS)]
    monitor = await connect(target)
    began = time.monotonic()
    try:
        await asyncio.sleep(1)

        # A deploy killed in the middle of the backfill...
        first = faceplate_db_upgrade(target)
        await wait_for(
            monitor,
            "SELECT pid FROM pg_stat_activity WHERE query LIKE '%backfill_message_tree%' "
            "AND pid <> pg_backend_pid() AND state = 'active'",
            first,
        )
        await asyncio.sleep(1)
        first.send_signal(signal.SIGKILL)
        await asyncio.to_thread(first.wait, 60)
        unplaced = await monitor.fetchval(
            "SELECT count(*) FROM faceplate.messages WHERE depth IS NULL"
        )
        assert 0 < unplaced < MESSAGES, unplaced

        # ...then a run whose index build is terminated by an administrator...
        second = faceplate_db_upgrade(target)
        build = await wait_for(
            monitor,
            "SELECT pid FROM pg_stat_progress_create_index "
            "WHERE relid = 'faceplate.messages'::regclass AND phase LIKE 'building index%'",
            second,
        )
        await monitor.execute("SELECT pg_terminate_backend($1)", build["pid"])
        out, err = await asyncio.to_thread(second.communicate, None, 300)
        assert second.returncode == 1, out + err
        assert "failed partway" in err and "run the upgrade again" in err
        invalid = await monitor.fetchval(
            "SELECT count(*) FROM pg_index WHERE NOT indisvalid "
            "AND indrelid = 'faceplate.messages'::regclass"
        )
        assert invalid == 1

        # ...and the run that finishes it.
        third = faceplate_db_upgrade(target)
        out, err = await asyncio.to_thread(third.communicate, None, 600)
        assert third.returncode == 0, out + err
        finished = time.monotonic()
        await asyncio.sleep(2)  # the previous release goes on writing after the upgrade
    finally:
        writers.stop.set()
        await asyncio.gather(*tasks)
        await monitor.close()

    assert writers.errors == []
    during = [wait for at, wait in writers.waits if began <= at <= finished]
    acknowledged = set(writers.acknowledged)
    print(
        f"\n{MESSAGES:,} messages; {len(writers.waits):,} appends by the previous release, "
        f"{len(during):,} during the migration ({finished - began:.1f} s, twice interrupted); "
        f"longest append {max(during) * 1000:.0f} ms, "
        f"median {statistics.median(during) * 1000:.1f} ms"
    )
    assert max(during) < 1.0

    conn = await connect(target)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
        stored = await conn.fetch(
            "SELECT id FROM faceplate.messages WHERE id = ANY($1::uuid[])", list(acknowledged)
        )
        assert len(stored) == len(acknowledged) == len(writers.acknowledged)  # none lost
        unplaced = await conn.fetchval(
            "SELECT count(*) FROM faceplate.messages WHERE depth IS NULL OR user_id IS NULL"
        )
        assert unplaced == 0
        # The previous release still reads its history.
        uid, cid = chats[0]
        assert len(await conn.fetch(previous_release.HISTORY_SQL, cid, uid, 10)) == 10
        by_time = await conn.fetch(
            "SELECT id FROM faceplate.messages WHERE conversation_id = $1 ORDER BY created_at, id",
            cid,
        )
    finally:
        await conn.close()

    # The new release: every history one path, in the order it was written, the previous
    # release's writes after the upgrade included; the open calls where they were.
    await fm.init_db(target.url())
    for uid, cid in [chats[0], *[c for c in chats[:50] if c[1] in writers.touched][:5]]:
        path: list[uuid.UUID] = []
        before = None
        while True:
            page = await fm.get_history(user_id=uid, conversation_id=cid, limit=1000, before=before)
            path[:0] = [m.id for m in page.items]
            if (before := page.next_cursor) is None:
                break
        if cid == chats[0][1]:
            assert path == [row["id"] for row in by_time]
        assert [m.depth for m in (await fm.get_history(user_id=uid, conversation_id=cid)).items][
            -1
        ] == len(path) - 1
    open_calls = await fm.list_open_tool_calls(user_id=chats[0][0], conversation_id=chats[0][1])
    assert [c.call_id for c in open_calls] == [f"call_{PER_CONVERSATION - 9}"]


@pytest.fixture
async def small_live_database(
    faceplate_server: DatabaseTarget, previous_migrations: Path
) -> AsyncIterator[tuple[DatabaseTarget, list[tuple[uuid.UUID, uuid.UUID]]]]:
    target = await create_database(faceplate_server, "aerich")
    try:
        await upgrade(tortoise_config(target, Settings(), migrating=True), previous_migrations)
        yield target, await load(target, 50_000)
    finally:
        await drop_database(faceplate_server, target.database)


async def test_plain_aerich_upgrade_runs_the_same_steps(
    small_live_database: tuple[DatabaseTarget, list[tuple[uuid.UUID, uuid.UUID]]],
) -> None:
    """Aerich honours RUN_IN_TRANSACTION per file and lets a file run its own statements, so
    `aerich upgrade` builds the indexes concurrently and backfills in batches too; it only
    lacks `faceplate-db upgrade`'s lock (two deploys at once) and its retries of a DDL whose
    lock wait ran out (run it again)."""
    target, chats = small_live_database
    writers = Writers(target, chats)
    tasks = [asyncio.create_task(writers.run()) for _ in range(5)]
    try:
        await asyncio.sleep(0.5)
        aerich = Path(sys.executable).with_name("aerich")
        run = await asyncio.to_thread(
            commands.run,
            [str(aerich), "upgrade"],
            env={"FACEPLATE_DATABASE_URL": target.url()},
            timeout=300,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        await asyncio.sleep(0.5)
    finally:
        writers.stop.set()
        await asyncio.gather(*tasks)
    assert writers.errors == [] and writers.acknowledged
    conn = await connect(target)
    try:
        versions = await conn.fetch("SELECT version FROM faceplate.aerich ORDER BY id")
        assert [row["version"] for row in versions] == version_files()
        assert await conn.fetchval("SELECT count(*) FROM pg_index WHERE NOT indisvalid") == 0
        unplaced = await conn.fetchval(
            "SELECT count(*) FROM faceplate.messages WHERE depth IS NULL OR user_id IS NULL"
        )
        assert unplaced == 0
    finally:
        await conn.close()
