"""Deploy-safe migrations: Aerich's version files, applied under a PostgreSQL advisory lock.

Aerich alone has no lock (two replicas apply the same migration twice) and, when it
cannot see its version table, re-applies history from the first file. Every path here
takes a session-level advisory lock first and refuses to guess about a schema whose
version table is missing.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from aerich import Command
from aerich.migrate import Migrate
from tortoise import Tortoise

from faceplate_models.config import APP, SCHEMA, DatabaseTarget
from faceplate_models.engine import describe_connect_error
from faceplate_models.errors import DatabaseUnavailable, MigrationError

# Any constant works as long as every deploy of this package uses the same one.
ADVISORY_LOCK_KEY = 0x66616365_706C6174  # "faceplat"
VERSION_TABLE = f"{SCHEMA}.aerich"


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


def version_files(location: Path | None = None) -> list[str]:
    """The version files in order, as Aerich names them (`0_..._init.py`, ...)."""
    folder = Migrate.get_migration_dir(str(location or migrations_location()), APP)
    numbered = [p.name for p in folder.glob("*.py") if p.name.split("_", 1)[0].isdigit()]
    return sorted(numbered, key=lambda name: int(name.split("_", 1)[0]))


def _connect_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    credentials = config["connections"]["default"]["credentials"]
    kwargs = {
        key: credentials[key]
        for key in ("host", "port", "user", "password", "database", "timeout", "ssl")
        if credentials.get(key) is not None
    }
    kwargs["server_settings"] = {
        "search_path": SCHEMA,
        "application_name": f"{credentials.get('application_name', 'faceplate')} migrate",
    }
    return kwargs


async def _connect(config: dict[str, Any]) -> asyncpg.Connection:
    """A connection of its own, outside the pool, with `search_path` set to the schema."""
    kwargs = _connect_kwargs(config)
    try:
        return await asyncpg.connect(**kwargs)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        where = DatabaseTarget(kwargs["host"], kwargs["port"], kwargs["database"], kwargs["user"])
        raise DatabaseUnavailable(
            f"cannot reach {where.describe()}: {describe_connect_error(exc)}"
        ) from exc


@asynccontextmanager
async def _locked(config: dict[str, Any]) -> AsyncIterator[asyncpg.Connection]:
    """Hold the migration advisory lock on a connection of its own, outside the pool."""
    conn = await _connect(config)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_LOCK_KEY)
        try:
            yield conn
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", ADVISORY_LOCK_KEY)
    finally:
        await conn.close()


async def _applied(conn: asyncpg.Connection) -> list[str] | None:
    """The applied versions in order, or None when there is no version table."""
    if await conn.fetchval("SELECT to_regclass($1)", VERSION_TABLE) is None:
        return None
    try:
        rows = await conn.fetch(
            f"SELECT version FROM {VERSION_TABLE} WHERE app = $1 ORDER BY id",
            APP,
        )
    except asyncpg.PostgresError as exc:
        raise MigrationError(
            f"the version table {VERSION_TABLE} exists but cannot be read ({exc}); "
            "nothing was changed"
        ) from exc
    return [row["version"] for row in rows]


async def _guard(conn: asyncpg.Connection) -> list[str]:
    """The applied versions, refusing a schema that has tables but no version history."""
    applied = await _applied(conn)
    if not applied:
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


async def read_status(config: dict[str, Any], location: Path | None = None) -> MigrationStatus:
    """Applied and pending migrations, read without the lock and without changing anything."""
    conn = await _connect(config)
    try:
        applied = await _guard(conn)
    finally:
        await conn.close()
    pending = [v for v in version_files(location) if v not in applied]
    return MigrationStatus(applied=applied, pending=pending)


async def _command(config: dict[str, Any], location: Path | None) -> Command:
    if not Tortoise.is_inited():
        await Tortoise.init(config=config, _enable_global_fallback=True)
    command = Command(
        tortoise_config=config, app=APP, location=str(location or migrations_location())
    )
    await command.init()
    return command


async def upgrade(config: dict[str, Any], location: Path | None = None) -> list[str]:
    """Apply every pending migration, each in its own transaction; return the applied names.

    Concurrent callers queue on the advisory lock; the ones that get it after the first
    find nothing left to do.
    """
    async with _locked(config) as conn:
        await _guard(conn)
        command = await _command(config, location)
        try:
            return list(await command.upgrade(run_in_transaction=True))
        except Exception as exc:
            done = await _applied(conn) or []
            failed = next((v for v in version_files(location) if v not in done), "?")
            raise MigrationError(
                f"migration {failed} failed and was rolled back; the schema and the version "
                f"table are as they were before it ({type(exc).__name__}: {exc})"
            ) from exc


async def downgrade(
    config: dict[str, Any], version: int, location: Path | None = None
) -> list[str]:
    """Undo every migration after `version` (the number before the first underscore)."""
    async with _locked(config) as conn:
        applied = await _guard(conn)
        numbers = [int(v.split("_", 1)[0]) for v in applied]
        if version not in numbers:
            raise MigrationError(
                f"version {version} is not applied (applied: {', '.join(applied) or 'none'})"
            )
        if version == numbers[-1]:
            return []
        command = await _command(config, location)
        target = applied[numbers.index(version) + 1]
        try:
            return list(await command.downgrade(int(target.split("_", 1)[0]), delete=False))
        except Exception as exc:
            raise MigrationError(
                f"downgrade to {version} failed and was rolled back ({type(exc).__name__}: {exc})"
            ) from exc


async def pending_model_changes(config: dict[str, Any], location: Path | None = None) -> str:
    """The SQL of the migration the models need beyond the last file; empty when in sync.

    Aerich diffs against the last file's MODELS_STATE offline, in a throwaway copy of the
    migrations folder: no database is touched and no file of the project is written.
    """
    source = location or migrations_location()
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
    with tempfile.TemporaryDirectory(prefix="faceplate-check-") as scratch:
        shutil.copytree(source, scratch, dirs_exist_ok=True)
        if not Tortoise.is_inited():
            await Tortoise.init(config=config)
        command = Command(tortoise_config=config, app=APP, location=scratch)
        await command.init(offline=True)
        created = await command.migrate(name="check", no_input=True, offline=True)
        if not created:
            return ""
        module = Migrate.get_migration_info_for_file(created)
        return str(await module.upgrade(None)).strip()  # type: ignore[arg-type]
