"""The engine's settings, built here from the package's `Settings`: one typed object the
Tortoise config hands to the client (`faceplate=`), and the connection's credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from faceplate_models.config import (
    APPLICATION_NAME,
    SCHEMA,
    SESSION_POOLER,
    TRANSACTION,
    DatabaseTarget,
    Secret,
    Settings,
    ssl_context,
)
from faceplate_models.engine.bounds import TimeBounds

#: The Tortoise engine: this package, whose `client_class` is the client.
ENGINE: Final = "faceplate_models.engine"


@dataclass(frozen=True)
class EngineOptions:
    """What the client needs beyond Tortoise's own credentials."""

    #: The server(s), for messages: user, hosts, ports and database, never the password.
    where: str
    #: Every server the URL names, tried in order (Tortoise itself takes one host).
    hosts: tuple[tuple[str, int], ...]
    pool_timeout: float
    #: Pooled connections one conversation's store calls, and one user's, may hold.
    per_conversation: int
    per_user: int
    #: Behind a transaction pooler: no startup parameter, no session state, bounds per
    #: transaction.
    pooled: bool
    #: Behind a session pooler: what each new connection runs first (its search_path,
    #: bounds and dead-peer settings), which a direct connection gets at startup instead.
    session_sets: str | None
    #: A request's server-side bounds (none for migrations, whose DDL bounds its own waits).
    bounds: TimeBounds
    #: The statement bound of the long work: deleting a user or a branch, rotating secrets.
    long_statement_timeout: float


def connection(
    target: DatabaseTarget, settings: Settings, *, migrating: bool = False, replica: bool = False
) -> dict[str, Any]:
    """One connection of the Tortoise config: the engine, and its credentials."""
    pooled = settings.pool_mode == TRANSACTION and not migrating
    # Migrations through a session pooler too (they need a session, which it keeps).
    behind_session_pooler = settings.pool_mode == SESSION_POOLER
    bounds = (
        TimeBounds()
        if migrating
        else TimeBounds(
            settings.statement_timeout, settings.lock_timeout, settings.idle_in_transaction_timeout
        )
    )
    credentials: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        # Tortoise's debug log of the config keeps the first third of a string password.
        "password": Secret(target.password) if target.password else None,
        "database": target.database,
        "minsize": settings.pool_min,
        "maxsize": settings.pool_max,
        "timeout": settings.connect_timeout,
        "application_name": APPLICATION_NAME
        + (" migrate" if migrating else " replica" if replica else ""),
        "faceplate": EngineOptions(
            where=target.describe(),
            hosts=target.hosts,
            pool_timeout=settings.pool_timeout,
            per_conversation=settings.pool_per_conversation,
            per_user=settings.pool_per_user,
            pooled=pooled,
            session_sets=bounds.set_session(SCHEMA) if behind_session_pooler else None,
            bounds=bounds,
            long_statement_timeout=0 if migrating else settings.long_statement_timeout,
        ),
    }
    if target.target_session_attrs is not None:
        credentials["target_session_attrs"] = target.target_session_attrs
    if pooled:
        credentials["statement_cache_size"] = 0
    elif not behind_session_pooler:
        credentials["schema"] = SCHEMA
        credentials["server_settings"] = bounds.startup_parameters()
    tls = ssl_context(target)
    if tls is not None:
        credentials["ssl"] = tls
    return {"engine": ENGINE, "credentials": credentials}


__all__ = ["ENGINE", "EngineOptions", "connection"]
