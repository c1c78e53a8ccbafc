"""Tortoise's asyncpg client, wired to the parts of the connection layer: the pool (`Pool`,
`Lease`), the retry rule (`Retrier`), the transaction (`transaction`), the deadline, and the
store's executor contract (`run`, `atomic`)."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, TypeVar

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.client import TransactionContext
from tortoise.connection import connections
from tortoise.exceptions import ConfigurationError

from faceplate_models.engine import failures
from faceplate_models.engine.bounds import TimeBounds
from faceplate_models.engine.deadline import GRACE
from faceplate_models.engine.executor import Connection, Work
from faceplate_models.engine.gates import Gates
from faceplate_models.engine.listener import Listener
from faceplate_models.engine.options import EngineOptions
from faceplate_models.engine.pool import Lease, Pool, PoolStats
from faceplate_models.engine.retrier import Retrier
from faceplate_models.engine.transaction import PooledTransaction, Transaction
from faceplate_models.engine.translation import lock_timeout
from faceplate_models.errors import ConfigError, LockTimeout

log = logging.getLogger("faceplate_models.engine")

T = TypeVar("T")

# Tortoise's statements reach their connection through `acquire_connection()`, deep inside
# its own code: the variable carries, to that call, the time by which a retried statement
# must end (None for a first attempt); unset, the caller is someone's own code.
_ORM_LIMIT: Final[contextvars.ContextVar[tuple[float | None] | None]] = contextvars.ContextVar(
    "faceplate_orm_limit", default=None
)


# The bounds in force, in milliseconds (pg_settings' unit for all three).
_BOUNDS_SQL: Final = (
    "SELECT name, setting::bigint AS ms FROM pg_settings WHERE name = ANY($1::text[])"
)


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


class FaceplateClient(AsyncpgDBClient):
    """Tortoise's asyncpg client under the rules of `faceplate_models.engine`."""

    def __init__(self, *, faceplate: EngineOptions, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.options = faceplate
        self.root = self  # what a transaction of this client answers to
        self.where = faceplate.where
        self.pool = Pool(
            where=self.where,
            timeout=faceplate.pool_timeout,
            max_size=self.pool_maxsize,
            pooled=faceplate.pooled,
            session=faceplate.session_sets,
            open=self._asyncpg_pool,
            opened=lambda: self._pool,
        )
        self.retrier = Retrier(where=self.where, counters=self.pool.stats)
        self.listener = Listener(open=self._asyncpg_pool, timeout=faceplate.pool_timeout)
        self.gates = Gates(
            per_conversation=faceplate.per_conversation,
            per_user=faceplate.per_user,
            where=self.where,
        )
        # What a transaction sets as it begins, by whether it is long: a transaction pooler
        # takes no startup parameters, so its transactions set every bound; in session
        # mode the connection has them already. A long one's statement bound comes last.
        lacking = faceplate.bounds.set_local() if faceplate.pooled else ""
        longer = TimeBounds(statement=faceplate.long_statement_timeout).set_local()
        self._begin = {False: lacking, True: ";".join(filter(None, (lacking, longer)))}

    # --- the parts' collaborators --------------------------------------------------------

    async def _asyncpg_pool(self) -> asyncpg.Pool:
        """asyncpg's pool, made (once, by Tortoise) on first use."""
        if self._pool is None:
            async with self._pool_init_lock:
                if self._pool is None:
                    await self.create_connection(with_db=True)
        assert self._pool is not None  # noqa: S101 - create_connection sets it or raises
        return self._pool

    async def create_pool(self, **kwargs: Any) -> asyncpg.Pool:
        if len(self.options.hosts) > 1:  # asyncpg tries them in order
            kwargs["host"] = [host for host, _ in self.options.hosts]
            kwargs["port"] = [port for _, port in self.options.hosts]
        return await self.pool.create(**kwargs)

    def lease(
        self, limit: float | None, *, long: bool = False, public: bool = False, store: bool = False
    ) -> Lease:
        """One pooled connection for one unit of work."""
        return Lease(
            self,
            self.pool,
            limit,
            self.statement_bound(long=long),
            lock=self._pool_init_lock,
            public=public,
            store=store,
        )

    def statement_bound(self, *, long: bool = False) -> float:
        """Seconds a statement may run (0: unbounded), which the client's deadline follows."""
        return self.options.long_statement_timeout if long else self.options.bounds.statement

    def transaction_bounds(self, *, long: bool) -> str:
        """What a transaction sets as it begins ("" for nothing)."""
        return self._begin[long]

    @property
    def lock_wait(self) -> float | None:
        """How long the store waits for a row lock, end to end, before `LockTimeout`.

        PostgreSQL applies lock_timeout to each lock a statement waits for in turn, and the
        waiters of a row queue on one another: one that inherits its place in line starts
        a fresh wait. The client ends the wait at the lock timeout and half its grace.
        """
        lock = self.options.bounds.lock
        return lock + GRACE / 2 if lock else None

    def waited_too_long(self) -> LockTimeout:
        """The error of a lock wait the client ended (see `lock_wait`), counted and logged."""
        self.pool.stats.lock_timeouts += 1
        log.warning("a row lock stayed held past the lock timeout (the client ended the wait)")
        return lock_timeout()

    def _gate_refused(self) -> LockTimeout:
        """The error of a wait at a conversation's gate (`gates`), counted and logged."""
        self.pool.stats.lock_timeouts += 1
        log.warning("calls on one conversation held its gate past the lock timeout")
        return LockTimeout(
            f"the {self.gates.conversations.size} calls of this process already at work on "
            "this conversation (FACEPLATE_DB_POOL_PER_CONVERSATION) kept it past the lock "
            "timeout: another session holds its row, or the database is slow to answer",
            sqlstate="55P03",
        )

    def pool_stats(self) -> PoolStats:
        """The pool's sizes and this client's counters."""
        return self.pool.snapshot()

    async def close(self) -> None:
        await self.listener.close()  # its connection goes back before the pool closes
        if self._pool is not None:
            await self.pool.settle(self._pool)
        await super().close()

    # --- the store's entry point ---------------------------------------------------------

    async def run(
        self, work: Work[T], *, long: bool = False, retry: bool = True, write: bool = False
    ) -> T:
        """Run idempotent `work` on a pooled connection, within the layer's rules.

        `work` must be safe to repeat: its first attempt may have been applied in full
        before the connection dropped. `long` gives it the long statement timeout (its
        transactions must say so too: `atomic(conn, long=True)`); without `retry` a lost
        connection is `DatabaseUnavailable` at once (a replica's reader has somewhere
        else to go). A `write` whose attempts were all lost after one reached the server is
        `OutcomeUnknown`. Driver errors leave as `FaceplateError`s.
        """

        async def attempt(limit: float | None) -> T:
            async with self.lease(limit, long=long, store=True) as conn:
                return await work(conn)

        bound = self.statement_bound(long=long)
        return await self.retrier.call(
            attempt, bound, idempotent=True, store=True, retry=retry, write=write
        )

    def admit(
        self, *, user: uuid.UUID | None, conversation: uuid.UUID | None
    ) -> AbstractAsyncContextManager[None]:
        """Pass the gates of `conversation` and `user` (`gates`) before taking a connection."""
        return self.gates.passage(
            user=user,
            conversation=conversation,
            lock_wait=self.lock_wait,
            pool_wait=self.options.pool_timeout,
            lock_refused=self._gate_refused,
        )

    @asynccontextmanager
    async def atomic(self, conn: Connection, *, long: bool = False) -> AsyncIterator[None]:
        """A transaction on a connection of `run`, with the bounds the connection lacks."""
        async with conn.transaction():
            if bounds := self.transaction_bounds(long=long):
                await conn.execute(bounds)
            yield

    async def probe(self) -> None:
        """Open the pool and run one query, without the retry: at startup, failing fast wins.

        The query reads the server's time bounds back: one that is off (0) or longer than
        configured, whatever undid it (a pooler that drops session settings, a role's own
        `ALTER ROLE ... SET statement_timeout = 0`), is a `ConfigError` naming the fix.
        """
        wanted = self.options.bounds.settings()
        try:
            async with self.lease(None, store=True) as conn:
                rows = await conn.fetch(_BOUNDS_SQL, list(wanted))
        except failures.Lost as lost:
            raise failures.unreachable(lost, self.where) from lost.cause
        found = {row["name"]: row["ms"] for row in rows}
        wrong = [
            f"{name} is {found.get(name, 0)} ms, not {limit} ms"
            for name, limit in wanted.items()
            if not 0 < found.get(name, 0) <= limit
        ]
        if not wrong:
            return
        fix = (
            "a transaction pooler passes no session settings, so set them on the "
            "application's role, as `faceplate-db grants` prints"
            if self.options.pooled
            else "something between the package and the server dropped or undid the "
            "session's settings: behind PgBouncer in session mode set "
            "FACEPLATE_DB_POOL_MODE=session_pooler, in transaction mode =transaction"
        )
        raise ConfigError(
            f"the server at {self.where} would not bound this package's statements "
            f"({'; '.join(wrong)}): {fix}"
        )

    # --- Tortoise's entry points ---------------------------------------------------------

    def acquire_connection(self) -> Lease:
        limit = _ORM_LIMIT.get()
        if limit is None:  # a caller's own `async with client.acquire_connection()`
            return self.lease(None, public=True)
        return self.lease(limit[0])

    def _in_transaction(self) -> TransactionContext:
        return PooledTransaction(Transaction(self), self._pool_init_lock)

    async def _orm(self, statement: Callable[..., Awaitable[T]], *args: Any, idempotent: bool) -> T:
        """One of Tortoise's statements, within the rules: a read is retried, a write is not."""

        async def attempt(limit: float | None) -> T:
            token = _ORM_LIMIT.set((limit,))
            try:
                return await statement(*args)
            finally:
                _ORM_LIMIT.reset(token)

        bound = self.statement_bound()
        return await self.retrier.call(attempt, bound, idempotent=idempotent, store=False)

    async def execute_query(self, query: str, values: list[Any] | None = None) -> Any:
        return await self._orm(super().execute_query, query, values, idempotent=_is_read(query))

    async def execute_query_dict(self, query: str, values: list[Any] | None = None) -> Any:
        read = _is_read(query)
        return await self._orm(super().execute_query_dict, query, values, idempotent=read)

    async def execute_insert(self, query: str, values: list[Any]) -> Any:
        return await self._orm(super().execute_insert, query, values, idempotent=False)

    async def execute_many(self, query: str, values: list[Any]) -> None:
        await self._orm(super().execute_many, query, values, idempotent=False)

    async def execute_script(self, query: str) -> None:
        await self._orm(super().execute_script, query, idempotent=False)


def current() -> FaceplateClient | Transaction:
    """The client of the current task: the caller's transaction, else the pool's client."""
    try:
        client = connections.get("default")
    except (RuntimeError, ConfigurationError, KeyError):
        client = None
    if not isinstance(client, FaceplateClient | Transaction):
        raise ConfigError(
            "faceplate-models is not initialised: call init_db() first (at startup, or in "
            "the test fixture), and do not use the store after close_db()"
        )
    return client


__all__ = ["FaceplateClient", "current"]
