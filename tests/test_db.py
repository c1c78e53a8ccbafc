"""The lifecycle on a real server: init, probe, pool bounds, and failing fast."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tortoise import Tortoise, connections

import faceplate_models as fm
from benchmarks.wire import Wire
from faceplate_models.config import (
    APPLICATION_APP,
    DEFAULT_POOL_MIN,
    DatabaseTarget,
    Settings,
)
from faceplate_models.db import resolve_target, tortoise_config
from faceplate_models.errors import ConfigError, DatabaseUnavailable, MigrationError
from faceplate_models.migrate import downgrade, upgrade, version_files
from faceplate_models.testing import connect, create_database, drop_database

PASSWORD = "n0t-in-any-Message"


@pytest.fixture
def refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connecting to it is refused


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A socket that accepts connections (the kernel completes the handshake) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


async def test_connections_use_the_faceplate_search_path(faceplate_db: DatabaseTarget) -> None:
    rows = await connections.get("default").execute_query_dict(
        "SELECT current_setting('search_path') AS path, current_database() AS db"
    )
    assert rows == [{"path": "faceplate", "db": faceplate_db.database}]


async def test_other_tasks_see_the_initialised_orm(faceplate_db: DatabaseTarget) -> None:
    # Tortoise 1.x keeps its state in a ContextVar; init_db must make it process-wide.
    async def create() -> fm.User:
        return await fm.User.create(email="ada@example.com", subject_id="a")

    async def exists(user: fm.User) -> bool:
        return await fm.User.filter(id=user.id).exists()

    user = await asyncio.create_task(create())
    assert await asyncio.create_task(exists(user))


async def test_fifty_concurrent_queries_share_twenty_connections(
    faceplate_db: DatabaseTarget,
) -> None:
    client = connections.get("default")
    counts: list[int] = []
    monitor = await connect(faceplate_db)
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            counts.append(
                await monitor.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 "
                    "AND application_name = 'faceplate-models'",
                    faceplate_db.database,
                )
            )
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        results = await asyncio.gather(
            *(
                client.execute_query_dict("SELECT $1::int AS n, pg_sleep(0.2)", [i])
                for i in range(50)
            )
        )
    finally:
        done.set()
        await sampler
        await monitor.close()
    assert sorted(r[0]["n"] for r in results) == list(range(50))
    assert max(counts) == 20, counts


@pytest.mark.usefixtures("restore_db")
async def test_refused_port_fails_fast_naming_the_server(
    refused_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught:
        await fm.init_db(f"postgres://app:{PASSWORD}@127.0.0.1:{refused_port}/chat")
    assert time.monotonic() - started < 5
    message = str(caught.value)
    assert "127.0.0.1" in message and str(refused_port) in message and '"chat"' in message
    assert "refused" in message
    assert PASSWORD not in message
    assert PASSWORD not in caplog.text
    assert not Tortoise.is_inited()


@pytest.mark.usefixtures("restore_db")
async def test_silent_socket_fails_inside_five_seconds(
    silent_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught:
        await fm.init_db(f"postgres://app:{PASSWORD}@127.0.0.1:{silent_port}/chat")
    elapsed = time.monotonic() - started
    assert 3 < elapsed < 5, elapsed
    assert "no answer" in str(caught.value)
    assert str(silent_port) in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in caplog.text


@pytest.mark.usefixtures("restore_db")
async def test_unknown_host_and_missing_database_are_reported(
    faceplate_server: DatabaseTarget,
) -> None:
    with pytest.raises(DatabaseUnavailable, match=r"no-such-host\.invalid"):
        await fm.init_db(f"postgres://app:{PASSWORD}@no-such-host.invalid:5432/chat")
    missing = faceplate_server.with_database("faceplate_no_such_database")
    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        await fm.init_db(missing.url())


@pytest.mark.usefixtures("restore_db")
async def test_database_context_manager_closes_the_pool(faceplate_database: DatabaseTarget) -> None:
    async with fm.database(faceplate_database.url()):
        assert await fm.User.all().count() >= 0
        assert Tortoise.is_inited()
    assert not Tortoise.is_inited()
    await fm.close_db()  # closing twice is harmless


def test_without_url_or_embedded_server_the_error_is_clear(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pgserver", None)  # as on a production install
    with pytest.raises(ConfigError, match="FACEPLATE_DATABASE_URL is not set"):
        resolve_target(Settings())


@pytest.fixture
async def empty_database(
    faceplate_server: DatabaseTarget, restore_db: DatabaseTarget
) -> AsyncIterator[DatabaseTarget]:
    """A database of its own that no migration has touched yet."""
    target = await create_database(faceplate_server, "schema")
    try:
        yield target
    finally:
        await fm.close_db()
        await drop_database(faceplate_server, target.database)


async def test_a_database_never_migrated_is_refused_at_startup(
    empty_database: DatabaseTarget,
) -> None:
    started = time.monotonic()
    with pytest.raises(MigrationError, match="faceplate-db upgrade") as caught:
        await fm.init_db(empty_database.url())
    assert "never applied" in str(caught.value) and "init_db(migrate=True)" in str(caught.value)
    assert time.monotonic() - started < 2
    assert not Tortoise.is_inited()  # nothing is left half-open

    await fm.init_db(empty_database.url(), migrate=True)  # what the message says works
    assert (await fm.get_or_create_user(subject_id="s", email="s@example.com")).email


async def test_a_database_behind_is_refused_and_one_ahead_is_served(
    empty_database: DatabaseTarget, caplog: pytest.LogCaptureFixture
) -> None:
    config = tortoise_config(empty_database, Settings(), migrating=True)
    await upgrade(config)
    files = version_files()
    await downgrade(config, 0)
    with pytest.raises(MigrationError, match=r"behind this release") as caught:
        await fm.init_db(empty_database.url())
    assert all(name in str(caught.value) for name in files[1:])

    # A newer release migrated it further, then was rolled back: this release still serves.
    await upgrade(config)
    admin = await connect(empty_database)
    try:
        await admin.execute(
            "INSERT INTO faceplate.aerich (version, app, content) VALUES ($1, 'models', '{}')",
            "99_20991231000000_from_the_future.py",
        )
    finally:
        await admin.close()
    with caplog.at_level(logging.WARNING, logger="faceplate_models"):
        await fm.init_db(empty_database.url())
    [line] = [r.getMessage() for r in caplog.records if "newer release" in r.getMessage()]
    assert "99_20991231000000_from_the_future.py" in line and files[-1] in line


APP_MIGRATION = '''from tortoise import BaseDBAsyncClient


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """CREATE TABLE "app_notes" (
        "id" SERIAL PRIMARY KEY,
        "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE,
        "text" TEXT NOT NULL)"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return 'DROP TABLE "app_notes"'
'''


async def test_the_applications_own_models_live_beside_the_packages(
    empty_database: DatabaseTarget, tmp_path: Path
) -> None:
    from tests.app_models import Note

    models = ["tests.app_models"]
    await fm.init_db(empty_database.url(), migrate=True, models=models)
    # The application's migrations: Aerich's, for the Tortoise app `app`, under the same lock.
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "0_20270101000000_notes.py").write_text(APP_MIGRATION)
    config = tortoise_config(empty_database, Settings(), migrating=True, app_models=models)
    assert await upgrade(config, tmp_path, app=APPLICATION_APP) == ["0_20270101000000_notes.py"]
    assert await upgrade(config, tmp_path, app=APPLICATION_APP) == []

    user = await fm.get_or_create_user(subject_id="notes", email="notes@example.com")
    await Note.create(user_id=user.id, text="Call the plumber")
    assert [n.text for n in await Note.filter(user_id=user.id)] == ["Call the plumber"]
    await fm.delete_user(user_id=user.id)
    assert await Note.all().count() == 0  # the user's data, the application's included


@pytest.mark.usefixtures("restore_db")
async def test_init_db_waits_for_one_connection_and_the_floor_opens_behind_it(
    faceplate_db: DatabaseTarget,
) -> None:
    """A process that starts per request waits for the one connection it uses: the rest of
    the pool's floor (five by default) opens in the background and stays. At 20 ms each way
    a connection takes several round trips, so the floor is still opening when init_db
    returns; a close at that moment lets it finish rather than cutting a connect short,
    which would leave an error nobody retrieves."""
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    wire = Wire(faceplate_db, delay_ms=20)
    through = await wire.start()
    try:
        await fm.init_db(through.url())
        assert 1 <= fm.pool_stats().size < DEFAULT_POOL_MIN
        async with asyncio.timeout(10):
            while True:
                if fm.pool_stats().size == DEFAULT_POOL_MIN:
                    break
                await asyncio.sleep(0.01)
        await fm.init_db(through.url())  # closes the full pool, opens a new one
        await fm.close_db()  # while the new floor opens
        gc.collect()  # an unretrieved error is reported as its future is collected
        assert unhandled == []
    finally:
        loop.set_exception_handler(None)
        await fm.close_db()
        await wire.close()
