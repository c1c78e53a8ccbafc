"""The connection layer: Tortoise's asyncpg client with bounded waits, deadlines, one retry
after a lost connection, and the one place where driver errors become the package's.
The Tortoise config names this module as its engine, so the models, the store and Aerich
all go through it.

The rules (the README's "Failure behaviour" states them for operators):

- Every wait is bounded. A free pooled connection: the pool timeout, then `PoolTimeout`.
  A statement: the server cancels it after the statement timeout, and a connection that
  stays silent for a second longer (a partition, a failover: no FIN, no RST) is closed by
  the client, never returned to the pool; TCP keepalives and TCP_USER_TIMEOUT find dead
  idle connections in the background. A row lock: the lock timeout, not retried.
- A connection lost (or gone silent) while it is being obtained, or while idempotent work
  runs outside a transaction, is retried once on a fresh connection after `RETRY_DELAY`,
  within a bound of twice the statement timeout less `GRACE` for the whole call; a second
  loss is `DatabaseUnavailable`. Idempotent work is every statement of the store (it is
  written to be repeatable: inserts carry a client-generated uuid7 key and skip a key that
  exists, updates set absolute values, upserts go by natural key) and every ORM statement
  that begins with SELECT. Any other write lost in flight may have been applied, so it is
  `ConnectionLost`, saying so. Inside a transaction nothing is retried: a lost connection is
  `ConnectionLost`, saying the transaction's work was not committed (or, lost during
  COMMIT, that the outcome is unknown).
- The store's own work, outside a transaction, is also retried after a deadlock or a
  serialization failure, at most `CONFLICT_RETRIES` times with jitter.
- The store speaks only `FaceplateError`s: a server error becomes the class of its kind,
  keeping `.sqlstate` and the driver's exception as `__cause__`. The ORM path raises
  exactly what stock Tortoise raises for a statement error (its `IntegrityError` and
  `OperationalError`, or the driver's own class), since Tortoise's code and its users
  catch those; only connection loss, pool waits and the client's deadlines become this
  package's errors there.
- A missing database, a bad password, a missing role, a refused TLS certificate: reported
  at once, without the retry. A server that rejects a startup parameter is a transaction
  pooler: `ConfigError`, naming the setting to use.
- Pooled connections the server closed (an idle kill, a restart) are replaced by the pool
  when they are next acquired; no caller sees them.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import socket
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeVar

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import (
    NestedTransactionContext,
    PoolConnectionWrapper,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.connection import connections, get_connections
from tortoise.exceptions import BaseORMException, ConfigurationError, TransactionManagementError

from faceplate_models.config import DEFAULT_POOL_TIMEOUT, SESSION, TRANSACTION, DatabaseTarget
from faceplate_models.errors import (
    ConfigError,
    Conflict,
    ConnectionLost,
    DatabaseError,
    DatabaseUnavailable,
    DeadlockDetected,
    FaceplateError,
    LockTimeout,
    PoolTimeout,
    QueryCanceled,
    SerializationFailure,
    StatementTimeout,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
#: What the work passed to `FaceplateClient.run` receives: a pooled asyncpg connection.
Connection: TypeAlias = (
    "asyncpg.pool.PoolConnectionProxy[asyncpg.Record] | asyncpg.Connection[asyncpg.Record]"
)
_Proxy: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
Work: TypeAlias = Callable[[Connection], Awaitable[T]]

#: Seconds between a lost connection and the one retry.
RETRY_DELAY: Final = 1.0
#: Seconds the client waits beyond the statement timeout before it calls a connection
#: silent: the server reports its own timeout first when it can.
GRACE: Final = 1.0
#: Seconds the reset of a released connection may take before the connection is closed:
#: a connection that goes silent after its work answered must not hold the caller.
RELEASE_TIMEOUT: Final = 2 * GRACE
#: Retries of the store's work after a deadlock or a serialization failure.
CONFLICT_RETRIES: Final = 3
# Dead peers are found by the kernel: probes after 5 s without traffic, every 2 s, three
# unanswered ones end the connection; unacknowledged data ends it after 10 s.
KEEPALIVE_IDLE: Final = 5
KEEPALIVE_INTERVAL: Final = 2
KEEPALIVE_COUNT: Final = 3
TCP_USER_TIMEOUT_MS: Final = 10_000

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
# Refusals that a second attempt would only repeat: the address is right, the rest is not.
_FATAL_CONNECT: Final = (
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.ClientConfigurationError,
    ssl.SSLError,
)
_DRIVER: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
_CONFLICTS: Final = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
_KINDS: Final[dict[str, tuple[type[DatabaseError], str]]] = {
    "40001": (
        SerializationFailure,
        "a concurrent transaction changed what this one read (serialization failure); "
        "run the whole transaction again",
    ),
    "40P01": (
        DeadlockDetected,
        "the server broke a deadlock by aborting this transaction; run it again",
    ),
    "55P03": (
        LockTimeout,
        "waited longer than the lock timeout (FACEPLATE_DB_LOCK_TIMEOUT) for a row or table "
        "another session holds: look for a long transaction holding it",
    ),
}


def describe_connect_error(exc: BaseException) -> str:
    """Say why a connection failed, in words an operator can act on."""
    if isinstance(exc, BaseORMException) and exc.__cause__ is not None:
        exc = exc.__cause__  # Tortoise wraps the driver's error; the driver's says more
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate verification failed: {exc.verify_message} (check sslrootcert, "
            "and that the host name in the URL is one the certificate names)"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc} (check sslmode, sslcert and sslkey)"
    if isinstance(exc, TimeoutError):
        return "no answer (the server or a firewall is silently dropping the connection)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, FileNotFoundError):
        return "no socket there (is PostgreSQL running?)"
    if isinstance(exc, ConnectionError) and "rejected SSL upgrade" in str(exc):
        return "the server does not offer TLS, which the sslmode requires"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "authentication failed (InvalidPasswordError; check the user and password)"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return f"not allowed to connect: {exc} (check the user, and pg_hba.conf)"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "the database does not exist (create it, or fix the database name)"
    return f"{type(exc).__name__}: {exc}"


def _fatal(exc: BaseException) -> bool:
    """Whether a failed connect would fail the same way a second later."""
    seen: BaseException | None = exc
    while seen is not None:  # Tortoise wraps a missing database in DBConnectionError
        if isinstance(seen, _FATAL_CONNECT) or "rejected SSL upgrade" in str(seen):
            return True
        seen = seen.__cause__
    return False


def _rejected_parameter(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.ProtocolViolationError) and "startup parameter" in str(exc)


def connect_error(exc: BaseException, where: str) -> FaceplateError:
    """The package's error for a connection to `where` that could not be opened."""
    if _rejected_parameter(exc):
        return ConfigError(
            f"{where} refused a startup parameter ({exc}): it is a transaction pooler. Set "
            "FACEPLATE_DB_POOL_MODE=transaction, and point FACEPLATE_MIGRATION_DATABASE_URL "
            "at a direct connection for migrations"
        )
    return DatabaseUnavailable(f"cannot connect to {where}: {describe_connect_error(exc)}")


# What a broken integrity rule means, in the package's words: the server's own message
# names constraints and dumps keys (a user's email, say), so it stays in `__cause__`.
_INTEGRITY: Final = {
    "23505": "it would duplicate a value that must be unique",
    "23503": "it refers to a row that does not exist (or that another request just deleted)",
    "23502": "it leaves out a value the schema requires",
    "23514": "it breaks a check of the schema",
}


def driver_error(exc: BaseException) -> FaceplateError:
    """The package's error for a driver error that is not about the connection.

    The message is the package's own: the server's text (constraint names, key values) stays
    in `__cause__`, for the log, and never reaches a caller that shows messages to users.
    """
    state: str | None = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        why = _INTEGRITY.get(state or "", "it breaks a rule of the schema")
        return Conflict(f"the database refused the write: {why}", sqlstate=state)
    if state in _KINDS:
        kind, words = _KINDS[state]
        return kind(words, sqlstate=state)
    if isinstance(exc, asyncpg.QueryCanceledError):
        if "statement timeout" in str(exc):
            return StatementTimeout(
                "the statement ran longer than the statement timeout "
                "(FACEPLATE_DB_STATEMENT_TIMEOUT) and the server cancelled it",
                sqlstate=state,
            )
        return QueryCanceled(
            "the server cancelled the statement (an administrator's pg_cancel_backend, or a "
            "shutdown)",
            sqlstate=state,
        )
    return DatabaseError(
        f"the database failed the statement ({type(exc).__name__}, SQLSTATE {state}); the "
        "server's own message is this error's __cause__",
        sqlstate=state,
    )


class _Lost(Exception):
    """A connection failed: `sent` says whether work may have reached the server, `silent`
    whether the client's deadline closed it, `started` when the work had its connection."""

    def __init__(
        self,
        cause: BaseException,
        *,
        sent: bool,
        silent: bool = False,
        started: float | None = None,
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.sent = sent
        self.silent = silent
        self.started = started


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
    """Whether `exc` came from the connection dying (a cancelled task's did not, nor did one
    of the package's own errors, raised on purpose, unless the connection closed under it)."""
    if not isinstance(exc, Exception):
        return False
    return _closed(conn) or (not isinstance(exc, FaceplateError) and _from_loss(exc))


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


def _keepalive(conn: asyncpg.Connection) -> None:
    """Let the kernel find a dead peer: keepalive probes and a bound on unacknowledged data."""
    # asyncpg exposes no socket; its transport is the one place to reach it.
    sock = conn._transport.get_extra_info("socket")  # type: ignore[attr-defined]
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket has no network to lose
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
        ("TCP_USER_TIMEOUT", TCP_USER_TIMEOUT_MS),
    ):
        if hasattr(socket, option):  # Linux has all four; others have some
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


_ARRAY_TYPES_SQL: Final = "SELECT $1::uuid[], $2::text[], $3::jsonb[], $4::int[], $5::timestamptz[]"


class _OneLineFloorWarnings(logging.Filter):
    """asyncpg logs a full traceback each time it fails to reopen the pool's minimum
    connections, every few seconds while the database is down: keep one line of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            cause = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({describe_connect_error(cause)})"
            record.args = ()
            record.exc_info = record.exc_text = None
        return True


_FLOOR_FILTER: Final = _OneLineFloorWarnings()
logging.getLogger("asyncpg.pool").addFilter(_FLOOR_FILTER)


@dataclass(frozen=True)
class PoolStats:
    """The pool's state and what the connection layer has done since the pool was made."""

    size: int
    idle: int
    in_use: int
    waiting: int
    max_size: int
    retries: int
    conflict_retries: int
    pool_timeouts: int
    statement_timeouts: int
    lock_timeouts: int
    silent_connections: int


@dataclass(slots=True)
class _Counters:
    conflict_retries: int = 0
    lock_timeouts: int = 0
    pool_timeouts: int = 0
    retries: int = 0
    silent_connections: int = 0
    statement_timeouts: int = 0
    waiting: int = 0

    def count(self, exc: BaseException) -> None:
        """Count a server-reported timeout, and log it once."""
        if isinstance(exc, asyncpg.LockNotAvailableError):
            self.lock_timeouts += 1
            log.warning("a row lock stayed held past the lock timeout: %s", exc)
        elif isinstance(exc, asyncpg.QueryCanceledError) and "statement timeout" in str(exc):
            self.statement_timeouts += 1
            log.warning("the server cancelled a statement at the statement timeout")


# Tortoise's own statements reach their connection through `acquire_connection()` from
# inside `_translate_exceptions`, which retries and translates; the variable tells
# `acquire_connection()` that it serves such a statement, and by when it must finish.
_ORM_STATEMENT: contextvars.ContextVar[tuple[float | None] | None] = contextvars.ContextVar(
    "faceplate_orm_statement", default=None
)


class FaceplateClient(AsyncpgDBClient):
    """Tortoise's asyncpg client with the rules of this module."""

    def __init__(
        self,
        *,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
        pool_mode: str = SESSION,
        statement_timeout: float = 0,
        long_statement_timeout: float = 0,
        lock_timeout: float = 0,
        idle_in_transaction_timeout: float = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pool_timeout = float(pool_timeout)
        self.statement_timeout = float(statement_timeout)
        self.long_statement_timeout = float(long_statement_timeout)
        self.pooled = pool_mode == TRANSACTION
        self.lock_timeout = float(lock_timeout)
        self.stats = _Counters()
        # Connections something other than the store used since they left the pool.
        self._used_freely: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()
        self.where = DatabaseTarget(
            str(self.host), self.port, str(self.database), str(self.user)
        ).describe()
        # A transaction pooler takes no startup parameters, so its transactions set the
        # bounds themselves; in session mode the connection's parameters already hold them.
        # A long transaction's statement bound comes last, so that it wins.
        lacking = ";".join(
            f"SET LOCAL {name} = {round(seconds * 1000)}"
            for name, seconds in (
                ("statement_timeout", statement_timeout),
                ("lock_timeout", lock_timeout),
                ("idle_in_transaction_session_timeout", idle_in_transaction_timeout),
            )
            if seconds and self.pooled
        )
        long_bound = f"SET LOCAL statement_timeout = {round(self.long_statement_timeout * 1000)}"
        #: What a transaction sets as it begins, by whether it is long.
        self._atomic_bounds = {False: lacking, True: ";".join(filter(None, (lacking, long_bound)))}

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        return await asyncpg.create_pool(
            None, init=self._on_connect, reset=self._reset_released, **kwargs
        )

    async def _reset_released(self, conn: asyncpg.Connection) -> None:
        """asyncpg's reset of a released connection (RESET ALL, unlock advisory locks, ...),
        where it can matter: a round trip per call otherwise.

        The store's own work leaves no session state behind (no SET but SET LOCAL, no
        advisory lock, no LISTEN, no cursor), so only connections the ORM, a transaction
        or a caller's own code used are reset. Through a transaction pooler nothing is: the
        reset would run on whichever server connection the pooler picks, unlocking other
        clients' locks.
        """
        if conn in self._used_freely:
            self._used_freely.discard(conn)
            if not self.pooled:
                await conn.execute(conn.get_reset_query())

    @staticmethod
    async def _on_connect(conn: asyncpg.Connection) -> None:
        _keepalive(conn)
        # asyncpg learns the array types the store binds on their first use (9 ms here, half a
        # second on Citus): a new connection learns them now, not inside a conversation's
        # row lock, where every append to that conversation would wait for it.
        await conn.fetchval(_ARRAY_TYPES_SQL, [], [], [], [], [])

    @property
    def lock_wait(self) -> float | None:
        """How long the store waits for a row lock, end to end, before `LockTimeout`.

        PostgreSQL applies lock_timeout to each lock a statement waits for in turn, and the
        waiters of a row queue on one another: one that inherits its place in line starts
        a fresh wait. The client ends the wait at the lock timeout and half its grace.
        """
        return self.lock_timeout + GRACE / 2 if self.lock_timeout else None

    def waited_too_long(self) -> LockTimeout:
        """The error of a lock wait the client ended (see `lock_wait`), counted and logged."""
        self.stats.lock_timeouts += 1
        log.warning("a row lock stayed held past the lock timeout (the client ended the wait)")
        return LockTimeout(_KINDS["55P03"][1], sqlstate="55P03")

    def pool_stats(self) -> PoolStats:
        """The pool's sizes and this client's counters."""
        pool, s = self._pool, self.stats
        size = pool.get_size() if pool is not None else 0
        idle = pool.get_idle_size() if pool is not None else 0
        return PoolStats(
            size=size,
            idle=idle,
            in_use=size - idle,
            waiting=s.waiting,
            max_size=self.pool_maxsize,
            retries=s.retries,
            conflict_retries=s.conflict_retries,
            pool_timeouts=s.pool_timeouts,
            statement_timeouts=s.statement_timeouts,
            lock_timeouts=s.lock_timeouts,
            silent_connections=s.silent_connections,
        )

    # --- the store's entry point ---------------------------------------------------------

    async def run(self, work: Work[T], *, long: bool = False, retry: bool = True) -> T:
        """Run idempotent `work` on a pooled connection, within this module's rules.

        `work` must be safe to repeat: its first attempt may have been applied in full
        before the connection dropped. `long` gives it the long statement timeout (its
        transactions must say so too: `atomic(conn, long=True)`); without `retry` a lost
        connection is `DatabaseUnavailable` at once (a replica's reader has somewhere
        else to go). Driver errors leave as `FaceplateError`s.
        """
        timeout = self.long_statement_timeout if long else self.statement_timeout

        async def attempt(limit: float | None) -> T:
            async with _Pooled(self, limit, timeout, store=True) as conn:
                return await work(conn)

        return await self._call(attempt, timeout, idempotent=True, store=True, retry=retry)

    @asynccontextmanager
    async def atomic(self, conn: Connection, *, long: bool = False) -> AsyncIterator[None]:
        """A transaction on a connection of `run`, with the bounds the connection lacks."""
        async with conn.transaction():
            if bounds := self._atomic_bounds[long]:
                await conn.execute(bounds)
            yield

    async def probe(self) -> list[str]:
        """Open the pool and run one query, without the retry: at startup, failing fast wins.

        Returns the time bounds the server leaves unset through a transaction pooler, where
        they cannot be startup parameters (in session mode the connection sets them).
        """
        try:
            async with _Pooled(self, None, self.statement_timeout, store=True) as conn:
                row = await conn.fetchrow(
                    "SELECT current_setting('statement_timeout') AS statement_timeout, "
                    "current_setting('lock_timeout') AS lock_timeout"
                )
        except _Lost as lost:
            raise DatabaseUnavailable(
                f"cannot reach {self.where}: {describe_connect_error(lost.cause)}"
            ) from lost.cause
        assert row is not None  # noqa: S101 - the query returns one row
        if not self.pooled:
            return []
        return [name.replace("_", " ") for name, value in row.items() if value == "0"]

    # --- the rules -----------------------------------------------------------------------

    async def _call(
        self,
        attempt: Callable[[float | None], Awaitable[T]],
        seconds: float,
        *,
        idempotent: bool,
        store: bool,
        retry: bool = True,
    ) -> T:
        """Run `attempt` within the rules: one retry after a loss, conflicts retried for the
        store, and (for the store) driver errors translated into the package's."""
        loop = asyncio.get_running_loop()
        limit: float | None = None
        lost_once = False
        conflicts = 0
        while True:
            try:
                return await attempt(limit)
            except _Lost as lost:
                if lost.sent and not idempotent:
                    raise ConnectionLost(
                        f"{self._how(lost)} during a write, which is not retried because "
                        "repeating it could apply it twice; it may or may not have been "
                        f"applied ({describe_connect_error(lost.cause)})"
                    ) from lost.cause
                now = loop.time()
                if seconds and limit is None:
                    limit = (lost.started or now) + 2 * seconds - GRACE
                if lost_once or not retry:
                    twice = f" twice, {RETRY_DELAY:g} s apart" if lost_once else ""
                    raise DatabaseUnavailable(
                        f"lost the connection to {self.where}{twice}; the server is down, "
                        f"restarting or unreachable ({self._why(lost)})"
                    ) from lost.cause
                if limit is not None and limit - now <= RETRY_DELAY:
                    raise DatabaseUnavailable(
                        f"{self._how(lost)}, too late in the call to retry within its bound "
                        f"({self._why(lost)})"
                    ) from lost.cause
                lost_once = True
                self.stats.retries += 1
                log.warning(
                    "%s (%s); retrying once in %g s", self._how(lost), self._why(lost), RETRY_DELAY
                )
                await asyncio.sleep(RETRY_DELAY)
            except _DRIVER as exc:
                self.stats.count(exc)
                if store and isinstance(exc, _CONFLICTS) and conflicts < CONFLICT_RETRIES:
                    conflicts += 1
                    self.stats.conflict_retries += 1
                    log.warning(
                        "%s; retrying (%d of %d)", driver_error(exc), conflicts, CONFLICT_RETRIES
                    )
                    await asyncio.sleep(random.uniform(0.01, 0.05) * 2**conflicts)  # noqa: S311
                    continue
                if store:
                    raise driver_error(exc) from exc
                raise

    def _why(self, lost: _Lost) -> str:
        if lost.silent:
            return f"no answer within the statement timeout and {GRACE:g} s"
        return describe_connect_error(lost.cause)

    def _how(self, lost: _Lost) -> str:
        if lost.silent:
            return (
                f"the connection to {self.where} went silent (no answer within the statement "
                f"timeout and {GRACE:g} s: a network partition or a failover?) and was closed"
            )
        return f"lost the connection to {self.where}"

    async def _acquire(self, limit: float | None) -> tuple[asyncpg.Pool, _Proxy]:
        """A connection from the pool, waiting at most the pool timeout for a free one (and,
        for a retry, no later than `limit`)."""
        wait = self.pool_timeout
        if limit is not None:
            wait = min(wait, limit - asyncio.get_running_loop().time())
        deadline = asyncio.timeout(wait)
        try:
            if self._pool is None:
                async with self._pool_init_lock:
                    if self._pool is None:
                        await self.create_connection(with_db=True)
            pool = self._pool
            assert pool is not None  # noqa: S101 - create_connection sets it or raises
            self.stats.waiting += 1
            try:
                async with deadline:
                    return pool, await pool.acquire()
            finally:
                self.stats.waiting -= 1
        except TimeoutError as exc:
            if not deadline.expired():
                raise _Lost(exc, sent=False) from exc  # the connect timed out
            if wait < self.pool_timeout:
                raise _Lost(exc, sent=False) from exc  # the retry ran out of time
            self.stats.pool_timeouts += 1
            log.warning(
                "no pooled connection to %s became free within the pool timeout", self.where
            )
            raise PoolTimeout(
                f"no connection to {self.where} became free within {self.pool_timeout:g} s "
                f"(FACEPLATE_DB_POOL_TIMEOUT): all {self.pool_maxsize} pooled connections "
                "stayed busy; look for slow queries or work holding connections, or raise "
                "FACEPLATE_DB_POOL_MAX"
            ) from None
        except Exception as exc:
            if isinstance(exc, _TRANSIENT_CONNECT) and not (
                _fatal(exc) or _rejected_parameter(exc)
            ):
                raise _Lost(exc, sent=False) from exc
            if isinstance(exc, (*_DRIVER, *_TRANSIENT_CONNECT, BaseORMException)):
                raise connect_error(exc, self.where) from exc
            raise

    async def _release(self, pool: asyncpg.Pool, conn: _Proxy, *, store: bool = False) -> None:
        # The store's connections go back without a network round trip (see
        # _reset_released), so only the others need a bound on their reset.
        try:
            await pool.release(conn, timeout=None if store else RELEASE_TIMEOUT)
        except Exception as exc:
            # The reset on release found the connection dying (the server's FATAL message can
            # land just after the work's reply) or silent. asyncpg has terminated it and the
            # pool opens a fresh one when needed; the work succeeded or failed on its own.
            log.debug("discarded a pooled connection to %s: %r", self.where, exc)

    def _silenced(self, conn: Connection | asyncpg.Connection) -> None:
        """Close a connection that outlived its deadline, and the idle ones beside it.

        A connection gone silent cannot even be cancelled (asyncpg waits for the server's
        answer), so it is terminated; the idle connections share its network path, so they
        are closed too and the pool reconnects when the path answers again.
        """
        self.stats.silent_connections += 1
        log.warning("no answer from %s past the deadline: closing the connection", self.where)
        conn.terminate()
        if self._pool is not None:
            for holder in self._pool._holders:  # type: ignore[attr-defined] # no public way
                if holder.is_connected() and holder.is_idle():
                    holder.terminate()

    # --- Tortoise's entry points ---------------------------------------------------------

    def acquire_connection(self) -> _Pooled:
        statement = _ORM_STATEMENT.get()
        if statement is None:  # a caller's own `async with client.acquire_connection()`
            return _Pooled(self, None, self.statement_timeout, public=True)
        return _Pooled(self, statement[0], self.statement_timeout)

    def _in_transaction(self) -> TransactionContext:
        return _TransactionContext(_Transaction(self), self._pool_init_lock)

    async def _translate_exceptions(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        idempotent = func.__name__ in ("execute_query", "execute_query_dict") and _is_read(args[0])

        async def attempt(limit: float | None) -> Any:
            token = _ORM_STATEMENT.set((limit,))
            try:
                return await super(FaceplateClient, self)._translate_exceptions(
                    func, *args, **kwargs
                )
            finally:
                _ORM_STATEMENT.reset(token)

        return await self._call(attempt, self.statement_timeout, idempotent=idempotent, store=False)


class _Pooled(PoolConnectionWrapper[_Proxy]):
    """One pooled connection for one unit of work, closed if it outlives `timeout` (+ grace).

    A failure that killed the connection becomes `_Lost` for the retrying caller, or, for a
    caller's own `acquire_connection()` (`public`), the package's error.
    """

    __slots__ = (
        "_kept",
        "_limit",
        "_pool",
        "_public",
        "_silent",
        "_started",
        "_store",
        "_timeout",
        "_timer",
    )

    client: FaceplateClient

    def __init__(
        self,
        client: FaceplateClient,
        limit: float | None,
        timeout: float,
        *,
        public: bool = False,
        store: bool = False,
    ) -> None:
        super().__init__(client, client._pool_init_lock)
        self._limit = limit
        self._timeout = timeout
        self._public = public
        self._store = store
        self._timer: asyncio.TimerHandle | None = None
        self._silent = False
        self._kept = False

    async def __aenter__(self) -> _Proxy:
        try:
            self._pool, conn = await self.client._acquire(self._limit)
        except _Lost as lost:
            if not self._public:
                raise
            raise DatabaseUnavailable(
                f"cannot reach {self.client.where}: {describe_connect_error(lost.cause)}"
            ) from lost.cause
        self.connection = conn
        if not self._store:
            self.client._used_freely.add(conn._con)  # type: ignore[attr-defined] # its connection
        loop = asyncio.get_running_loop()
        self._started = loop.time()
        if self._timeout:
            deadline = self._started + self._timeout + GRACE
            if self._limit is not None:
                deadline = min(deadline, self._limit)
            self._timer = loop.call_at(deadline, self._expire)
        return conn

    def _expire(self) -> None:
        self._silent = True
        assert self.connection is not None  # noqa: S101 - set by __aenter__
        self.client._silenced(self.connection)

    def keep(self) -> None:
        """Leave the block without releasing the connection: `release()` does it later."""
        self._kept = True

    async def release(self) -> None:
        """Give the connection back to the pool (or discard it, if it died)."""
        assert self.connection is not None  # noqa: S101 - set by __aenter__
        await self.client._release(self._pool, self.connection, store=self._store)

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._timer is not None:
            self._timer.cancel()
        conn = self.connection
        assert conn is not None  # noqa: S101 - set by __aenter__
        # Read the state before release: a released proxy refuses every call.
        killed = exc if exc is not None and (self._silent or _killed(exc, conn)) else None
        if exc is None and self._kept:
            return
        await self.client._release(self._pool, conn, store=self._store)
        if killed is None:
            return
        lost = _Lost(killed, sent=True, silent=self._silent, started=self._started)
        if self._public:
            raise ConnectionLost(
                f"{self.client._how(lost)} while it was in use; what it was doing may or may "
                f"not have been applied ({describe_connect_error(killed)})"
            ) from killed
        raise lost from killed


class _Transaction(TransactionWrapper):
    """A transaction's connection: nothing is retried; a lost connection is `ConnectionLost`;
    store calls inside the transaction run here (`run`)."""

    where: str
    _root: FaceplateClient

    def __init__(self, connection: FaceplateClient | _Transaction) -> None:
        super().__init__(connection)
        self.where = connection.where
        self._root = connection._root if isinstance(connection, _Transaction) else connection
        self._silent = False

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(_Transaction(self))

    def _lost(self, exc: BaseException, *, committing: bool = False) -> ConnectionLost:
        outcome = (
            "while committing: the transaction may or may not have been committed"
            if committing
            else "inside a transaction: none of its work was committed"
        )
        how = "went silent and was closed" if self._silent else "was lost"
        return ConnectionLost(
            f"the connection to {self.where} {how} {outcome} ({describe_connect_error(exc)})"
        )

    @asynccontextmanager
    async def _bounded(self, seconds: float) -> AsyncIterator[None]:
        """Close the transaction's connection if one step outlives `seconds` (+ grace)."""
        timer = None
        if seconds:
            timer = asyncio.get_running_loop().call_later(seconds + GRACE, self._expire)
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()

    def _expire(self) -> None:
        self._silent = True
        self._root._silenced(self._connection)

    def _dead(self, exc: BaseException) -> bool:
        return self._silent or _killed(exc, self._connection)

    async def run(self, work: Work[T], *, long: bool = False) -> T:
        """Run store `work` on this transaction's connection: no retry, the store's errors."""
        root = self._root
        async with (
            self._lock,
            self._bounded(root.long_statement_timeout if long else root.statement_timeout),
        ):
            try:
                return await work(self._connection)
            except (*_DRIVER, *_LOSS) as exc:
                if self._dead(exc):
                    raise self._lost(exc) from exc
                root.stats.count(exc)
                raise driver_error(exc) from exc

    def atomic(self, conn: Connection, *, long: bool = False) -> Any:
        """A savepoint inside this transaction (its bounds were set when it began)."""
        return conn.transaction()

    @property
    def lock_wait(self) -> float | None:
        return self._root.lock_wait

    def waited_too_long(self) -> LockTimeout:
        return self._root.waited_too_long()

    async def _translate_exceptions(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        async with self._bounded(self._root.statement_timeout):
            try:
                return await super()._translate_exceptions(func, *args, **kwargs)
            except (*_DRIVER, *_LOSS) as exc:
                if self._dead(exc):
                    raise self._lost(exc) from exc
                self._root.stats.count(exc)
                raise  # the ORM keeps stock Tortoise's classes

    async def commit(self) -> None:
        # A connection found closed before COMMIT was sent committed nothing.
        sent = not _closed(self._connection)
        try:
            async with self._bounded(self._root.statement_timeout):
                await super().commit()
        except Exception as exc:
            if not self._dead(exc):
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
            async with self._bounded(self._root.statement_timeout):
                await super().rollback()
        except Exception as exc:
            if not self._dead(exc):
                raise
            self._finalized = True


class _TransactionContext(TransactionContextPooled):
    """`in_transaction()` with a bounded wait for its connection and a retried BEGIN."""

    __slots__ = ("_pooled",)

    client: _Transaction

    async def __aenter__(self) -> _Transaction:
        root = self.client._root

        async def begin(limit: float | None) -> None:
            pooled = _Pooled(root, limit, root.statement_timeout)
            async with pooled as conn:
                transaction = conn.transaction()
                await transaction.start()
                if bounds := root._atomic_bounds[False]:
                    await conn.execute(bounds)
                pooled.keep()  # the transaction owns the connection until it ends
            self._pooled = pooled
            self.client._connection = conn  # type: ignore[assignment] # a proxy of one
            self.client.transaction = transaction

        # BEGIN alone changes nothing, so a connection lost before or during it is retried.
        await root._call(begin, root.statement_timeout, idempotent=True, store=False)
        self.token = get_connections().set(self.connection_name, self.client)
        return self.client

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if not self.client._finalized:
                if exc_type is None:
                    await self.client.commit()
                elif exc_type is not TransactionManagementError:
                    await self.client.rollback()
        finally:
            await self._pooled.release()
            get_connections().reset(self.token)


def current() -> FaceplateClient | _Transaction:
    """The client of the current task: the caller's transaction, else the pool's client."""
    try:
        client = connections.get("default")
    except (RuntimeError, ConfigurationError, KeyError):
        client = None
    if not isinstance(client, FaceplateClient | _Transaction):
        raise ConfigError(
            "faceplate-models is not initialised: call init_db() first (at startup, or in "
            "the test fixture), and do not use the store after close_db()"
        )
    return client


client_class = FaceplateClient
