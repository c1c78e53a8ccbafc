"""The database lifecycle: connect (and probe) at startup, migrate, close."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from tortoise import Tortoise, connections
from tortoise.context import get_current_context
from tortoise.exceptions import BaseORMException

from faceplate_models.config import (
    DatabaseTarget,
    Settings,
    load_settings,
    parse_database_url,
    tortoise_config,
)
from faceplate_models.engine import FaceplateClient, describe_connect_error
from faceplate_models.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

# The probe gives up a little before the connect timeout so that the error is in the
# caller's hands within it, not a few milliseconds after.
_PROBE_SHARE = 0.9


def resolve_target(settings: Settings, url: str | None = None) -> DatabaseTarget:
    """The database to use: `url`, else FACEPLATE_DATABASE_URL, else the embedded server."""
    if url is not None:
        return parse_database_url(url, variable="the database URL")
    if settings.database_url is not None:
        return parse_database_url(settings.database_url)
    from faceplate_models.embedded import embedded_target

    return embedded_target(settings.data_dir)


def resolve_tortoise_config(
    url: str | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """The Tortoise/Aerich config for `url`, the environment, or the embedded server."""
    settings = settings or load_settings()
    return tortoise_config(resolve_target(settings, url), settings)


async def init_db(
    url: str | None = None, *, migrate: bool = False, settings: Settings | None = None
) -> None:
    """Initialise Tortoise for every task of the process, open the pool and probe the server.

    Raises `DatabaseUnavailable` within the connect timeout when the server cannot be
    reached, naming host, port and database but never the password. With `migrate=True`,
    pending migrations are applied before it returns.
    """
    settings = settings or load_settings()
    target = resolve_target(settings, url)
    config = tortoise_config(target, settings)
    if Tortoise.is_inited():
        await close_db()
    try:
        async with asyncio.timeout(settings.connect_timeout * _PROBE_SHARE):
            await Tortoise.init(config=config, _enable_global_fallback=True)
            # Tortoise connects lazily; the probe opens the pool, so a bad address fails
            # here, at startup, rather than on a user's first request.
            client: FaceplateClient = connections.get("default")
            await client.probe()
    except DatabaseUnavailable:
        await close_db()
        raise
    except (TimeoutError, BaseORMException) as exc:
        await close_db()
        raise DatabaseUnavailable(
            f"cannot reach {target.describe()}: {describe_connect_error(exc)}"
        ) from exc
    log.info("connected to %s", target.describe())
    if migrate:
        from faceplate_models.migrate import upgrade

        for name in await upgrade(config):
            log.info("applied migration %s", name)


async def close_db() -> None:
    """Close the pool and forget the configuration; safe to call when nothing is open."""
    context = get_current_context()
    if context is None or not context.inited:
        return
    # __aexit__ closes the pool and marks the context uninitialised; its last step, resetting
    # the context variable, fails harmlessly when init_db ran in another task.
    with suppress(ValueError):
        await context.__aexit__(None, None, None)


@asynccontextmanager
async def database(
    url: str | None = None, *, migrate: bool = False, settings: Settings | None = None
) -> AsyncIterator[None]:
    """`init_db` on entry and `close_db` on exit, even when the body raises."""
    await init_db(url, migrate=migrate, settings=settings)
    try:
        yield
    finally:
        await close_db()
