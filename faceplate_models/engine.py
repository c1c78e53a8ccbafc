"""The connection layer: Tortoise's asyncpg client with bounded pool waits, one retry on a
lost connection, and the package's own errors. The Tortoise config names this module as
its engine, so the models, the store and Aerich all go through it.

The rules (the README's "Failure behaviour" states them for operators):

- Waiting for a pooled connection is bounded by the pool timeout; then `PoolTimeout`.
- A connection lost while it is being obtained, or while idempotent work runs outside a
  transaction, is retried once on a fresh connection after `RETRY_DELAY`; a second loss
  is `DatabaseUnavailable`. Idempotent work is every statement of the store (it is
  written to be repeatable: inserts carry a client-generated uuid7 key and skip a key that
  exists, updates set absolute values, upserts go by natural key) and every ORM statement
  that begins with SELECT.
- Any other write lost in flight is not retried, since it may have been applied: it is
  `ConnectionLost`, saying so.
- Inside a transaction nothing is retried: a lost connection is `ConnectionLost`, whose
  message says the transaction's work was not committed (or, lost during COMMIT, that
  the outcome is unknown).
- Pooled connections the server closed (an idle kill, a restart) are replaced by the pool
  when they are next acquired; no caller sees them.
- Every other driver error becomes `DatabaseError` (or `Conflict` for an integrity rule),
  except the query errors Tortoise itself translates, which its ORM code relies on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeAlias, TypeVar

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    NestedTransactionContext,
    PoolConnectionWrapper,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.connection import get_connections
from tortoise.exceptions import BaseORMException, TransactionManagementError

from faceplate_models.config import DEFAULT_POOL_TIMEOUT, DatabaseTarget
from faceplate_models.errors import (
    Conflict,
    ConnectionLost,
    DatabaseError,
    DatabaseUnavailable,
    FaceplateError,
    PoolTimeout,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
#: What the work passed to `FaceplateClient.run` receives: a pooled asyncpg connection.
Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

#: Seconds between a lost connection and the one retry.
RETRY_DELAY: Final = 1.0

# A connection that died under us: refused, reset, no socket file, a connect that timed
# out (all OSError), closed mid-operation (class 08), or the server terminating the backend
# or shutting down (57P01-57P03). A statement timeout (57014) is not among them.
_LOSS: Final = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)
# Refusals while connecting that may clear up by themselves a second later.
_TRANSIENT_CONNECT: Final = (*_LOSS, asyncpg.TooManyConnectionsError)
_DRIVER: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


def describe_connect_error(exc: BaseException) -> str:
    """Say why a connection failed, in words an operator can act on."""
    if isinstance(exc, BaseORMException) and exc.__cause__ is not None:
        exc = exc.__cause__  # Tortoise wraps the driver's error; the driver's says more
    if isinstance(exc, TimeoutError):
        return "no answer (the server or a firewall is silently dropping the connection)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, FileNotFoundError):
        return "no socket there (is PostgreSQL running?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(
        exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return f"authentication failed ({type(exc).__name__}; check the user and password)"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "the database does not exist (create it, or fix the database name)"
    return f"{type(exc).__name__}: {exc}"


def driver_error(exc: BaseException) -> FaceplateError:
    """The package's error for a driver error that is not about the connection."""
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        return Conflict(f"the write breaks a rule of the schema: {exc}")
    return DatabaseError(f"the database failed the statement: {type(exc).__name__}: {exc}")


class _Lost(Exception):
    """A connection failed; `sent` says whether work may have reached the server."""

    def __init__(self, cause: BaseException, *, sent: bool) -> None:
        super().__init__(cause)
        self.cause = cause
        self.sent = sent


def _closed(conn: Connection | asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True  # the pool detaches a proxy whose connection closed


def _from_loss(exc: BaseException) -> bool:
    """Whether `exc` is a lost connection, or was raised while handling one.

    A backend's FATAL error reaches asyncpg before the socket closes, so a ROLLBACK sent
    in that instant fails with "another operation is in progress", hiding the real cause.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, _LOSS):
            return True
        seen = seen.__context__
    return False


def _killed(exc: BaseException, conn: Connection | asyncpg.Connection) -> bool:
    """Whether `exc` came from the connection dying (a cancelled task's did not)."""
    return isinstance(exc, Exception) and (_from_loss(exc) or _closed(conn))


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


class FaceplateClient(AsyncpgDBClient):
    """Tortoise's asyncpg client with the rules of this module."""

    def __init__(self, *, pool_timeout: float = DEFAULT_POOL_TIMEOUT, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_timeout = float(pool_timeout)
        self.where = DatabaseTarget(
            str(self.host), self.port, str(self.database), str(self.user)
        ).describe()

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run idempotent `work` on a pooled connection, once more if the connection is lost.

        `work` must be safe to repeat: its first attempt may have been applied in full
        before the connection dropped. Driver errors leave as `FaceplateError`s.
        """

        async def attempt() -> T:
            async with _Pooled(self) as conn:
                return await work(conn)

        return await self._retrying(attempt, idempotent=True)

    async def probe(self) -> None:
        """Open the pool and run one query, without the retry: at startup, failing fast wins."""
        try:
            async with _Pooled(self) as conn:
                await conn.fetchval("SELECT 1")
        except _Lost as lost:
            raise DatabaseUnavailable(
                f"cannot reach {self.where}: {describe_connect_error(lost.cause)}"
            ) from lost.cause

    async def _acquire(self) -> tuple[asyncpg.Pool, Connection]:
        """A connection from the pool, waiting at most the pool timeout for a free one."""
        deadline = asyncio.timeout(self.pool_timeout)
        try:
            if self._pool is None:
                async with self._pool_init_lock:
                    if self._pool is None:
                        await self.create_connection(with_db=True)
            pool = self._pool
            assert pool is not None  # noqa: S101 - create_connection sets it or raises
            async with deadline:
                return pool, await pool.acquire()
        except TimeoutError as exc:
            if deadline.expired():
                raise PoolTimeout(
                    f"no connection to {self.where} became free within {self.pool_timeout:g} s "
                    f"(FACEPLATE_DB_POOL_TIMEOUT): all {self.pool_maxsize} pooled connections "
                    "stayed busy; look for slow queries or work holding connections, or raise "
                    "FACEPLATE_DB_POOL_MAX"
                ) from None
            raise _Lost(exc, sent=False) from exc
        except _TRANSIENT_CONNECT as exc:
            raise _Lost(exc, sent=False) from exc
        except (*_DRIVER, BaseORMException) as exc:
            raise DatabaseUnavailable(
                f"cannot reach {self.where}: {describe_connect_error(exc)}"
            ) from exc

    async def _release(self, pool: asyncpg.Pool, conn: Connection) -> None:
        try:
            await pool.release(conn)
        except Exception as exc:
            # The reset on release found the connection dying (the server's FATAL message can
            # land just after the work's reply). asyncpg has terminated it and the pool opens
            # a fresh one when needed; the work itself succeeded or failed on its own.
            log.debug("discarded a pooled connection to %s: %r", self.where, exc)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], *, idempotent: bool) -> T:
        """Run `attempt`, once more after a lost connection; driver errors leave as ours."""
        try:
            return await attempt()
        except _DRIVER as exc:
            raise driver_error(exc) from exc
        except _Lost as lost:
            if lost.sent and not idempotent:
                raise ConnectionLost(
                    f"lost the connection to {self.where} during a write, which is not retried "
                    "because repeating it could apply it twice; it may or may not have been "
                    f"applied ({describe_connect_error(lost.cause)})"
                ) from lost.cause
            log.warning(
                "lost the connection to %s (%s); retrying once in %g s",
                self.where,
                describe_connect_error(lost.cause),
                RETRY_DELAY,
            )
        await asyncio.sleep(RETRY_DELAY)
        try:
            return await attempt()
        except _DRIVER as exc:
            raise driver_error(exc) from exc
        except _Lost as lost:
            raise DatabaseUnavailable(
                f"lost the connection to {self.where} twice, {RETRY_DELAY:g} s apart; the server "
                f"is down, restarting or unreachable ({describe_connect_error(lost.cause)})"
            ) from lost.cause

    # --- Tortoise's entry points ---------------------------------------------------------

    def acquire_connection(self) -> _Pooled:
        return _Pooled(self)

    def _in_transaction(self) -> TransactionContext:
        return _TransactionContext(_Transaction(self), self._pool_init_lock)

    async def _translate_exceptions(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        idempotent = func.__name__ in ("execute_query", "execute_query_dict") and _is_read(args[0])

        def attempt() -> Awaitable[Any]:
            return super(FaceplateClient, self)._translate_exceptions(func, *args, **kwargs)

        return await self._retrying(attempt, idempotent=idempotent)


class _Pooled(PoolConnectionWrapper[Connection]):
    """One pooled connection for one unit of work; a failure that killed it becomes `_Lost`."""

    __slots__ = ("_pool",)

    client: FaceplateClient

    def __init__(self, client: FaceplateClient) -> None:
        super().__init__(client, client._pool_init_lock)

    async def __aenter__(self) -> Connection:
        self._pool, self.connection = await self.client._acquire()
        return self.connection

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        conn = self.connection
        assert conn is not None  # noqa: S101 - set by __aenter__
        # Read the state before release: a released proxy refuses every call.
        killed = exc if exc is not None and _killed(exc, conn) else None
        await self.client._release(self._pool, conn)
        if killed is not None:
            raise _Lost(killed, sent=True) from killed


class _Transaction(TransactionWrapper):
    """A transaction's connection: nothing is retried; a lost connection is `ConnectionLost`."""

    where: str

    def __init__(self, connection: FaceplateClient | _Transaction) -> None:
        super().__init__(connection)
        self.where = connection.where

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(_Transaction(self))

    def _lost(self, exc: BaseException, *, committing: bool = False) -> ConnectionLost:
        outcome = (
            "while committing: the transaction may or may not have been committed"
            if committing
            else "inside a transaction: none of its work was committed"
        )
        return ConnectionLost(
            f"lost the connection to {self.where} {outcome} ({describe_connect_error(exc)})"
        )

    async def _translate_exceptions(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super()._translate_exceptions(func, *args, **kwargs)
        except _DRIVER + _LOSS as exc:
            if _killed(exc, self._connection):
                raise self._lost(exc) from exc
            raise driver_error(exc) from exc

    async def commit(self) -> None:
        # A connection found closed before COMMIT was sent committed nothing.
        sent = not _closed(self._connection)
        try:
            await super().commit()
        except Exception as exc:
            if not _killed(exc, self._connection):
                raise
            self._finalized = True
            raise self._lost(exc, committing=sent) from exc

    async def rollback(self) -> None:
        # The server discards the transaction of a connection that dropped: nothing to undo,
        # and the driver's error about the dead connection would hide the caller's own.
        if _closed(self._connection):
            self._finalized = True
            return
        try:
            await super().rollback()
        except Exception as exc:
            if not _killed(exc, self._connection):
                raise
            self._finalized = True


class _TransactionContext(TransactionContextPooled):
    """`in_transaction()` with a bounded wait for its connection and a retried BEGIN."""

    __slots__ = ("_conn", "_pool")

    client: _Transaction

    async def __aenter__(self) -> _Transaction:
        parent: FaceplateClient = self.client._parent  # type: ignore[assignment]

        async def begin() -> None:
            pool, conn = await parent._acquire()
            try:
                transaction = conn.transaction()
                await transaction.start()
            except BaseException as exc:
                await parent._release(pool, conn)
                if _killed(exc, conn):
                    raise _Lost(exc, sent=True) from exc
                raise
            self._pool, self._conn = pool, conn
            self.client._connection = conn  # type: ignore[assignment] # a proxy of one
            self.client.transaction = transaction

        # BEGIN alone changes nothing, so a connection lost before or during it is retried.
        await parent._retrying(begin, idempotent=True)
        self.token = get_connections().set(self.connection_name, self.client)
        return self.client

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        parent: FaceplateClient = self.client._parent  # type: ignore[assignment]
        try:
            if not self.client._finalized:
                if exc_type is None:
                    await self.client.commit()
                elif exc_type is not TransactionManagementError:
                    await self.client.rollback()
        finally:
            await parent._release(self._pool, self._conn)
            get_connections().reset(self.token)


client_class = FaceplateClient
