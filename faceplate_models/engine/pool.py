"""The pool as the connection layer uses asyncpg's: its floor opened behind the first
connection, a wait for a free connection bounded by the pool timeout, a reset on release only
where it matters, kernel keepalives on every socket, silent connections closed (and their
idle neighbours), and the counters `pool_stats` reads.

`Pool` owns that state; a `Lease` is one pooled connection for one unit of work, closed if
it outlives its deadline. asyncpg's own pool (made by Tortoise's client, lazily) is handed
in by the client as the coroutine `open`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import asyncpg
from tortoise.backends.base.client import PoolConnectionWrapper
from tortoise.exceptions import BaseORMException

from faceplate_models.engine import failures
from faceplate_models.engine.bounds import (
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    TCP_USER_TIMEOUT_MS,
)
from faceplate_models.engine.deadline import GRACE, Deadline
from faceplate_models.engine.executor import Connection
from faceplate_models.engine.translation import is_statement_timeout
from faceplate_models.errors import OutcomeUnknown, PoolTimeout

log = logging.getLogger("faceplate_models.engine")

Proxy: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

#: Seconds the reset of a released connection may take before the connection is closed:
#: a connection that goes silent after its work answered must not hold the caller.
RELEASE_TIMEOUT: Final = 2 * GRACE


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
class Counters:
    """What the connection layer counts since the pool was made."""

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
        elif is_statement_timeout(exc):
            self.statement_timeouts += 1
            log.warning("the server cancelled a statement at the statement timeout")


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


class _OneLineFloorWarnings(logging.Filter):
    """asyncpg logs a full traceback each time it fails to reopen the pool's minimum
    connections, every few seconds while the database is down: keep one line of it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            cause = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({failures.describe_connect_error(cause)})"
            record.args = ()
            record.exc_info = record.exc_text = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_OneLineFloorWarnings())


class Pool:
    """asyncpg's pool with this layer's waits, resets, silences and counters."""

    def __init__(
        self,
        *,
        where: str,
        timeout: float,
        max_size: int,
        pooled: bool,
        session: str | None,
        open: Callable[[], Awaitable[asyncpg.Pool]],
        opened: Callable[[], asyncpg.Pool | None],
    ) -> None:
        self.where = where
        self.timeout = timeout
        self.max_size = max_size
        self.stats = Counters()
        self._pooled = pooled  # through a transaction pooler: never reset a connection
        # Through a session pooler, what a new connection runs first (its search_path,
        # bounds and dead-peer settings), and again after a reset, which undoes them.
        self._session = session
        self._open = open
        self._opened = opened
        # Connections something other than the store used since they left the pool.
        self._used_freely: weakref.WeakSet[asyncpg.Connection] = weakref.WeakSet()

    async def connected(self, conn: asyncpg.Connection) -> None:
        """asyncpg's `init` of every new connection."""
        _keepalive(conn)
        if self._session is not None:
            await conn.execute(self._session)

    async def create(self, *, min_size: int, **kwargs: Any) -> asyncpg.Pool:
        """asyncpg's pool, with this layer's hooks, keeping `min_size` connections open: the
        first before it answers, the others opened in the background.

        asyncpg opens its whole floor before the pool answers (its `init_size` may not be
        below `min_size`): a process that starts per request would wait for five connections
        to serve its first. The pool is made with one, then given its floor, which asyncpg's
        own task opens one connection at a time, as it does after connections were lost.
        """
        pool = await asyncpg.create_pool(
            None, min_size=min(min_size, 1), init=self.connected, reset=self.reset, **kwargs
        )
        # No public setter for the floor: these are the two names asyncpg's restoring uses.
        pool._minsize = min_size  # type: ignore[attr-defined]
        pool._schedule_min_size_maintenance()  # type: ignore[attr-defined]
        return pool

    @staticmethod
    async def settle(pool: asyncpg.Pool) -> None:
        """Give the floor's opening (`create`) up to GRACE to finish before the pool closes.

        asyncpg's close cancels it, and a connect cancelled just as its socket opened leaves
        an error nobody retrieves ("Future exception was never retrieved", at exit).
        """
        task = pool._maintenance_task  # type: ignore[attr-defined]
        if task is not None:
            await asyncio.wait({task}, timeout=GRACE)

    async def reset(self, conn: asyncpg.Connection) -> None:
        """asyncpg's reset of a released connection (RESET ALL, unlock advisory locks, ...),
        where it can matter: a round trip per call otherwise.

        The store's own work leaves no session state behind (no SET but SET LOCAL, no
        advisory lock, no LISTEN, no cursor), so only connections the ORM, a transaction
        or a caller's own code used are reset (behind a session pooler, with their SETs again
        in the same round trip: RESET ALL undoes them). Through a transaction pooler nothing
        is: the reset would run on whichever server connection the pooler picks, unlocking
        other clients' locks.
        """
        if conn in self._used_freely:
            self._used_freely.discard(conn)
            if not self._pooled:
                reset = conn.get_reset_query()
                await conn.execute(f"{reset};{self._session}" if self._session else reset)

    async def acquire(self, limit: float | None) -> tuple[asyncpg.Pool, Proxy]:
        """A connection from the pool, waiting at most the pool timeout for a free one (and,
        for a retry, no later than `limit`)."""
        wait = self.timeout
        if limit is not None:
            wait = min(wait, limit - asyncio.get_running_loop().time())
        deadline = asyncio.timeout(wait)
        try:
            pool = await self._open()
            self.stats.waiting += 1
            try:
                async with deadline:
                    return pool, await pool.acquire()
            finally:
                self.stats.waiting -= 1
        except TimeoutError as exc:
            if not deadline.expired():
                raise failures.Lost(exc, sent=False) from exc  # the connect timed out
            if wait < self.timeout:
                raise failures.Lost(exc, sent=False) from exc  # the retry ran out of time
            self.stats.pool_timeouts += 1
            log.warning(
                "no pooled connection to %s became free within the pool timeout", self.where
            )
            raise PoolTimeout(
                f"no connection to {self.where} became free within {self.timeout:g} s "
                f"(FACEPLATE_DB_POOL_TIMEOUT): all {self.max_size} pooled connections "
                "stayed busy; look for slow queries or work holding connections, or raise "
                "FACEPLATE_DB_POOL_MAX"
            ) from None
        except Exception as exc:
            if isinstance(exc, failures.TRANSIENT_CONNECT) and not (
                failures.fatal(exc) or failures.rejected_parameter(exc)
            ):
                raise failures.Lost(exc, sent=False) from exc
            if isinstance(exc, (*failures.DRIVER, *failures.TRANSIENT_CONNECT, BaseORMException)):
                raise failures.connect_error(exc, self.where) from exc
            raise

    def used_freely(self, conn: Proxy) -> None:
        """Note a connection the store's rules did not govern: its release resets it."""
        self._used_freely.add(conn._con)  # type: ignore[attr-defined] # the proxy's connection

    async def release(self, pool: asyncpg.Pool, conn: Proxy) -> None:
        """Give a connection back (or discard it, if it died)."""
        # The store's connections go back without a network round trip (see `reset`); the
        # bound is for the others' reset, and for a cancellation asyncpg sent after a
        # client-side timeout, which it waits for and which a partition never answers.
        try:
            await pool.release(conn, timeout=RELEASE_TIMEOUT)
        except Exception as exc:
            # The reset on release found the connection dying (the server's FATAL message can
            # land just after the work's reply) or silent. asyncpg has terminated it and the
            # pool opens a fresh one when needed; the work succeeded or failed on its own.
            log.debug("discarded a pooled connection to %s: %r", self.where, exc)

    def silenced(self, conn: Connection | asyncpg.Connection) -> None:
        """Close a connection that outlived its deadline, and the idle ones beside it.

        A connection gone silent cannot even be cancelled (asyncpg waits for the server's
        answer), so it is terminated; the idle connections share its network path, so they
        are closed too and the pool reconnects when the path answers again.
        """
        self.stats.silent_connections += 1
        log.warning("no answer from %s past the deadline: closing the connection", self.where)
        conn.terminate()
        if (pool := self._opened()) is not None:
            for holder in pool._holders:  # type: ignore[attr-defined] # no public way
                if holder.is_connected() and holder.is_idle():
                    holder.terminate()

    def snapshot(self) -> PoolStats:
        """The pool's sizes and the counters."""
        pool, s = self._opened(), self.stats
        size = pool.get_size() if pool is not None else 0
        idle = pool.get_idle_size() if pool is not None else 0
        return PoolStats(
            size=size,
            idle=idle,
            in_use=size - idle,
            waiting=s.waiting,
            max_size=self.max_size,
            retries=s.retries,
            conflict_retries=s.conflict_retries,
            pool_timeouts=s.pool_timeouts,
            statement_timeouts=s.statement_timeouts,
            lock_timeouts=s.lock_timeouts,
            silent_connections=s.silent_connections,
        )


class Lease(PoolConnectionWrapper[Proxy]):
    """One pooled connection for one unit of work, closed if it outlives `timeout` (+ grace).

    A failure that killed the connection becomes `failures.Lost` for the retrying caller, or,
    for a caller's own `acquire_connection()` (`public`), the package's error.
    """

    __slots__ = (
        "_deadline",
        "_kept",
        "_limit",
        "_owner",
        "_pool",
        "_public",
        "_started",
        "_store",
        "_timeout",
    )

    def __init__(
        self,
        client: Any,
        owner: Pool,
        limit: float | None,
        timeout: float,
        *,
        lock: asyncio.Lock,
        public: bool = False,
        store: bool = False,
    ) -> None:
        super().__init__(client, lock)
        self._owner = owner
        self._limit = limit
        self._timeout = timeout
        self._public = public
        self._store = store
        self._kept = False
        self._deadline = Deadline(self._silenced)

    async def __aenter__(self) -> Proxy:
        try:
            self._pool, conn = await self._owner.acquire(self._limit)
        except failures.Lost as lost:
            if not self._public:
                raise
            raise failures.unreachable(lost, self._owner.where) from lost.cause
        self.connection = conn
        if not self._store:
            self._owner.used_freely(conn)
        self._started = asyncio.get_running_loop().time()
        self._deadline.start(self._timeout, limit=self._limit)
        return conn

    def _silenced(self) -> None:
        assert self.connection is not None  # noqa: S101 - set by __aenter__
        self._owner.silenced(self.connection)

    def keep(self) -> None:
        """Leave the block without releasing the connection: `release()` does it later."""
        self._kept = True

    async def release(self) -> None:
        """Give the connection back to the pool (or discard it, if it died)."""
        assert self.connection is not None  # noqa: S101 - set by __aenter__
        await self._owner.release(self._pool, self.connection)

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self._deadline.stop()
        conn = self.connection
        assert conn is not None  # noqa: S101 - set by __aenter__
        silent = self._deadline.silent
        wrong_server = exc is not None and failures.read_only(exc)
        if wrong_server:
            conn.terminate()  # its replacement may reach the new primary
        # Read the state before release: a released proxy refuses every call.
        killed = exc if exc is not None and (silent or failures.killed(exc, conn)) else None
        if exc is None and self._kept:
            return
        await self._owner.release(self._pool, conn)
        if killed is None:
            return
        # A read-only server applied nothing: a retry is safe, whatever the work.
        lost = failures.Lost(killed, sent=not wrong_server, silent=silent, started=self._started)
        if self._public and wrong_server:
            raise failures.unreachable(lost, self._owner.where) from killed
        if self._public:
            raise OutcomeUnknown(
                f"{failures.how(lost, self._owner.where)} while it was in use; what it was "
                "doing may or may not have been applied "
                f"({failures.describe_connect_error(killed)})"
            ) from killed
        raise lost from killed


__all__ = [
    "RELEASE_TIMEOUT",
    "Counters",
    "Lease",
    "Pool",
    "PoolStats",
    "Proxy",
]
