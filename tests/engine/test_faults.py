"""The connection layer under real faults: killed backends, lost replies, restarts, a full pool."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import asyncpg
import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget, Settings
from faceplate_models.engine import RETRY_DELAY, FaceplateClient, driver_error
from faceplate_models.errors import (
    Conflict,
    ConnectionLost,
    DatabaseError,
    DatabaseUnavailable,
    OutcomeUnknown,
    PoolTimeout,
)
from faceplate_models.ids import uuid7
from faceplate_models.testing import connect
from tests import faults

PASSWORD = "n0t-in-any-Message"
SLOW_READ = "SELECT pg_sleep(0.3), 42 AS answer"


def client() -> FaceplateClient:
    engine: FaceplateClient = connections.get("default")
    return engine


def retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum("retrying once" in record.getMessage() for record in caplog.records)


async def timed(call: Awaitable[Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


async def chat() -> tuple[fm.User, fm.Conversation]:
    user = await fm.get_or_create_user(subject_id="sub|1", email="ada@example.com")
    return user, await fm.create_conversation(user_id=user.id, title="faults")


@pytest.fixture(autouse=True)
def warnings_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="faceplate_models")


# --- a backend terminated under a statement ----------------------------------------------


async def test_read_killed_mid_query_answers_after_one_retry(
    faceplate_db: DatabaseTarget, caplog: pytest.LogCaptureFixture
) -> None:
    killer = asyncio.create_task(faults.kill_when_running(faceplate_db, "SELECT pg_sleep%"))
    rows, elapsed = await timed(client().execute_query_dict(SLOW_READ))
    print(f"\nkilled once mid-query: answered after {elapsed * 1000:.0f} ms")
    assert await killer == 1
    assert rows[0]["answer"] == 42
    assert RETRY_DELAY <= elapsed < RETRY_DELAY + 1.5, elapsed
    assert retries(caplog) == 1


async def test_store_write_killed_in_flight_is_retried_and_stored_once(
    faceplate_db: DatabaseTarget, caplog: pytest.LogCaptureFixture
) -> None:
    user, conversation = await chat()
    # Hold the conversation's row lock so that append_message waits in its statement, where
    # the kill finds it.
    holder = await connect(faceplate_db)
    locked = holder.transaction()
    await locked.start()
    await holder.execute(
        "SELECT 1 FROM faceplate.conversations WHERE id = $1 FOR UPDATE", conversation.id
    )
    append = asyncio.create_task(
        fm.append_message(
            user_id=user.id, conversation_id=conversation.id, role="user", content="hello"
        )
    )
    killed = await faults.kill_when_running(faceplate_db, "%faceplate.append_turn%", wait="Lock")
    await locked.commit()
    await holder.close()
    message = await append
    assert killed == 1 and retries(caplog) == 1
    history = await fm.get_history(user_id=user.id, conversation_id=conversation.id)
    assert [m.id for m in history.items] == [message.id]
    fresh = await fm.get_conversation(user_id=user.id, conversation_id=conversation.id)
    assert fresh.updated_at == message.created_at


async def test_killed_twice_is_database_unavailable(
    faceplate_db: DatabaseTarget, caplog: pytest.LogCaptureFixture
) -> None:
    killer = asyncio.create_task(
        faults.kill_when_running(faceplate_db, "SELECT pg_sleep%", times=2)
    )
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="twice") as caught:
        await client().execute_query_dict(SLOW_READ)
    print(f"\nkilled twice: DatabaseUnavailable after {(time.monotonic() - started) * 1000:.0f} ms")
    assert await killer == 2
    assert not isinstance(caught.value, ConnectionLost)
    assert faceplate_db.database in str(caught.value)
    assert retries(caplog) == 1


async def test_a_store_write_lost_twice_after_it_was_sent_says_its_outcome_is_unknown(
    faceplate_db: DatabaseTarget, caplog: pytest.LogCaptureFixture
) -> None:
    """Both attempts of an append reach the server and lose their connection: the caller
    hears that it may or may not have been applied (not "the server is down"), and a retry
    with the same message_id stores it once."""
    user = await fm.get_or_create_user(subject_id="sub|1", email="ada@example.com")
    conversation = await fm.create_conversation(user_id=user.id)
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": conversation.id}
    key = uuid7()
    holder = await faults.hold_row(faceplate_db, "conversations", conversation.id)
    append = asyncio.create_task(fm.append_message(**at, role="user", content="hi", message_id=key))
    killed = await faults.kill_when_running(
        faceplate_db, "%faceplate.append_turn%", times=2, wait="Lock"
    )
    with pytest.raises(OutcomeUnknown, match="may or may not have been applied") as caught:
        await append
    await holder.execute("COMMIT")
    await holder.close()
    assert killed == 2 and retries(caplog) == 1
    assert isinstance(caught.value, DatabaseUnavailable)
    for _ in range(2):
        again = await fm.append_message(**at, role="user", content="hi", message_id=key)
    history = await fm.get_history(**at)
    assert [m.id for m in history.items] == [again.id] == [key]


async def test_killed_inside_a_transaction_is_connection_lost_and_nothing_is_written(
    faceplate_db: DatabaseTarget, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = await connect(faceplate_db)

    async def two_users() -> None:
        async with in_transaction() as tx:
            await fm.User.create(email="a@example.com", subject_id="a", using_db=tx)
            pid = (await tx.execute_query_dict("SELECT pg_backend_pid() AS pid"))[0]["pid"]
            await faults.terminate(monitor, [pid])
            await fm.User.create(email="b@example.com", subject_id="b", using_db=tx)

    with pytest.raises(ConnectionLost, match="none of its work was committed"):
        await two_users()
    await monitor.close()
    assert await fm.User.all().count() == 0
    assert retries(caplog) == 0


async def test_orm_write_lost_in_flight_is_not_retried(
    faceplate_db: DatabaseTarget, caplog: pytest.LogCaptureFixture
) -> None:
    user = await fm.get_or_create_user(subject_id="sub|1", email="ada@example.com")
    task = await fm.add_task(user_id=user.id, title="before")
    holder = await connect(faceplate_db)
    locked = holder.transaction()
    await locked.start()
    await holder.execute("SELECT 1 FROM faceplate.tasks WHERE id = $1 FOR UPDATE", task.id)

    async def rename() -> None:
        await fm.Task.filter(id=task.id).update(title="after")

    update = asyncio.create_task(rename())
    await faults.kill_when_running(faceplate_db, "UPDATE%", wait="Lock")
    await locked.commit()
    await holder.close()
    with pytest.raises(ConnectionLost, match="may or may not have been applied"):
        await update
    assert (await fm.Task.get(id=task.id)).title == "before"
    assert retries(caplog) == 0


async def test_idle_connections_killed_then_fifty_calls_all_answer(
    faceplate_db: DatabaseTarget, caplog: pytest.LogCaptureFixture
) -> None:
    user, conversation = await chat()
    await asyncio.gather(*(client().execute_query_dict("SELECT pg_sleep(0.05)") for _ in range(20)))
    monitor = await connect(faceplate_db)
    idle = await faults.backends(monitor, faceplate_db.database)
    assert len(idle) == 20
    await faults.terminate(monitor, idle)
    await monitor.close()

    async def call() -> float:
        _, elapsed = await timed(fm.get_history(user_id=user.id, conversation_id=conversation.id))
        return elapsed

    latencies = await asyncio.gather(*(call() for _ in range(50)))
    print(f"\n50 calls after 20 idle kills: slowest {max(latencies) * 1000:.0f} ms")
    assert len(latencies) == 50
    assert retries(caplog) == 0  # the pool replaced the dead connections before use


# --- a reply lost after the server acted -------------------------------------------------


@pytest.fixture
async def proxy(
    faceplate_db: DatabaseTarget, restore_db: DatabaseTarget
) -> AsyncIterator[faults.Proxy]:
    lossy = faults.Proxy(faceplate_db)
    await fm.init_db((await lossy.start()).url())
    try:
        yield lossy
    finally:
        await fm.close_db()
        await lossy.close()


async def test_lost_acknowledgements_of_store_writes_are_retried_without_duplicates(
    proxy: faults.Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    proxy.lose_reply_to(b"INSERT INTO faceplate.users")
    user = await fm.get_or_create_user(subject_id="sub|1", email="ada@example.com")
    proxy.lose_reply_to(b"INSERT INTO faceplate.conversations")
    conversation = await fm.create_conversation(user_id=user.id, title="once")
    proxy.lose_reply_to(b"faceplate.append_turn")  # one statement, committed as it ended
    message = await fm.append_message(
        user_id=user.id, conversation_id=conversation.id, role="user", content="once"
    )
    proxy.lose_reply_to(b"INSERT INTO faceplate.tasks")
    task = await fm.add_task(user_id=user.id, title="once")
    assert proxy.lost == 4 and retries(caplog) == 4
    assert [u.id for u in await fm.User.all()] == [user.id]
    assert [c.id for c in await fm.Conversation.all()] == [conversation.id]
    assert [m.id for m in await fm.Message.all()] == [message.id]
    assert [t.id for t in await fm.Task.all()] == [task.id]
    fresh = await fm.get_conversation(user_id=user.id, conversation_id=conversation.id)
    assert fresh.updated_at == message.created_at


async def test_lost_acknowledgement_of_an_orm_write_says_it_may_have_been_applied(
    proxy: faults.Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    proxy.lose_reply_to(b'"users"')
    with pytest.raises(ConnectionLost, match="may or may not have been applied"):
        await fm.User.create(email="a@example.com", subject_id="a")
    assert await fm.User.filter(subject_id="a").count() == 1  # it was: hence no retry

    async def in_a_transaction() -> None:
        async with in_transaction():
            await fm.User.create(email="b@example.com", subject_id="b")

    proxy.lose_reply_to(b"COMMIT")
    with pytest.raises(ConnectionLost, match="may or may not have been committed"):
        await in_a_transaction()
    assert await fm.User.filter(subject_id="b").count() == 1
    assert retries(caplog) == 0


# --- the server restarted or stopped -----------------------------------------------------


async def test_restart_between_calls_is_invisible(
    restartable_db: DatabaseTarget, embedded_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    user, conversation = await chat()
    await faults.restart_server(embedded_server)
    page, elapsed = await timed(fm.get_history(user_id=user.id, conversation_id=conversation.id))
    assert page.items == []
    assert elapsed < RETRY_DELAY  # answered by a fresh connection, not a retry
    assert retries(caplog) == 0


async def test_reads_never_fail_during_a_restart(
    restartable_db: DatabaseTarget, embedded_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    user, conversation = await chat()
    await fm.append_message(
        user_id=user.id, conversation_id=conversation.id, role="user", content="hi"
    )
    stop = asyncio.Event()
    latencies: list[float] = []
    failures: list[BaseException] = []

    async def reader() -> None:
        while not stop.is_set():
            try:
                page, elapsed = await timed(
                    fm.get_history(user_id=user.id, conversation_id=conversation.id)
                )
                assert len(page.items) == 1
                latencies.append(elapsed)
            except fm.FaceplateError as exc:
                failures.append(exc)
            await asyncio.sleep(0.01)

    readers = [asyncio.create_task(reader()) for _ in range(20)]
    await asyncio.sleep(1)
    _, restart = await timed(faults.restart_server(embedded_server))
    await asyncio.sleep(2)
    stop.set()
    await asyncio.gather(*readers)
    slowest = max(latencies)
    print(
        f"\nrestart during 20 readers: restart {restart * 1000:.0f} ms, {len(latencies)} reads, "
        f"{retries(caplog)} retries, {len(failures)} errors, slowest read {slowest * 1000:.0f} ms"
    )
    assert failures == []
    assert slowest < RETRY_DELAY + 1.5


async def test_stopped_server_is_unavailable_then_recovers(
    restartable_db: DatabaseTarget, embedded_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with_password = DatabaseTarget(
        restartable_db.host, restartable_db.port, restartable_db.database, "postgres", PASSWORD
    )
    await fm.init_db(with_password.url())
    user, _ = await chat()
    await faults.stop_server(embedded_server)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="twice") as caught:
        await fm.list_tasks(user_id=user.id)
    print(
        f"\nserver stopped: DatabaseUnavailable after {(time.monotonic() - started) * 1000:.0f} ms"
    )
    message = str(caught.value)
    assert restartable_db.database in message and "no socket there" in message
    assert PASSWORD not in message and PASSWORD not in caplog.text
    await faults.start_server(embedded_server)
    assert (await fm.list_tasks(user_id=user.id)).items == []


# --- a full pool -------------------------------------------------------------------------


async def test_full_pool_times_out_exactly_the_extra_waiters(
    faceplate_db: DatabaseTarget, restore_db: DatabaseTarget
) -> None:
    await fm.init_db(faceplate_db.url(), settings=Settings(pool_min=1, pool_max=5, pool_timeout=1))
    user, _ = await chat()
    started = time.monotonic()

    async def hold() -> None:
        await client().execute_query_dict("SELECT pg_sleep(1.5)")

    async def in_a_transaction() -> None:
        async with in_transaction() as tx:
            await tx.execute_query_dict("SELECT 1")

    holders = [asyncio.create_task(hold()) for _ in range(5)]
    await asyncio.sleep(0.2)  # all five connections are busy now
    waiters = [
        client().execute_query_dict("SELECT 1"),
        fm.list_tasks(user_id=user.id),
        in_a_transaction(),
    ]
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    waited = time.monotonic() - started
    assert all(isinstance(outcome, PoolTimeout) for outcome in outcomes), outcomes
    assert "FACEPLATE_DB_POOL_TIMEOUT" in str(outcomes[0])
    assert 1.0 <= waited < 1.5
    await asyncio.gather(*holders)  # the five holders were never disturbed

    pool = client()._pool
    assert pool is not None
    assert pool.get_size() == pool.get_idle_size() <= 5  # every connection came back
    await asyncio.gather(*(in_a_transaction() for _ in range(5)), hold())


async def test_a_server_error_is_told_in_the_packages_words(faceplate_db: DatabaseTarget) -> None:
    """The server's text (constraint names, key values, the statement) stays in __cause__."""
    conn = await connect(faceplate_db)
    try:
        await conn.execute(
            """CREATE TEMP TABLE t (id int PRIMARY KEY, email text UNIQUE CHECK (email <> ''),
                                    parent int REFERENCES t (id), n int NOT NULL DEFAULT 0);
               INSERT INTO t (id, email) VALUES (1, 'ada@example.com')"""
        )
        failures = {
            "23505": "INSERT INTO t (id, email) VALUES (2, 'ada@example.com')",
            "23503": "INSERT INTO t (id, email, parent) VALUES (3, 'b@example.com', 99)",
            "23514": "INSERT INTO t (id, email) VALUES (4, '')",
            "23502": "INSERT INTO t (id, email, n) VALUES (5, 'c@example.com', NULL)",
            "22012": "SELECT 1 / (n - n) FROM t",
            "42P01": "SELECT * FROM no_such_table_of_ours",
        }
        for state, sql in failures.items():
            with pytest.raises(asyncpg.PostgresError) as raised:
                await conn.execute(sql)
            error = driver_error(raised.value)
            assert isinstance(error, DatabaseError if state[:2] != "23" else Conflict)
            assert error.sqlstate == state
            words = str(error)
            for theirs in (raised.value.args[0], raised.value.detail or "\x00"):
                assert theirs not in words, (state, words)
            assert "ada@example.com" not in words and "t_email_key" not in words
    finally:
        await conn.close()
