"""The database lifecycle: connect (and probe) at startup, migrate, report, close.

One event loop owns the package's pool at a time: asyncpg's connections belong to the loop
that opened them. `init_db` from a second thread whose loop is running while the first
one's is too raises `ConfigError` saying so; once the first loop has stopped (a script
that ran `asyncio.run` twice), a new `init_db` takes over.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any

import tortoise.context
from tortoise import Tortoise, connections
from tortoise.context import get_current_context
from tortoise.exceptions import BaseORMException

from faceplate_models import replicas, secrets
from faceplate_models.config import (
    APP,
    APPLICATION_APP,
    MODEL_MODULES,
    REPLICA,
    TRANSACTION,
    DatabaseTarget,
    Settings,
    load_settings,
    parse_database_url,
)
from faceplate_models.engine import FaceplateClient, PoolStats, current, describe_connect_error
from faceplate_models.engine.options import connection
from faceplate_models.errors import ConfigError, DatabaseUnavailable, FaceplateError
from faceplate_models.store import _quotas as quotas, replies

log = logging.getLogger(__name__)

# The probe gives up a little before the connect timeout so that the error is in the
# caller's hands within it, not a few milliseconds after.
_PROBE_SHARE = 0.9
# The event loop that owns the pool (see the module's docstring).
_owner: asyncio.AbstractEventLoop | None = None


def tortoise_config(
    target: DatabaseTarget,
    settings: Settings,
    *,
    migrating: bool = False,
    replicas: tuple[DatabaseTarget, ...] = (),
    app_models: Sequence[str] = (),
) -> dict[str, Any]:
    """The dict that `Tortoise.init` and Aerich read.

    It is built as a dict rather than a URL because Tortoise casts URL query values with
    `bool()` (`?ssl=false` would turn TLS on). On a direct connection the time bounds, the
    dead-peer settings and `search_path` are startup parameters; a session pooler refuses
    those, so there each new connection SETs them first; a transaction pooler keeps no
    session, so there every statement is schema-qualified, asyncpg keeps no named prepared
    statement, the engine bounds transactions itself and the role's defaults bound single
    statements.
    Migrations (`migrating=True`) always run in session mode, on the direct connection,
    without the time bounds meant for requests: later migrations use bare table names.
    """
    connections = {"default": connection(target, settings, migrating=migrating)}
    for number, replica in enumerate(replicas, 1):
        connections[REPLICA.format(number)] = connection(replica, settings, replica=True)
    models = list(MODEL_MODULES)
    if migrating:  # Aerich and what it imports (numpy, through dictdiffer) load only here
        from faceplate_models.migrate import version_models

        models.append(version_models())
    apps = {APP: {"models": models, "default_connection": "default"}}
    if app_models:
        apps[APPLICATION_APP] = {"models": list(app_models), "default_connection": "default"}
    return {"connections": connections, "apps": apps, "use_tz": True, "timezone": "UTC"}


def resolve_target(settings: Settings, url: str | None = None) -> DatabaseTarget:
    """The database to use: `url`, else FACEPLATE_DATABASE_URL, else the embedded server."""
    if url is not None:
        return parse_database_url(url, variable="the database URL")
    if settings.database_url is not None:
        return parse_database_url(settings.database_url)
    from faceplate_models.embedded import embedded_target

    return embedded_target(settings.data_dir)


def resolve_migration_target(
    settings: Settings, url: str | None = None, *, serving: DatabaseTarget | None = None
) -> DatabaseTarget:
    """The database migrations run on: FACEPLATE_MIGRATION_DATABASE_URL, else `serving` (the
    target already resolved for requests), else as `resolve_target`.

    Behind a transaction pooler there must be a direct URL: the migration lock, the
    version table and Aerich's bare table names all need a session of their own.
    """
    if settings.migration_database_url is not None:
        return parse_database_url(
            settings.migration_database_url, variable="FACEPLATE_MIGRATION_DATABASE_URL"
        )
    if settings.pool_mode == TRANSACTION:
        raise ConfigError(
            "FACEPLATE_DB_POOL_MODE=transaction means FACEPLATE_DATABASE_URL is a transaction "
            "pooler, which cannot run migrations (their lock and search_path need a session "
            "of their own): set FACEPLATE_MIGRATION_DATABASE_URL to a direct connection"
        )
    return serving or resolve_target(settings, url)


def resolve_tortoise_config(
    url: str | None = None,
    settings: Settings | None = None,
    *,
    migrating: bool = False,
    app_models: Sequence[str] = (),
) -> dict[str, Any]:
    """The Tortoise/Aerich config for `url`, the environment, or the embedded server, with an
    application's own model modules as the Tortoise app `app` (see `init_db(models=...)`)."""
    settings = settings or load_settings()
    if migrating:
        target = resolve_migration_target(settings, url)
        return tortoise_config(target, settings, migrating=True, app_models=app_models)
    return tortoise_config(resolve_target(settings, url), settings, app_models=app_models)


@contextmanager
def _no_collection() -> Iterator[None]:
    """No garbage collection inside the block (unless the collector was off already).

    `Tortoise.init` makes thousands of objects that live as long as the process (the models'
    filters, querysets, relations). Collected in the middle of that, they are walked for
    garbage that is not there, and their number would bring the interpreter's first full
    collection (a walk of the whole heap, 14 ms) into a cold start's first request.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _claim_loop() -> None:
    global _owner
    loop = asyncio.get_running_loop()
    if _owner is not None and _owner is not loop:
        if _owner.is_running():
            raise ConfigError(
                "init_db() already runs in another thread's event loop: the pool's "
                "connections belong to that loop, so one process serves the database from "
                "one loop. Share that loop (asyncio.run_coroutine_threadsafe), or call "
                "close_db() there first"
            )
        # That loop has stopped and cannot close its pool: forget it, and its global context.
        tortoise.context._global_context = None
    _owner = loop


async def init_db(
    url: str | None = None,
    *,
    migrate: bool = False,
    settings: Settings | None = None,
    models: Sequence[str] = (),
) -> None:
    """Initialise Tortoise for every task of the process, open the pool and probe the server.

    Raises `DatabaseUnavailable` within the connect timeout when the server cannot be
    reached, naming host, port and database but never the password. With `migrate=True`,
    pending migrations are applied (on FACEPLATE_MIGRATION_DATABASE_URL when it is set)
    before it returns; without it, a database whose schema is missing or behind this
    release is a `MigrationError` naming the command to run.

    `models` names the application's own Tortoise model modules: they are registered in the
    same context, as the Tortoise app `app`, so that their foreign keys may name this
    package's models (`"models.User"`); their tables are the application's to migrate.
    """
    settings = settings or load_settings()
    target = resolve_target(settings, url)
    replica_targets = tuple(
        parse_database_url(replica, variable="FACEPLATE_DATABASE_REPLICA_URLS")
        for replica in settings.replica_urls
    )
    config = tortoise_config(target, settings, replicas=replica_targets, app_models=models)
    embedded = url is None and settings.database_url is None
    quotas.use(settings.limits)
    replies.use(settings.streaming)
    secrets.use(
        secrets.KeyRing(settings.secret_keys)
        if settings.secret_keys
        else secrets.development_ring(settings.data_dir)
        if embedded
        else None
    )
    _claim_loop()
    if Tortoise.is_inited():
        await close_db()
    try:
        async with asyncio.timeout(settings.connect_timeout * _PROBE_SHARE):
            with _no_collection():
                await Tortoise.init(config=config, _enable_global_fallback=True)
            # Tortoise connects lazily; the probe opens the pool, so a bad address fails
            # here, at startup, rather than on a user's first request.
            client: FaceplateClient = connections.get("default")
            await client.probe()
    except FaceplateError:
        await close_db()
        raise
    except (TimeoutError, BaseORMException) as exc:
        await close_db()
        raise DatabaseUnavailable(
            f"cannot reach {target.describe()}: {describe_connect_error(exc)}"
        ) from exc
    log.info("connected to %s", target.describe())
    from faceplate_models import migrate as migrations

    try:
        if migrate:
            config = tortoise_config(
                resolve_migration_target(settings, url, serving=target), settings, migrating=True
            )
            for name in await migrations.upgrade(config):
                log.info("applied migration %s", name)
        await migrations.verify_schema(client)
    except FaceplateError:
        await close_db()
        raise
    if replica_targets:
        router = replicas.Replicas(
            client,
            [connections.get(REPLICA.format(n)) for n in range(1, len(replica_targets) + 1)],
            max_lag=settings.replica_max_lag,
            wait=settings.replica_wait,
        )
        await router.start()
        replicas.use(router)


async def close_db() -> None:
    """Close the pool and forget the configuration; safe to call when nothing is open."""
    global _owner
    context = get_current_context()
    if context is None or not context.inited:
        return
    if _owner is not None and _owner is not asyncio.get_running_loop() and _owner.is_running():
        raise ConfigError("close_db() must run in the event loop that called init_db()")
    if (router := replicas.router()) is not None:
        replicas.use(None)
        await router.stop()
    # __aexit__ closes the pool and marks the context uninitialised; its last step, resetting
    # the context variable, fails harmlessly when init_db ran in another task.
    with suppress(ValueError):
        await context.__aexit__(None, None, None)
    _owner = None


@asynccontextmanager
async def database(
    url: str | None = None,
    *,
    migrate: bool = False,
    settings: Settings | None = None,
    models: Sequence[str] = (),
) -> AsyncIterator[None]:
    """`init_db` on entry and `close_db` on exit, even when the body raises."""
    await init_db(url, migrate=migrate, settings=settings, models=models)
    try:
        yield
    finally:
        await close_db()


def pool_stats() -> PoolStats:
    """The pool's size, idle, in-use and waiting counts, and the connection layer's counters
    (retries, pool timeouts, statement and lock timeouts, silent connections) since init_db."""
    client = current()
    return client.root.pool_stats()
