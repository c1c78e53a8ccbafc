"""Deploy-safe migrations: Aerich's version files, applied under a lock, on a live database.

Aerich alone has no lock (two replicas apply the same migration twice) and, when it
cannot see its version table, re-applies history from the first file. Here a run first
takes a session advisory lock on a direct connection of its own, held, with no transaction
open, until the run ends (or the connection drops): a concurrent index build waits for every
open snapshot, so a lock held inside a transaction would stall such a step forever. The wait
for the lock is bounded. Concurrent runs queue on it; the later ones find nothing to do. A
schema whose version table is missing is refused rather than rebuilt.

Every migration after the first is written for a database that is serving traffic: expand,
then contract (the previous release keeps working between the two). A version file with
`RUN_IN_TRANSACTION = True` holds its locks for a moment only (`briefly` bounds its wait for
them, and `upgrade` tries it again when the wait ran out); one with `RUN_IN_TRANSACTION =
False` does what no single transaction can, each statement committing by itself: indexes
built concurrently (`build_index`, which replaces an invalid one a crash left), constraints
added then validated (`run_briefly`), backfills in bounded batches that resume where they
stopped (`backfill`). Plain `aerich upgrade` runs the same files the same way, without the
lock and without the retries.

Aerich runs in a task of its own with an empty context: its `Tortoise.init` would
otherwise re-initialise, and close, the application's connections.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from tortoise import Tortoise

from faceplate_models.config import APP, SCHEMA, DatabaseTarget, Settings
from faceplate_models.engine import FaceplateClient, connect_error
from faceplate_models.engine.bounds import TimeBounds
from faceplate_models.errors import ConfigError, DatabaseError, MigrationError
from faceplate_models.models import MODELS

if TYPE_CHECKING:
    from aerich import Command
    from tortoise import BaseDBAsyncClient

log = logging.getLogger(__name__)

T = TypeVar("T")

# Any constant works as long as every deploy of this package uses the same one.
ADVISORY_LOCK_KEY = 0x66616365_706C6174  # "faceplat"
#: Seconds a migration's DDL may wait for a table lock: the store's calls on that table queue
#: behind the waiting DDL, so the wait is short, and tried again after a pause.
DDL_LOCK_TIMEOUT = 0.5
DDL_ATTEMPTS = 30
#: Rows one backfill batch writes: one short transaction, a few tens of milliseconds.
BACKFILL_BATCH = 1000
_LOCK_POLL = 0.1
VERSION_TABLE = f"{SCHEMA}.aerich"
#: Seconds a migration waits for another deploy's migration before giving up.
DEFAULT_LOCK_TIMEOUT = 60.0
#: The tables the application role reads and writes (Aerich's version table is not one).
APP_TABLES = [model._meta.db_table for model in MODELS]


@dataclass(frozen=True)
class MigrationStatus:
    """What the database has applied and what the migration files still hold."""

    applied: list[str]
    pending: list[str]

    @property
    def current(self) -> bool:
        """Whether every migration file is applied."""
        return not self.pending


def migrations_location() -> Path:
    """The folder holding Aerich's `models/` version files.

    An installed wheel carries them inside the package; a checkout keeps them at the root.
    """
    packaged = Path(__file__).parent / "migrations"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "migrations"


def version_files(location: Path | None = None, app: str = APP) -> list[str]:
    """The version files of `app` in order, as Aerich names them (`0_..._init.py`, ...)."""
    folder = Path(location or migrations_location()) / app  # where Aerich keeps an app's files
    if not folder.is_dir():
        raise MigrationError(f"there is no migrations folder at {folder}")
    numbered = [p.name for p in folder.glob("*.py") if p.name.split("_", 1)[0].isdigit()]
    return sorted(numbered, key=lambda name: int(name.split("_", 1)[0]))


def _isolated(work: Coroutine[Any, Any, T]) -> Awaitable[T]:
    """Run `work` in a task whose Tortoise state starts empty and stays its own."""
    return asyncio.create_task(work, context=contextvars.Context())


def _target(config: dict[str, Any]) -> DatabaseTarget:
    c = config["connections"]["default"]["credentials"]
    return DatabaseTarget(c["host"], c["port"], c["database"], c["user"])


async def _connect(config: dict[str, Any]) -> asyncpg.Connection:
    """A connection of its own, outside the pool, with `search_path` set to the schema."""
    credentials = config["connections"]["default"]["credentials"]
    password = credentials.get("password")
    kwargs = {
        key: credentials[key]
        for key in ("host", "port", "user", "database", "timeout", "ssl")
        if credentials.get(key) is not None
    }
    try:
        return await asyncpg.connect(
            **kwargs,
            password=password() if callable(password) else password,
            server_settings={
                "search_path": SCHEMA,
                "application_name": credentials["application_name"],
            },
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise connect_error(exc, _target(config).describe()) from exc


async def _applied(conn: asyncpg.Connection, app: str = APP) -> list[str] | None:
    """The applied versions in order, or None when there is no version table."""
    if await conn.fetchval("SELECT to_regclass($1)", VERSION_TABLE) is None:
        return None
    try:
        rows = await conn.fetch(
            f"SELECT version FROM {VERSION_TABLE} WHERE app = $1 ORDER BY id",
            app,
        )
    except asyncpg.PostgresError as exc:
        raise MigrationError(
            f"the version table {VERSION_TABLE} exists but cannot be read ({exc}); "
            "nothing was changed"
        ) from exc
    return [row["version"] for row in rows]


async def _guard(conn: asyncpg.Connection, app: str = APP) -> list[str]:
    """The applied versions, refusing a schema that has tables but no version history."""
    applied = await _applied(conn, app)
    if not applied and app == APP:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'aerich'",
            SCHEMA,
        )
        if tables:
            names = ", ".join(sorted(row["tablename"] for row in tables))
            raise MigrationError(
                f"schema {SCHEMA} has tables ({names}) but its version table {VERSION_TABLE} "
                f"{'is missing' if applied is None else 'is empty'}; refusing to re-apply every "
                "migration over them. Restore the version table, or record the applied "
                "versions with `aerich upgrade --fake`, then run this again; nothing was changed"
            )
    return applied or []


async def _guarded(config: dict[str, Any], app: str = APP) -> list[str]:
    conn = await _connect(config)
    try:
        return await _guard(conn, app)
    finally:
        await conn.close()


async def read_status(config: dict[str, Any], location: Path | None = None) -> MigrationStatus:
    """Applied and pending migrations, read without the lock and without changing anything."""
    files = version_files(location)
    applied = await _guarded(config)
    return MigrationStatus(applied=applied, pending=[v for v in files if v not in applied])


_VERSIONS_SQL = f"SELECT version FROM {VERSION_TABLE} WHERE app = $1 ORDER BY id"


async def verify_schema(client: FaceplateClient, location: Path | None = None) -> None:
    """Refuse to serve a database whose schema is missing or behind this release's migrations.

    A database migrated by a newer release (then rolled back) is served: every migration
    keeps the previous release working, and a log line says so. A role that may not read the
    version table (least-privilege grants made before they included it) skips the check,
    with a warning naming the grant.
    """
    files = version_files(location)
    try:
        rows = await client.run(lambda conn: conn.fetch(_VERSIONS_SQL, APP), retry=False)
    except DatabaseError as exc:
        if exc.sqlstate == "42501":  # insufficient privilege
            log.warning(
                "cannot check the schema version of %s: this role may not read %s (`faceplate-db "
                "grants` prints the GRANT that allows it)",
                client.where,
                VERSION_TABLE,
            )
            return
        if exc.sqlstate != "42P01":  # undefined table: never migrated
            raise
        raise MigrationError(
            f"{client.where} has no {SCHEMA} schema yet (its migrations were never applied): "
            "run `faceplate-db upgrade` before starting the application, or call "
            "init_db(migrate=True)"
        ) from None
    applied = [row["version"] for row in rows]
    pending = [version for version in files if version not in applied]
    if pending:
        raise MigrationError(
            f"{client.where} is {len(pending)} migration(s) behind this release of "
            f"faceplate-models (pending: {', '.join(pending)}): run `faceplate-db upgrade` "
            "before starting this release, or call init_db(migrate=True)"
        )
    if applied and applied[-1] not in files:
        log.warning(
            "%s was migrated by a newer release of faceplate-models (its latest migration is "
            "%s; this release's is %s): this release keeps working with it, as every "
            "migration keeps the previous release working",
            client.where,
            applied[-1],
            files[-1],
        )


def version_models() -> str:
    """The module of Aerich's version table, for the Tortoise config of a process that
    migrates: imported here, with the table placed in this package's schema (it has none of
    its own and would land wherever search_path points: `public` through a pooler)."""
    from aerich.models import Aerich

    Aerich._meta.schema = SCHEMA
    return Aerich.__module__


async def _command(config: dict[str, Any], location: Path | None, app: str = APP) -> Command:
    from aerich import Command  # the migration tool, for the processes that migrate only

    await Tortoise.init(config=config)
    command = Command(
        tortoise_config=config, app=app, location=str(location or migrations_location())
    )
    await command.init()
    return command


async def _holder(conn: asyncpg.Connection) -> str:
    """Who holds the migration lock, for the error of a run that waited in vain."""
    row = await conn.fetchrow(
        """SELECT a.pid, a.application_name, a.usename, a.client_addr, a.state,
                  date_trunc('second', now() - a.backend_start) AS held_for
           FROM pg_locks l JOIN pg_stat_activity a USING (pid)
           WHERE l.locktype = 'advisory' AND l.granted
             AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1""",
        ADVISORY_LOCK_KEY >> 32,
        ADVISORY_LOCK_KEY & 0xFFFFFFFF,
    )
    if row is None:
        return "a session that has since let it go"
    return (
        f"backend pid {row['pid']} ({row['application_name'] or 'no application name'}, user "
        f"{row['usename']}, from {row['client_addr'] or 'a local socket'}, {row['state']}, "
        f"for {row['held_for']})"
    )


@asynccontextmanager
async def _locked(
    config: dict[str, Any], lock_timeout: float, app: str = APP
) -> AsyncIterator[list[str]]:
    """Hold the migration lock for the block; yields the applied versions, read under it.

    Each statement here commits by itself, so the connection holds the lock and no snapshot.
    """
    conn = await _connect(config)
    try:
        deadline = asyncio.get_running_loop().time() + lock_timeout
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_LOCK_KEY):
            if asyncio.get_running_loop().time() >= deadline:
                raise MigrationError(
                    f"waited {lock_timeout:g} s for the migration lock (--lock-timeout) and it "
                    f"is still held, by {await _holder(conn)}; nothing was changed"
                )
            await asyncio.sleep(_LOCK_POLL)
        yield await _guard(conn, app)
    finally:
        await conn.close()  # the session's lock goes with it


async def upgrade(
    config: dict[str, Any],
    location: Path | None = None,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    app: str = APP,
) -> list[str]:
    """Apply every pending migration, each in its own transaction; return the applied names.

    Concurrent callers queue on the lock; the ones that get it after the first find
    nothing left to do. `config` must be a migration config (`migrating=True`). `app` and
    `location` name another Tortoise app's migrations (an application's own, see
    `init_db(models=...)`), applied the same way, under the same lock.
    """
    files = version_files(location, app)
    async with _locked(config, lock_timeout, app) as before:

        async def work() -> list[str]:
            command = await _command(config, location, app)
            try:
                return list(await command.upgrade(run_in_transaction=True))
            finally:
                await Tortoise.close_connections()

        done: list[str] = []  # applied by this run's earlier attempts
        for attempt in range(1, DDL_ATTEMPTS + 1):
            try:
                return done + await _isolated(work())
            except Exception as exc:
                applied = await _guarded(config, app)
                done = [v for v in files if v in applied and v not in before]
                failed = next((v for v in files if v not in applied), "?")
                if _lock_timed_out(exc) and attempt < DDL_ATTEMPTS:
                    # It gave up its lock wait rather than stall the store's calls behind it.
                    log.warning(
                        "migration %s waited %g s for a table lock another session holds; "
                        "trying again (%d of %d)",
                        failed,
                        DDL_LOCK_TIMEOUT,
                        attempt,
                        DDL_ATTEMPTS,
                    )
                    await asyncio.sleep(DDL_LOCK_TIMEOUT * (1 + random.random()))  # noqa: S311
                    continue
                if failed != "?" and not _transactional(location, app, failed):
                    raise MigrationError(
                        f"migration {failed} failed partway ({type(exc).__name__}: {exc}); its "
                        "steps commit one by one and resume where they stopped: run the "
                        "upgrade again to finish it"
                    ) from exc
                raise MigrationError(
                    f"migration {failed} failed and was rolled back; the schema and the version "
                    f"table are as they were before it ({type(exc).__name__}: {exc})"
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover


def _lock_timed_out(exc: BaseException | None) -> bool:
    """Whether `exc` (or what caused it) is a lock wait the server ended (SQLSTATE 55P03)."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) == "55P03":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _transactional(location: Path | None, app: str, version: str) -> bool:
    """Whether the version file runs in one transaction (Aerich's default)."""
    folder = Path(location or migrations_location()) / app
    text = (folder / version).read_text()
    return re.search(r"^RUN_IN_TRANSACTION\s*=\s*False", text, re.M) is None


# --- what version files use -------------------------------------------------------------


def briefly(sql: str) -> str:
    """`sql`, for a transactional version file, with its lock waits bounded by
    DDL_LOCK_TIMEOUT: a wait that runs out fails the file, which `upgrade` tries again."""
    return f"{TimeBounds(lock=DDL_LOCK_TIMEOUT).set_local()};\n{sql}"


async def run_briefly(db: BaseDBAsyncClient, sql: str) -> None:
    """Run `sql` in a transaction of its own whose lock waits are bounded by DDL_LOCK_TIMEOUT,
    tried again (up to DDL_ATTEMPTS times) while another session holds the lock."""
    from tortoise.transactions import in_transaction

    for attempt in range(1, DDL_ATTEMPTS + 1):
        try:
            async with in_transaction(db.connection_name) as transaction:
                await transaction.execute_script(briefly(sql))
            return
        except Exception as exc:
            if not _lock_timed_out(exc) or attempt == DDL_ATTEMPTS:
                raise
            await asyncio.sleep(DDL_LOCK_TIMEOUT * (1 + random.random()))  # noqa: S311


async def build_index(db: BaseDBAsyncClient, name: str, create: str) -> None:
    """Build index `name` with `create` (a `CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS`
    statement): writers go on meanwhile. An invalid index of that name, left by a build a
    crash interrupted, is dropped and built again; a valid one is kept."""
    rows = await db.execute_query_dict(
        """SELECT i.indisvalid AS valid FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = $1 AND c.relname = $2""",
        [SCHEMA, name],
    )
    if rows and rows[0]["valid"]:
        return
    if rows:
        log.warning("index %s was left invalid by an interrupted build; building it again", name)
        await db.execute_script(f'DROP INDEX CONCURRENTLY IF EXISTS "{SCHEMA}"."{name}"')
    await db.execute_script(create)


async def backfill(db: BaseDBAsyncClient, function: str, *, batch: int = BACKFILL_BATCH) -> int:
    """Call the SQL function `function(position, batch)` until it returns NULL.

    Each call is one short transaction of its own that writes at most about `batch` rows and
    returns where the next call starts. What is left to do is read from the data, so a run
    that stopped (a crash, a deploy killed midway) resumes by starting again. Returns the
    number of calls.
    """
    position: Any = None
    calls = 0
    while True:
        rows = await db.execute_query_dict(
            f"SELECT {function}($1, $2) AS position", [position, batch]
        )
        calls += 1
        position = rows[0]["position"]
        if calls % 100 == 0:
            log.info("%s: %d batches of %d rows done", function, calls, batch)
        if position is None:
            return calls


async def downgrade(
    config: dict[str, Any],
    version: int,
    location: Path | None = None,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> list[str]:
    """Undo every migration after `version` (the number before the first underscore)."""
    async with _locked(config, lock_timeout) as applied:
        numbers = [int(v.split("_", 1)[0]) for v in applied]
        if version not in numbers:
            raise MigrationError(
                f"version {version} is not applied (applied: {', '.join(applied) or 'none'})"
            )
        if version == numbers[-1]:
            return []
        target = int(applied[numbers.index(version) + 1].split("_", 1)[0])

        async def work() -> list[str]:
            command = await _command(config, location)
            try:
                return list(await command.downgrade(target, delete=False))
            finally:
                await Tortoise.close_connections()

        try:
            return await _isolated(work())
        except Exception as exc:
            raise MigrationError(
                f"downgrade to {version} failed and was rolled back ({type(exc).__name__}: {exc})"
            ) from exc


def _role(name: str) -> str:
    if not name or len(name) > 63 or "\x00" in name:
        raise ConfigError(f"--app-role must be a role name of 1 to 63 characters, not {name!r}")
    return '"' + name.replace('"', '""') + '"'


def grants(owner: str, app_role: str) -> list[str]:
    """The statements that give `app_role` DML on the package's tables (and a read of the
    version table) and nothing else.

    `owner` is the role that runs migrations: the default privileges make the tables it
    creates later readable and writable by `app_role` too.
    """
    app, by = _role(app_role), _role(owner)
    tables = ", ".join(f'"{SCHEMA}"."{table}"' for table in APP_TABLES)
    return [
        f'GRANT USAGE ON SCHEMA "{SCHEMA}" TO {app}',
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {app}",
        # init_db reads the applied versions, to refuse a schema behind the release.
        f'GRANT SELECT ON "{SCHEMA}"."aerich" TO {app}',
        f'ALTER DEFAULT PRIVILEGES FOR ROLE {by} IN SCHEMA "{SCHEMA}" '
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
    ]


def role_bounds(app_role: str, settings: Settings) -> list[str]:
    """The time bounds and dead-peer settings as the role's defaults: what a transaction
    pooler cannot send."""
    bounds = TimeBounds(
        settings.statement_timeout, settings.lock_timeout, settings.idle_in_transaction_timeout
    )
    return bounds.alter_role(_role(app_role))


async def apply_grants(config: dict[str, Any], statements: list[str]) -> None:
    """Run `statements` in one transaction as the migration role."""
    conn = await _connect(config)
    try:
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"the grants were refused ({exc}); nothing was changed") from exc
    finally:
        await conn.close()


async def pending_model_changes(config: dict[str, Any], location: Path | None = None) -> str:
    """The SQL of the migration the models need beyond the last file; empty when in sync.

    Aerich diffs against the last file's MODELS_STATE offline, in a throwaway copy of the
    migrations folder: no database is touched and no file of the project is written.
    """
    import shutil
    import tempfile

    from aerich import Command
    from aerich.migrate import Migrate

    source = location or migrations_location()
    version_files(source)  # a missing folder is an error, not "in sync"
    # Aerich keeps its operator lists on the class; start every comparison from empty.
    for name in (
        "upgrade_operators",
        "downgrade_operators",
        "_upgrade_fk_m2m_index_operators",
        "_downgrade_fk_m2m_index_operators",
        "_upgrade_m2m",
        "_downgrade_m2m",
    ):
        setattr(Migrate, name, [])

    async def work() -> str:
        with tempfile.TemporaryDirectory(prefix="faceplate-check-") as scratch:
            shutil.copytree(source, scratch, dirs_exist_ok=True)
            await Tortoise.init(config=config)
            try:
                command = Command(tortoise_config=config, app=APP, location=scratch)
                await command.init(offline=True)
                created = await command.migrate(name="check", no_input=True, offline=True)
                if not created:
                    return ""
                module = Migrate.get_migration_info_for_file(created)
                return str(await module.upgrade(None)).strip()  # type: ignore[arg-type]
            finally:
                await Tortoise.close_connections()

    return await _isolated(work())
