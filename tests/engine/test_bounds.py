"""Faults that say nothing, and errors that keep their meaning.

A partition (the proxy stops forwarding without closing anything), a row held by another
session, a deadlock, a serialization failure, a statement timeout; the ORM keeping stock
Tortoise's classes while the store speaks the package's; lifecycle misuse; what an
operator sees. The measured figures print with -s.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from tortoise import Tortoise, connections
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget, Settings, load_settings
from faceplate_models.db import tortoise_config
from faceplate_models.engine import (
    GRACE,
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    TCP_USER_TIMEOUT_MS,
    FaceplateClient,
)
from faceplate_models.errors import (
    ConfigError,
    ConnectionLost,
    DatabaseUnavailable,
    SerializationFailure,
    StatementTimeout,
)
from faceplate_models.ids import uuid7
from faceplate_models.testing import connect
from tests import faults

# A partition is noticed after the statement timeout and a grace second; a call that may be
# retried gets the rest of twice the statement timeout less that second.
# Five warm connections: every call below has one when the network goes silent.
APPENDS = 250
SCALED = Settings(statement_timeout=4, connect_timeout=1, pool_min=5, pool_max=5)


def client() -> FaceplateClient:
    engine: FaceplateClient = connections.get("default")
    return engine


async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
    """The call's result, or the exception it raised, and how long it took."""
    started = time.monotonic()
    try:
        result = await call
    except Exception as exc:
        result = exc
    return result, time.monotonic() - started


async def chat(n: int = 1) -> tuple[fm.User, fm.Conversation]:
    user = await fm.get_or_create_user(subject_id=f"sub|{n}", email=f"user{n}@example.com")
    return user, await fm.create_conversation(user_id=user.id, title="bounds")


@pytest.fixture(autouse=True)
def warnings_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)


@pytest.fixture
async def through_proxy(
    faceplate_db: DatabaseTarget, restore_db: DatabaseTarget
) -> AsyncIterator[Callable[[Settings], Awaitable[faults.Proxy]]]:
    """Initialise the package through a proxy that can go silent."""
    proxies: list[faults.Proxy] = []

    async def start(settings: Settings) -> faults.Proxy:
        proxy = faults.Proxy(faceplate_db)
        proxies.append(proxy)
        await fm.init_db((await proxy.start()).url(), settings=settings)
        return proxy

    yield start
    for proxy in proxies:
        proxy.heal()
    await fm.close_db()
    for proxy in proxies:
        await proxy.close()


# --- a partition: nothing answers, nothing closes ---------------------------------------


async def test_store_append_in_a_partition_ends_within_twenty_seconds(
    through_proxy: Callable[[Settings], Awaitable[faults.Proxy]],
    faceplate_db: DatabaseTarget,
    caplog: pytest.LogCaptureFixture,
) -> None:
    proxy = await through_proxy(Settings())  # the defaults: statement 10 s, connect 5 s
    user, conversation = await chat()
    # The append's first statement reaches the server and waits there for a row lock; then
    # the network goes silent and the lock is released: the answer is sent, never heard.
    holder = await faults.hold_row(faceplate_db, "conversations", conversation.id)
    lost: dict[str, Any] = {"role": "user", "content": "lost", "message_id": uuid7()}
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": conversation.id}
    append = asyncio.create_task(timed(fm.append_message(**at, **lost)))
    await faults.wait_for_lock_waiters(faceplate_db, 1)
    proxy.silence()
    await holder.execute("COMMIT")
    await holder.close()
    error, elapsed = await append
    print(
        f"\nappend in a partition (default settings): {type(error).__name__} after {elapsed:.1f} s"
    )
    # The append is one statement that commits by itself: it ran once the lock was free, and
    # only its answer was lost, so its outcome is unknown to the caller, and said so.
    assert isinstance(error, fm.OutcomeUnknown), error
    assert "twice" in str(error) and "no answer" in str(error)
    assert elapsed < 20
    stats = fm.pool_stats()
    assert stats.silent_connections >= 1 and stats.retries == 1

    proxy.heal()  # the pool recovers by itself once the network does
    repeated = await fm.append_message(**at, **lost)  # the retry the error calls for
    answered = await fm.append_message(**at, role="user", content="heard")
    history = await fm.get_history(**at)
    assert [m.id for m in history.items] == [lost["message_id"], answered.id]
    assert repeated.id == lost["message_id"]  # stored once, by the statement that was lost
    floor = [r for r in caplog.records if r.name == "asyncpg.pool"]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in floor)


async def test_every_path_ends_within_its_bound_in_a_partition(
    through_proxy: Callable[[Settings], Awaitable[faults.Proxy]],
) -> None:
    proxy = await through_proxy(SCALED)
    user, conversation = await chat()
    statement = SCALED.statement_timeout + GRACE
    bound = 2 * SCALED.statement_timeout - GRACE
    silenced = asyncio.Event()

    async def in_a_transaction() -> None:
        async with in_transaction() as tx:
            await fm.User.create(email="a@example.com", subject_id="a", using_db=tx)
            proxy.silence()
            silenced.set()
            await fm.User.create(email="b@example.com", subject_id="b", using_db=tx)

    transaction = asyncio.create_task(timed(in_a_transaction()))
    await silenced.wait()
    store_read, orm_read, orm_write = await asyncio.gather(
        timed(fm.get_history(user_id=user.id, conversation_id=conversation.id)),
        timed(client().execute_query_dict("SELECT 1")),
        timed(fm.Task.create(user_id=user.id, title="t")),
    )
    calls = {
        "transaction": await transaction,
        "store read": store_read,
        "ORM read": orm_read,
        "ORM write": orm_write,
    }
    print(
        "\nin a partition (statement timeout 4 s): "
        + ", ".join(f"{name} {type(e).__name__} after {t:.1f} s" for name, (e, t) in calls.items())
    )
    tx_error, tx_elapsed = calls["transaction"]
    assert isinstance(tx_error, ConnectionLost), tx_error
    assert "none of its work was committed" in str(tx_error)
    assert statement <= tx_elapsed < statement + 1
    for name in ("store read", "ORM read"):
        error, elapsed = calls[name]
        assert isinstance(error, DatabaseUnavailable), (name, error)
        assert elapsed < bound + 0.5, (name, elapsed)
    write_error, write_elapsed = calls["ORM write"]
    assert isinstance(write_error, ConnectionLost), write_error
    assert "may or may not have been applied" in str(write_error)
    assert write_elapsed < statement + 0.5

    proxy.heal()
    await asyncio.sleep(0.2)  # the held bytes flow, the closed clients' sessions end
    assert await fm.User.filter(subject_id__in=["a", "b"]).count() == 0
    assert (await fm.get_history(user_id=user.id, conversation_id=conversation.id)).items == []
    assert await fm.Task.all().count() <= 1  # the ORM write may have landed, once at most


# --- a row held by another session ------------------------------------------------------


async def test_a_held_row_times_out_its_waiters_and_starves_no_one(
    faceplate_db: DatabaseTarget, caplog: pytest.LogCaptureFixture
) -> None:
    """250 appends to one conversation whose row another session holds: at most
    FACEPLATE_DB_POOL_PER_CONVERSATION of them hold a pooled connection (and wait at the
    server), the rest wait without one; all end with `LockTimeout` within the bound, and
    another user's reads answer at once throughout. Then 250 appends to it, free again,
    are all stored."""
    user, conversation = await chat(1)
    other, theirs = await chat(2)
    await fm.append_message(user_id=other.id, conversation_id=theirs.id, role="user", content="x")
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": conversation.id}
    holder = await faults.hold_row(faceplate_db, "conversations", conversation.id)
    monitor = await connect(faceplate_db)
    reads: list[float] = []
    at_server: list[int] = []
    try:
        waiting = asyncio.gather(
            *(timed(fm.append_message(**at, role="user", content=str(i))) for i in range(APPENDS))
        )
        await faults.wait_for_lock_waiters(faceplate_db, 1)
        while not waiting.done():
            page, elapsed = await timed(fm.get_history(user_id=other.id, conversation_id=theirs.id))
            assert isinstance(page, fm.Page) and len(page.items) == 1
            reads.append(elapsed)
            at_server.append(await faults.lock_waiters(monitor, faceplate_db))
            await asyncio.sleep(0.05)
        outcomes = await waiting
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()
        await monitor.close()
    slowest = max(elapsed for _, elapsed in outcomes)
    kinds = {type(error).__name__ for error, _ in outcomes}
    print(
        f"\n{APPENDS} appends on a held row, pool 20: {kinds}, slowest after {slowest:.1f} s; "
        f"at most {max(at_server)} waited at the server; another user's {len(reads)} reads "
        f"meanwhile answered in at most {max(reads) * 1000:.0f} ms"
    )
    assert kinds == {"LockTimeout"}
    assert all(error.sqlstate == "55P03" for error, _ in outcomes)
    assert slowest < 10
    assert max(at_server) <= fm.pool_stats().max_size // 10  # 2 of the pool's 20
    assert len(reads) >= 10 and max(reads) < 1.0
    assert fm.pool_stats().pool_timeouts == 0
    assert fm.pool_stats().lock_timeouts >= APPENDS
    assert sum("lock" in r.getMessage() for r in caplog.records) >= APPENDS

    started = time.monotonic()
    stored = await asyncio.gather(
        *(fm.append_message(**at, role="user", content=str(i)) for i in range(APPENDS))
    )
    print(f"then {APPENDS} appends to it, free: all stored in {time.monotonic() - started:.1f} s")
    history = await fm.get_history(**at, limit=APPENDS)
    assert sorted(m.id for m in history.items) == sorted(m.id for m in stored)


async def test_one_user_holds_at_most_their_share_of_the_pool(
    faceplate_db: DatabaseTarget, restore_db: DatabaseTarget
) -> None:
    """FACEPLATE_DB_POOL_PER_USER: a user's calls past the share wait without a connection,
    then `PoolTimeout` naming the setting; other users' calls take connections at once."""
    await fm.init_db(faceplate_db.url(), settings=Settings(pool_per_user=2, pool_timeout=1))
    user, _ = await chat(1)
    other, theirs = await chat(2)
    conversations = [await fm.create_conversation(user_id=user.id) for _ in range(3)]
    holders = [await faults.hold_row(faceplate_db, "conversations", c.id) for c in conversations]
    try:
        calls = [
            timed(
                fm.append_message(user_id=user.id, conversation_id=c.id, role="user", content="x")
            )
            for c in conversations
        ]
        waiting = asyncio.gather(*calls)
        await faults.wait_for_lock_waiters(faceplate_db, 2)
        _, elapsed = await timed(fm.get_history(user_id=other.id, conversation_id=theirs.id))
        outcomes = await waiting
    finally:
        for holder in holders:
            await holder.execute("ROLLBACK")
            await holder.close()
    kinds = sorted(type(error).__name__ for error, _ in outcomes)
    assert kinds == ["LockTimeout", "LockTimeout", "PoolTimeout"], outcomes
    refused = next(error for error, _ in outcomes if isinstance(error, fm.PoolTimeout))
    assert "FACEPLATE_DB_POOL_PER_USER" in str(refused)
    assert elapsed < 0.5


# --- deadlocks and serialization failures -----------------------------------------------


async def test_a_deadlock_between_store_calls_is_retried(
    faceplate_db: DatabaseTarget, caplog: pytest.LogCaptureFixture
) -> None:
    user, conversation = await chat()
    task = await fm.add_task(user_id=user.id, title="held")
    retries_before = fm.pool_stats().conflict_retries
    # Transaction 1 holds the task, then wants the conversation; delete_user, in between,
    # holds the conversation (its cascade deletes it) and waits for the task: a cycle. It
    # waited first, so the server aborts it, and the store repeats it.
    go = asyncio.Event()

    async def delete_when_told() -> tuple[Any, float]:
        await go.wait()
        return await timed(fm.delete_user(user_id=user.id))

    # Created before the transaction begins: a task started inside it would share it.
    deletion = asyncio.create_task(delete_when_told())
    async with in_transaction():
        await fm.update_task(user_id=user.id, task_id=task.id, title="mine")
        go.set()
        await faults.wait_for_lock_waiters(faceplate_db, 1)
        await fm.rename_conversation(
            user_id=user.id, conversation_id=conversation.id, title="renamed"
        )
    erased, elapsed = await deletion
    print(f"\ndeadlock: delete_user retried, done after {elapsed:.1f} s")
    assert isinstance(erased, dict) and erased["users"] == 1, erased
    assert fm.pool_stats().conflict_retries == retries_before + 1
    assert any("deadlock" in r.getMessage() for r in caplog.records)
    with pytest.raises(fm.NotFound):
        await fm.get_user(user_id=user.id)


async def test_a_serialization_failure_keeps_its_kind_on_both_paths(
    faceplate_db: DatabaseTarget,
) -> None:
    user, _ = await chat()
    task = await fm.add_task(user_id=user.id, title="before")
    other = await connect(faceplate_db)

    async def conflicting(write: Callable[[Any], Awaitable[Any]]) -> None:
        async with in_transaction() as tx:
            await tx.execute_script("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            await fm.Task.get(id=task.id, using_db=tx)  # the snapshot is taken here
            await other.execute(
                "UPDATE faceplate.tasks SET title = 'theirs' WHERE id = $1", task.id
            )
            await write(tx)

    try:
        # The ORM raises the driver's own class, as stock Tortoise does: code retrying on
        # asyncpg.SerializationError keeps working.
        with pytest.raises(asyncpg.SerializationError):
            await conflicting(
                lambda tx: fm.Task.filter(id=task.id).using_db(tx).update(title="orm")
            )
        # The store, inside the caller's transaction, cannot retry: it reports the kind.
        with pytest.raises(SerializationFailure) as caught:
            await conflicting(
                lambda tx: fm.update_task(user_id=user.id, task_id=task.id, title="store")
            )
    finally:
        await other.close()
    assert caught.value.sqlstate == "40001"
    assert isinstance(caught.value.__cause__, asyncpg.SerializationError)


# --- errors keep their meaning ----------------------------------------------------------


async def test_timeouts_and_nowait_keep_their_meaning(
    faceplate_db: DatabaseTarget, restore_db: DatabaseTarget
) -> None:
    await fm.init_db(faceplate_db.url(), settings=Settings(statement_timeout=1, lock_timeout=5))
    user, conversation = await chat()
    holder = await faults.hold_row(faceplate_db, "conversations", conversation.id)
    try:
        # The store: a statement cancelled at the statement timeout is the package's kind.
        with pytest.raises(StatementTimeout) as caught:
            await fm.append_message(
                user_id=user.id, conversation_id=conversation.id, role="user", content="x"
            )
        assert caught.value.sqlstate == "57014"
        assert isinstance(caught.value.__cause__, asyncpg.QueryCanceledError)
        # The ORM: the driver's class, as with the stock engine.
        with pytest.raises(asyncpg.QueryCanceledError):
            await client().execute_query_dict("SELECT pg_sleep(3)")
        with pytest.raises(asyncpg.LockNotAvailableError):
            async with in_transaction() as tx:
                await (
                    fm.Conversation.filter(id=conversation.id)
                    .select_for_update(nowait=True)
                    .using_db(tx)
                )
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()
    assert fm.pool_stats().statement_timeouts >= 2
    # Tortoise's own translations are untouched.
    with pytest.raises(OperationalError):
        await client().execute_query("SELECT * FROM faceplate.no_such_table")


async def test_tortoise_code_paths_behave_as_with_the_stock_engine(
    faceplate_server: DatabaseTarget,
) -> None:
    """db_create, generate_schemas, savepoints, and db_delete, which catches the driver's
    InvalidCatalogNameError for a database already gone."""
    name = f"faceplate_stock_{time.monotonic_ns()}"
    config = tortoise_config(faceplate_server.with_database(name), load_settings(), migrating=True)

    async def as_tortoise_does() -> list[str]:
        await Tortoise.init(config=config, _create_db=True)
        try:
            await Tortoise.get_connection("default").execute_script('CREATE SCHEMA "faceplate"')
            await Tortoise.generate_schemas()

            async def undone() -> None:
                async with in_transaction():
                    await fm.User.create(email="undone@example.com", subject_id="undone")
                    raise RuntimeError("roll back the savepoint only")

            async with in_transaction():
                await fm.User.create(email="kept@example.com", subject_id="kept")
                with pytest.raises(RuntimeError):
                    await undone()
            return [u.subject_id for u in await fm.User.all()]
        finally:
            await Tortoise._drop_databases()
            await Tortoise.init(config=config)
            await Tortoise._drop_databases()  # already gone

    # A context of its own: the session's connection stays as it is.
    kept = await asyncio.create_task(as_tortoise_does(), context=contextvars.Context())
    assert kept == ["kept"]


async def test_a_missing_database_or_role_is_reported_at_once(
    faceplate_server: DatabaseTarget, restore_db: DatabaseTarget
) -> None:
    for target, words in (
        (faceplate_server.with_database("faceplate_no_such_database"), "does not exist"),
        (
            DatabaseTarget(
                faceplate_server.host, faceplate_server.port, "postgres", "faceplate_no_such_role"
            ),
            "faceplate_no_such_role",
        ),
    ):
        error, elapsed = await timed(fm.init_db(target.url()))
        assert isinstance(error, DatabaseUnavailable), error
        assert words in str(error) and "twice" not in str(error)
        assert elapsed < 1  # no retry


async def test_acquire_connection_raises_only_the_packages_errors(
    faceplate_db: DatabaseTarget,
) -> None:
    monitor = await connect(faceplate_db)

    async def killed_in_use() -> None:
        async with client().acquire_connection() as conn:
            await faults.terminate(monitor, [await conn.fetchval("SELECT pg_backend_pid()")])
            await conn.fetchval("SELECT 1")

    try:
        with pytest.raises(ConnectionLost, match="while it was in use"):
            await killed_in_use()
    finally:
        await monitor.close()


# --- the lifecycle ----------------------------------------------------------------------


@pytest.mark.usefixtures("restore_db")
async def test_store_calls_before_init_or_after_close_say_so() -> None:
    await fm.close_db()
    for call in (
        fm.get_user(user_id="01890000-0000-7000-8000-000000000001"),
        fm.list_tasks(user_id="01890000-0000-7000-8000-000000000001"),
    ):
        with pytest.raises(ConfigError, match=r"call init_db\(\) first"):
            await call
    with pytest.raises(ConfigError, match=r"call init_db\(\) first"):
        fm.pool_stats()


@pytest.mark.usefixtures("restore_db")
async def test_a_second_event_loop_is_told_why_until_the_first_closes(
    faceplate_database: DatabaseTarget,
) -> None:
    url = faceplate_database.url()

    def in_another_thread() -> Any:
        async def main() -> Any:
            try:
                async with fm.database(url):
                    return await fm.User.all().count()
            except fm.FaceplateError as exc:
                return exc

        return asyncio.run(main())

    # This loop owns the pool and is running: the other thread's loop cannot share it.
    busy = await asyncio.to_thread(in_another_thread)
    assert isinstance(busy, ConfigError), busy
    assert "another thread's event loop" in str(busy)
    await fm.close_db()
    assert isinstance(await asyncio.to_thread(in_another_thread), int)


# --- what an operator sees --------------------------------------------------------------


async def test_pool_stats_report_sizes_and_counters(faceplate_db: DatabaseTarget) -> None:
    stats = fm.pool_stats()
    assert stats.max_size == 20 and stats.size >= 1
    assert stats.in_use == stats.size - stats.idle and stats.waiting == 0
    busy = asyncio.gather(*(client().execute_query_dict("SELECT pg_sleep(2)") for _ in range(25)))
    # The pool opens its connections one after another: wait until it has all twenty.
    for _ in range(75):
        if (during := fm.pool_stats()).in_use == 20:
            break
        await asyncio.sleep(0.02)
    await busy
    print(f"\npool during 25 sleeps: {during}")
    assert during.size == 20 and during.in_use == 20 and during.waiting == 5


async def test_a_stopped_server_logs_one_line_per_event(
    restartable_db: DatabaseTarget, embedded_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await chat()
    await faults.stop_server(embedded_server)
    try:
        with pytest.raises(DatabaseUnavailable):
            await fm.list_tasks(user_id="01890000-0000-7000-8000-000000000001")
        await asyncio.sleep(2.5)  # asyncpg tries to restore the pool's floor meanwhile
    finally:
        await faults.start_server(embedded_server)
    records = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(r.name == "asyncpg.pool" for r in records)
    for record in records:
        assert record.exc_info is None, record.getMessage()
        assert "\n" not in record.getMessage()
        assert "Traceback" not in caplog.text


async def test_tcp_connections_let_the_kernel_find_a_dead_peer(
    through_proxy: Callable[[Settings], Awaitable[faults.Proxy]],
) -> None:
    """What a real partition meets: keepalive probes, and a bound on unacknowledged data."""
    await through_proxy(SCALED)
    async with client().acquire_connection() as conn:
        sock = conn._transport.get_extra_info("socket")  # type: ignore[attr-defined]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == KEEPALIVE_INTERVAL
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_COUNT
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == TCP_USER_TIMEOUT_MS
