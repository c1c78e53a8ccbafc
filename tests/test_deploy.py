"""Where Faceplate is deployed: a transaction pooler and a session pooler (a real PgBouncer),
a shared database with least-privilege roles, the migration lock, and verified TLS against a
server of the test's own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tortoise.transactions import in_transaction

import faceplate_models as fm
from faceplate_models import store
from faceplate_models.cli import EXIT_ERROR, EXIT_OK
from faceplate_models.config import (
    SESSION_POOLER,
    TRANSACTION,
    DatabaseTarget,
    Settings,
    load_settings,
)
from faceplate_models.engine.bounds import TimeBounds
from faceplate_models.errors import ConfigError, DatabaseUnavailable
from faceplate_models.migrate import ADVISORY_LOCK_KEY, migrations_location, version_files
from faceplate_models.testing import connect, create_database, drop_database
from tests import faults, servers
from tests.commands import faceplate_db_cli


def pooled() -> Settings:
    """The session's settings (its secret key included), in transaction mode."""
    return dataclasses.replace(load_settings(), pool_mode=TRANSACTION)


CALL = {"id": "call_1", "type": "function", "function": {"name": "todo.list", "arguments": "{}"}}


async def every_store_call(n: int) -> set[str]:
    """Call every function of the store once, as one user; returns the names called."""
    called: set[str] = set()

    async def call(function: str, /, **kwargs: Any) -> Any:
        called.add(function)
        return await getattr(fm, function)(**kwargs)

    user = await call("get_or_create_user", subject_id=f"tour|{n}", email=f"tour{n}@example.com")
    me: dict[str, Any] = {"user_id": user.id}
    assert (await call("get_user", **me)).id == user.id
    assert (await call("get_user_by_subject", subject_id=f"tour|{n}")).id == user.id
    assert await fm.User.filter(id=user.id).using_db(await call("read_client", **me)).exists()
    chat = await call("create_conversation", **me, title="tour")
    at: dict[str, Any] = {**me, "conversation_id": chat.id}
    await call("get_conversation", **at)
    await call("rename_conversation", **at, title="tour, renamed")
    settings = {"model": "m1", "system_prompt": "Be brief."}
    await call("update_conversation", **at, settings=settings, metadata={"tour": n})
    assert [c.id for c in (await call("list_conversations", **me)).items] == [chat.id]
    folder = await call("create_folder", **me, name="Work")
    await call("rename_folder", **me, folder_id=folder.id, name="Office")
    assert [f.name for f in await call("list_folders", **me)] == ["Office"]
    tag = await call("create_tag", **me, name="later")
    await call("rename_tag", **me, tag_id=tag.id, name="soon")
    assert [t.name for t in await call("list_tags", **me)] == ["soon"]
    filed = {"folder_id": folder.id, "tag_ids": [tag.id]}
    await call("organise_conversation", **at, pinned=True, **filed)
    assert [c.id for c in (await fm.list_conversations(**me, tag_id=tag.id)).items] == [chat.id]
    await call("append_message", **at, role="user", content="What is open?")
    [hit] = (await call("search_messages", **me, query="open")).items
    assert hit.excerpt == "What is open"
    link = await call("share_conversation", **at)
    await call("update_share", **me, share_id=link.share.id)
    assert [s.id for s in (await call("list_shares", **me)).items] == [link.share.id]
    assert len((await call("get_shared", token=link.token)).history.items) == 1
    await call("revoke_share", **me, share_id=link.share.id)
    await call("delete_conversation", **at, permanently=False)
    await call("restore_conversation", **at)
    assert (await call("purge_expired")).total == 0
    await call("append_message", **at, role="assistant", tool_calls=[CALL])
    assert len(await call("list_open_tool_calls", **me)) == 1
    turn: list[dict[str, Any]] = [
        {"role": "tool", "tool_results": [{"tool_call_id": "call_1", "content": "nothing"}]},
        {"role": "assistant", "content": "Nothing is open."},
    ]
    await call("check_turn", **at, messages=turn)
    turn_id = uuid.uuid4()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    prices = {"input": 1_000_000, "cached_input": 0, "cache_write": 0, "output": 2_000_000}
    await call("set_model_price", provider="p", model="m1", starts_at=start, **prices)
    await call("set_budget", **me, period="month", limit=1_000)
    hold = await call("reserve", **me, estimate=100)
    turn[1] = {**turn[1], "model": "m1", "provider": "p", "usage": {"input_tokens": 3}}
    await call("append_turn", **at, messages=turn, turn_id=turn_id, hold=hold)
    [spent] = await call("usage_summary", **me, since=start, by="model")
    assert spent.cost == 3
    await call("release", **me, hold=await fm.reserve(**me, estimate=1))
    assert len(await call("get_turn", **at, turn_id=turn_id)) == 2
    answer = (await fm.get_history(**at, limit=1)).items[0]
    rated = await call("rate_message", **me, message_id=answer.id, rating=1)
    assert [r.feedback.id for r in (await call("list_feedback", since=start)).items] == [rated.id]
    history = await call("get_history", **at, limit=2)
    assert [m.content for m in history.items] == [None, "Nothing is open."]
    assert history.system == "Be brief."
    assert len((await call("get_history", **at, before=history.next_cursor)).items) == 2
    question = (await fm.get_history(**at, limit=4)).items[0]
    edited = await call("edit_message", **at, message_id=question.id, content="What is due?")
    assert await call("get_siblings", **at, message_id=edited.id) == [question.id, edited.id]
    asked, resend = await call("regenerate", **at, message_id=history.items[-1].id)
    assert asked.id == question.id and [m.id for m in resend.items] == [question.id]
    assert await call("switch_branch", **at, message_id=question.id) == history.items[-1].id
    assert len((await call("get_tree", **at)).items) == 5
    assert await call("delete_branch", **at, message_id=edited.id) == 1
    await call("save_mcp_config", **me, name="todo", config={"command": "todo-mcp"})
    assert (await call("get_mcp_config", **me, name="todo")).config == {"command": "todo-mcp"}
    claude = {"mcpServers": {"files": {"command": "npx", "args": [], "env": {"TOKEN": "t0k"}}}}
    await call("import_mcp_servers", **me, document=claude)
    files = await call("get_mcp_config", **me, name="files", reveal_secrets=True)
    assert files.secrets == {"env.TOKEN": "t0k"}
    assert [c.name for c in await call("list_mcp_configs", **me)] == ["files", "todo"]
    # A live reply, written and followed (NOTIFY in session mode, polling behind a pooler).
    reply = await call("start_reply", **at, turn_id=uuid.uuid4(), flush_bytes=1)
    await reply.write("Streamed.")
    followed = fm.follow_reply(user_id=user.id, message_id=reply.message_id)
    assert await anext(followed) == "Streamed."
    await reply.finish(content="Streamed. Done.")
    assert [text async for text in followed] == [" Done."]
    # OAuth: a grant's generations, a single-flight refresh, a client, a sign-in.
    grant = {**me, "name": "todo"}
    await call("save_mcp_grant", **grant, generation=0, access_token="a", refresh_token="r")
    assert (await call("get_mcp_grant", **grant)).generation == 1

    async def refreshed(tokens: Any) -> dict[str, Any]:
        return {"access_token": "b", "expires_in": 3600}

    await fm.save_mcp_grant(
        **grant, generation=1, access_token="a", refresh_token="r", expires_in=0
    )
    assert (await call("refresh_mcp_grant", **grant, refresh=refreshed)).access_token == "b"
    client = {"server": "https://mcp.example.com", "redirect_uri": "https://app/cb", "metadata": {}}
    await call("save_mcp_client", **client, client_info={"client_id": f"c{n}"})
    assert (await call("get_mcp_client", **client)) is not None
    await call("begin_mcp_sign_in", **grant, state=f"state{n}", code_verifier="v" * 43)
    assert await call("complete_mcp_sign_in", **me, state=f"state{n}") == ("todo", "v" * 43)
    await call("delete_mcp_config", **me, name="todo")
    task = await call("add_task", **me, title="Renew the passport")
    assert (await call("get_task", **me, task_id=task.id)).title == "Renew the passport"
    await call("update_task", **me, task_id=task.id, description="before May")
    await call("complete_task", **me, task_id=task.id)
    assert (await call("list_tasks", **me, completed=True)).items[0].id == task.id
    await call("delete_task", **me, task_id=task.id)
    # The user's data out and back in (as a copy: the same export twice adds nothing).
    exported = b"".join([chunk async for chunk in fm.export_user(**me)])
    report = await call("import_conversations", **me, source=exported)
    assert len(report.imported) == 1 and report.failed == []
    again = await fm.import_conversations(**me, source=exported)
    assert again.imported == [] and len(again.skipped) == 1
    await call("delete_folder", **me, folder_id=folder.id)
    await call("delete_tag", **me, tag_id=tag.id)
    await call("delete_conversation", **at)
    erased = await call("delete_user", **me)
    assert erased["users"] == 1 and erased["conversations"] == 1  # the imported copy
    return called


STORE_FUNCTIONS = {
    name for name in store.__all__ if inspect.iscoroutinefunction(getattr(store, name))
}


# --- a transaction pooler ---------------------------------------------------------------


async def started_pgbouncer(
    server: DatabaseTarget, factory: pytest.TempPathFactory, mode: str
) -> AsyncIterator[servers.PgBouncer]:
    """A PgBouncer of the module's own in `mode`, stopped when the module is done."""
    bouncer = servers.PgBouncer(server, factory.mktemp(f"pgbouncer-{mode}"), users=["postgres"])
    await bouncer.start(pool_mode=mode)
    yield bouncer
    bouncer.stop()


@pytest.fixture(scope="module")
async def pgbouncer(
    faceplate_server: DatabaseTarget, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[servers.PgBouncer]:
    async for bouncer in started_pgbouncer(faceplate_server, tmp_path_factory, "transaction"):
        yield bouncer


@pytest.fixture
async def role_defaults(faceplate_db: DatabaseTarget) -> AsyncIterator[dict[str, int]]:
    """The time bounds as defaults the server applies to every new session, as an
    administrator sets them on the application's role behind a transaction pooler. The
    tests' role is the superuser every test shares, so the database's defaults stand in;
    the test may change them, and they are removed after it."""
    settings = load_settings()
    bounds = TimeBounds(
        settings.statement_timeout, settings.lock_timeout, settings.idle_in_transaction_timeout
    ).settings()
    await faults.session_defaults(faceplate_db, bounds)
    try:
        yield bounds
    finally:
        await faults.session_defaults(faceplate_db, None)


@pytest.fixture
async def empty_database(faceplate_server: DatabaseTarget) -> AsyncIterator[DatabaseTarget]:
    target = await create_database(faceplate_server, "deploy")
    yield target
    await drop_database(faceplate_server, target.database)


@pytest.mark.usefixtures("restore_db")
async def test_the_default_mode_behind_a_transaction_pooler_names_the_setting(
    pgbouncer: servers.PgBouncer, faceplate_database: DatabaseTarget
) -> None:
    pooler = pgbouncer.target(faceplate_database.database)
    with pytest.raises(ConfigError, match="FACEPLATE_DB_POOL_MODE=transaction") as caught:
        await fm.init_db(pooler.url())
    assert "refused a startup parameter" in str(caught.value)
    result = faceplate_db_cli("status", env={"FACEPLATE_DATABASE_URL": pooler.url()})
    assert result.returncode == EXIT_ERROR, result.stdout + result.stderr
    assert "FACEPLATE_DB_POOL_MODE=transaction" in result.stderr


@pytest.mark.usefixtures("restore_db", "role_defaults")
async def test_the_store_and_the_orm_through_a_transaction_pooler(
    pgbouncer: servers.PgBouncer, faceplate_db: DatabaseTarget
) -> None:
    await fm.init_db(pgbouncer.target(faceplate_db.database).url(), settings=pooled())
    assert await every_store_call(0) == STORE_FUNCTIONS

    # 50 callers x 20 store calls at once: every statement unprepared or in one transaction.
    failures: list[BaseException] = []

    async def caller(n: int) -> None:
        user = await fm.get_or_create_user(subject_id=f"c|{n}", email=f"c{n}@example.com")
        chat = await fm.create_conversation(user_id=user.id)
        for i in range(9):
            try:
                await fm.append_message(
                    user_id=user.id, conversation_id=chat.id, role="user", content=str(i)
                )
                await fm.get_history(user_id=user.id, conversation_id=chat.id)
            except fm.FaceplateError as exc:
                failures.append(exc)

    started = time.monotonic()
    await asyncio.gather(*(caller(n) for n in range(50)))
    print(
        f"\n50 callers x 20 store calls through PgBouncer: {len(failures)} errors, "
        f"{time.monotonic() - started:.1f} s"
    )
    assert failures == []
    assert await fm.Message.all().count() == 50 * 9

    # The ORM: filter, create, and a transaction that commits and one that rolls back.
    created = await fm.User.create(email="orm@example.com", subject_id="orm")
    assert await fm.User.filter(subject_id="orm").first() == created
    async with in_transaction():
        await fm.Task.create(user=created, title="kept")

    async def undone() -> None:
        async with in_transaction():
            await fm.Task.create(user=created, title="undone")
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        await undone()
    assert [t.title for t in await fm.Task.filter(user=created)] == ["kept"]


@pytest.mark.usefixtures("restore_db", "role_defaults")
async def test_the_time_bounds_hold_through_the_pooler(
    pgbouncer: servers.PgBouncer, faceplate_db: DatabaseTarget
) -> None:
    """No startup parameter reaches the server there: a transaction sets its own bounds,
    a long one (deleting a conversation) included."""
    settings = dataclasses.replace(pooled(), long_statement_timeout=30)
    await fm.init_db(pgbouncer.target(faceplate_db.database).url(), settings=settings)
    user = await fm.get_or_create_user(subject_id="held", email="held@example.com")
    chat = await fm.create_conversation(user_id=user.id)
    holder = await faults.hold_row(faceplate_db, "conversations", chat.id)
    try:
        for call in (
            fm.append_message(user_id=user.id, conversation_id=chat.id, role="user", content="w"),
            fm.delete_conversation(user_id=user.id, conversation_id=chat.id),
        ):
            started = time.monotonic()
            with pytest.raises(fm.LockTimeout):
                await call
            assert time.monotonic() - started < settings.lock_timeout + 1
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()


@pytest.mark.usefixtures("restore_db")
@pytest.mark.parametrize(
    "defaults",
    [{}, {"statement_timeout": 0}, {"lock_timeout": 60_000}],
    ids=["none set", "statement_timeout 0 (the role's own ALTER ROLE)", "lock_timeout too long"],
)
async def test_unbounded_statements_behind_a_transaction_pooler_refuse_to_start(
    pgbouncer: servers.PgBouncer,
    faceplate_db: DatabaseTarget,
    role_defaults: dict[str, int],
    defaults: dict[str, int],
) -> None:
    """The probe reads the bounds in force back: a bound that is off or longer than
    configured refuses the start, naming the fix, instead of serving unbounded."""
    await faults.session_defaults(faceplate_db, {**role_defaults, **defaults} if defaults else None)
    with pytest.raises(ConfigError, match="faceplate-db grants") as caught:
        await fm.init_db(pgbouncer.target(faceplate_db.database).url(), settings=pooled())
    print(f"\n{caught.value}")
    assert f"{next(iter(defaults), 'statement_timeout')} is" in str(caught.value)


# --- a session pooler -------------------------------------------------------------------


@pytest.fixture(scope="module")
async def session_pgbouncer(
    faceplate_server: DatabaseTarget, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[servers.PgBouncer]:
    async for bouncer in started_pgbouncer(faceplate_server, tmp_path_factory, "session"):
        yield bouncer


@pytest.mark.usefixtures("restore_db")
async def test_the_store_and_its_bounds_through_a_session_pooler(
    session_pgbouncer: servers.PgBouncer, faceplate_db: DatabaseTarget
) -> None:
    """PgBouncer in session mode refuses the startup parameters a direct connection sends
    (the default mode says which mode to set); with FACEPLATE_DB_POOL_MODE=session_pooler
    each connection SETs them instead, and keeps them across the reset of a connection
    the ORM used."""
    through = session_pgbouncer.target(faceplate_db.database).url()
    with pytest.raises(ConfigError, match="session_pooler"):
        await fm.init_db(through)
    settings = dataclasses.replace(
        load_settings(), pool_mode=SESSION_POOLER, pool_min=1, pool_max=2
    )
    await fm.init_db(through, settings=settings)
    assert await every_store_call(0) == STORE_FUNCTIONS
    async with in_transaction() as tx:  # the ORM's connection is reset on release
        await tx.execute_query("SELECT 1")
    for _ in range(settings.pool_max * 2):  # every pooled connection, reset or not
        bound = await fm.Task._meta.db.execute_query_dict(
            "SELECT current_setting('lock_timeout') AS lock, "
            "current_setting('search_path') AS path, "
            "current_setting('statement_timeout') AS statement"
        )
        assert bound == [{"lock": "3s", "path": "faceplate", "statement": "10s"}]
    user = await fm.get_or_create_user(subject_id="held", email="held@example.com")
    chat = await fm.create_conversation(user_id=user.id)
    holder = await faults.hold_row(faceplate_db, "conversations", chat.id)
    try:
        started = time.monotonic()
        with pytest.raises(fm.LockTimeout):
            await fm.append_message(
                user_id=user.id, conversation_id=chat.id, role="user", content="w"
            )
        assert time.monotonic() - started < settings.lock_timeout + 1
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()


async def test_migrations_behind_a_pooler_run_on_the_direct_url(
    pgbouncer: servers.PgBouncer, empty_database: DatabaseTarget
) -> None:
    env = {
        "FACEPLATE_DB_POOL_MODE": "transaction",
        "FACEPLATE_DATABASE_URL": pgbouncer.target(empty_database.database).url(),
    }
    refused = faceplate_db_cli("upgrade", env=env)
    assert refused.returncode == EXIT_ERROR
    assert "FACEPLATE_MIGRATION_DATABASE_URL" in refused.stderr
    env["FACEPLATE_MIGRATION_DATABASE_URL"] = empty_database.url()
    for command in ("upgrade", "status"):
        result = faceplate_db_cli(command, env=env)
        assert result.returncode == EXIT_OK, result.stdout + result.stderr
    conn = await connect(empty_database)
    try:
        tables = await conn.fetch(
            "SELECT schemaname FROM pg_tables WHERE tablename = 'aerich' OR schemaname = 'public'"
        )
    finally:
        await conn.close()
    assert [row["schemaname"] for row in tables] == ["faceplate"]


async def test_a_migration_lock_taken_through_the_pooler_dies_with_its_client(
    pgbouncer: servers.PgBouncer, empty_database: DatabaseTarget
) -> None:
    """The lock is transaction-scoped: a client gone mid-run cannot leave it held."""
    through = pgbouncer.target(empty_database.database)
    held = await asyncpg.connect(
        host=through.host,
        port=through.port,
        user=through.user,
        database=through.database,
        statement_cache_size=0,
    )
    await held.execute("BEGIN")
    await held.execute(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
    held.terminate()  # a deploy killed mid-migration, behind the pooler
    started = time.monotonic()
    result = faceplate_db_cli(
        "upgrade", "--lock-timeout", "10", env={"FACEPLATE_DATABASE_URL": empty_database.url()}
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert time.monotonic() - started < 8


async def test_a_held_migration_lock_is_waited_for_then_its_holder_named(
    empty_database: DatabaseTarget,
) -> None:
    holder = await connect(empty_database)
    await holder.execute("BEGIN")
    await holder.execute(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})")
    pid = await holder.fetchval("SELECT pg_backend_pid()")
    started = time.monotonic()
    result = faceplate_db_cli(
        "upgrade", "--lock-timeout", "1", env={"FACEPLATE_DATABASE_URL": empty_database.url()}
    )
    waited = time.monotonic() - started
    await holder.execute("ROLLBACK")
    await holder.close()
    print(f"\nmigration lock held elsewhere: exit {result.returncode} after {waited:.1f} s")
    assert result.returncode == EXIT_ERROR
    assert "migration lock" in result.stderr and f"pid {pid}" in result.stderr
    assert waited < 8  # one second of waiting, and a process start
    again = faceplate_db_cli("upgrade", env={"FACEPLATE_DATABASE_URL": empty_database.url()})
    assert again.returncode == EXIT_OK, again.stderr
    for bad in ("0", "-1", "inf", "nan", "soon"):
        usage = faceplate_db_cli("upgrade", "--lock-timeout", bad, env={})
        assert usage.returncode == 2 and "--lock-timeout" in usage.stderr


# --- a shared database: an owner that migrates, an application role that serves -------

LATER_TABLE = '''from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """CREATE TABLE "faceplate"."later" ("id" INT PRIMARY KEY);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """DROP TABLE "faceplate"."later";"""
'''


@pytest.fixture
async def shared_database(
    faceplate_server: DatabaseTarget,
) -> AsyncIterator[tuple[DatabaseTarget, DatabaseTarget, DatabaseTarget]]:
    """A database the DBA owns, with schema `faceplate` made for an owner role that has no
    CREATE on the database, another application's schema beside it, and an application
    role; yields the targets of the owner, of the application, and of the DBA."""
    suffix = uuid.uuid4().hex[:8]
    owner, app = f"faceplate_owner_{suffix}", f"faceplate_app_{suffix}"
    shared = await create_database(faceplate_server, "shared")
    admin = await connect(faceplate_server)
    dba = await connect(shared)
    try:
        await admin.execute(f'CREATE ROLE "{owner}" LOGIN; CREATE ROLE "{app}" LOGIN')
        await dba.execute(
            f"""REVOKE ALL ON DATABASE "{shared.database}" FROM PUBLIC;
                GRANT CONNECT ON DATABASE "{shared.database}" TO "{owner}", "{app}";
                REVOKE CREATE ON SCHEMA public FROM PUBLIC;
                CREATE SCHEMA faceplate AUTHORIZATION "{owner}";
                CREATE SCHEMA billing;
                CREATE TABLE billing.invoices (id int PRIMARY KEY, total numeric);
                INSERT INTO billing.invoices VALUES (1, 42)"""
        )
        yield (
            DatabaseTarget(shared.host, shared.port, shared.database, owner),
            DatabaseTarget(shared.host, shared.port, shared.database, app),
            shared,
        )
    finally:
        await dba.close()
        await drop_database(faceplate_server, shared.database)
        await admin.execute(f'DROP ROLE IF EXISTS "{owner}"; DROP ROLE IF EXISTS "{app}"')
        await admin.close()


@pytest.mark.usefixtures("restore_db")
async def test_least_privilege_roles_in_a_shared_database(
    shared_database: tuple[DatabaseTarget, DatabaseTarget, DatabaseTarget],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner, app, dba_target = shared_database
    as_owner = {"FACEPLATE_DATABASE_URL": owner.url()}
    migrated = faceplate_db_cli("upgrade", env=as_owner)
    assert migrated.returncode == EXIT_OK, migrated.stderr

    printed = faceplate_db_cli("grants", "--app-role", app.user, env=as_owner)
    assert printed.returncode == EXIT_OK, printed.stderr
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON "faceplate"."users"' in printed.stdout
    assert "ALTER DEFAULT PRIVILEGES" in printed.stdout
    applied = faceplate_db_cli("grants", "--app-role", app.user, "--apply", env=as_owner)
    assert applied.returncode == EXIT_OK, applied.stderr

    # The application role serves every store call, having checked the schema's version...
    await fm.init_db(app.url())
    assert "cannot check the schema version" not in caplog.text
    assert await every_store_call(1) == STORE_FUNCTIONS
    await fm.close_db()

    # ...and a table a later migration adds is the application's too, without new grants.
    copy = tmp_path / "migrations"
    shutil.copytree(migrations_location(), copy)
    (copy / "models" / f"{len(version_files())}_20990101000000_later.py").write_text(LATER_TABLE)
    later = faceplate_db_cli("upgrade", "--migrations", str(copy), env=as_owner)
    assert later.returncode == EXIT_OK, later.stderr

    conn = await connect(app)
    try:
        await conn.execute("INSERT INTO faceplate.later VALUES (1)")
        for ddl in (
            "CREATE TABLE faceplate.sneaky (id int)",
            "CREATE TABLE public.sneaky (id int)",
            "DROP TABLE faceplate.users",
            "SELECT * FROM billing.invoices",
            "DELETE FROM faceplate.aerich",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(ddl)
    finally:
        await conn.close()
    dba = await connect(dba_target)
    try:
        public = await dba.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        invoices = await dba.fetch("SELECT id, total FROM billing.invoices")
    finally:
        await dba.close()
    assert public == [] and [tuple(r) for r in invoices] == [(1, 42)]


# --- verified TLS ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server whose certificate, for `localhost` only, is signed by a CA of the test's own;
    it also allows plain connections, so that a downgrade would show."""
    root = tmp_path_factory.mktemp("tls")
    certs = root / "certs"
    certs.mkdir()
    ca = servers.certificate_authority("Faceplate test CA")
    other_ca = servers.certificate_authority("Another CA")
    servers.write_pem(certs, "ca", *ca)
    servers.write_pem(certs, "other-ca", *other_ca)
    servers.write_pem(certs, "server", *servers.issue(ca, "localhost", dns=["localhost"]))
    servers.write_pem(certs, "client", *servers.issue(ca, "faceplate_cert"))
    cluster = servers.Cluster(root / "cluster", servers.system_postgres()).init()
    server_files = cluster.data / "tls"
    server_files.mkdir()
    for name in ("ca.crt", "server.crt", "server.key"):
        (server_files / name).write_bytes((certs / name).read_bytes())
    (server_files / "server.key").chmod(0o600)  # PostgreSQL refuses a key others can read
    cluster.configure(
        ssl="on",
        ssl_cert_file=server_files / "server.crt",
        ssl_key_file=server_files / "server.key",
        ssl_ca_file=server_files / "ca.crt",
    )
    cluster.allow(
        "hostssl all faceplate_cert 127.0.0.1/32 trust clientcert=verify-ca",
        "hostssl all all 127.0.0.1/32 trust",
        "host all all 127.0.0.1/32 trust",
    )
    servers._own(cluster.root)
    cluster.start()
    try:
        cluster.psql("CREATE ROLE faceplate_cert LOGIN")
        # Migrated as the superuser, over a plain connection, so that the tests' init_db
        # finds a schema it can serve.
        migrated = faceplate_db_cli("upgrade", url=cluster.target().url())
        assert migrated.returncode == EXIT_OK, migrated.stderr
        yield cluster, certs
    finally:
        cluster.stop()


@pytest.mark.usefixtures("restore_db")
async def test_verify_full_connects_only_to_the_right_server(tls_server: Any) -> None:
    cluster, certs = tls_server
    right = {"ssl": "verify-full", "sslrootcert": str(certs / "ca.crt")}

    # The right CA and the name on the certificate: connected, over TLS.
    await fm.init_db(cluster.target(host="localhost", **right).url())
    rows = await fm.Task._meta.db.execute_query_dict(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    )
    assert rows == [{"ssl": True}]
    await fm.close_db()

    # The certificate names localhost only, not 127.0.0.1; another CA signed nothing here.
    # The server takes plain connections too: a client that fell back would get in.
    refusals = {
        "a host name the certificate does not name": (cluster.target(**right), "mismatch"),
        "another CA": (
            cluster.target(
                host="localhost", ssl="verify-full", sslrootcert=str(certs / "other-ca.crt")
            ),
            "certificate verification failed",
        ),
    }
    for case, (target, words) in refusals.items():
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match=words) as caught:
            await fm.init_db(target.url())
        print(f"\nverify-full with {case}: refused in {time.monotonic() - started:.2f} s")
        assert "sslrootcert" in str(caught.value)


@pytest.mark.usefixtures("restore_db")
async def test_a_client_certificate_from_the_url(tls_server: Any) -> None:
    cluster, certs = tls_server
    tls = {"ssl": "verify-full", "sslrootcert": str(certs / "ca.crt")}
    without = cluster.target(host="localhost", user="faceplate_cert", **tls)
    with pytest.raises(DatabaseUnavailable, match="certificate"):
        await fm.init_db(without.url())
    with_cert = cluster.target(
        host="localhost",
        user="faceplate_cert",
        sslcert=str(certs / "client.crt"),
        sslkey=str(certs / "client.key"),
        **tls,
    )
    await fm.init_db(with_cert.url())
    assert fm.pool_stats().size >= 1
