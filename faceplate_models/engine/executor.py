"""The contract the store, the secrets' rotation and the replicas' router rely on: run
repeatable work within the connection layer's rules, in a transaction when asked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeAlias, TypeVar

import asyncpg

T = TypeVar("T")
#: What the work handed to `Executor.run` receives: a pooled asyncpg connection.
Connection: TypeAlias = (
    "asyncpg.pool.PoolConnectionProxy[asyncpg.Record] | asyncpg.Connection[asyncpg.Record]"
)
Work: TypeAlias = Callable[[Connection], Awaitable[T]]


def texts(values: Iterable[object]) -> list[str | None]:
    """`values` as a text[] parameter, which the statement casts: `$8::text[]::uuid[]`.

    asyncpg encodes and decodes text[] by itself, but it learns any other array type
    (uuid[], jsonb[], int[], ...) from the server's catalog, once per connection, the first
    time a statement binds or returns one: a query of 5 ms on a new connection here, half a
    second on Citus, paid by whichever request comes first (in a cold start, the first
    request). So the work handed to `Executor.run` binds and reads arrays as text[] only.
    Bytes go in PostgreSQL's hex form, everything else as its `str`.
    """
    return [
        None if v is None else "\\x" + v.hex() if isinstance(v, bytes) else str(v) for v in values
    ]


class Executor(Protocol):
    """Runs the store's work: the pool's client, or the caller's transaction."""

    #: The server, for messages: user, host, port and database, never the password.
    where: str

    async def run(self, work: Work[T], *, long: bool = False, write: bool = False) -> T:
        """Run repeatable `work` (its first attempt may have been applied in full before
        its connection dropped); `long` for the long statement timeout; a `write` whose
        outcome a lost connection left unknown is `OutcomeUnknown`. Driver errors leave as
        `FaceplateError`s."""
        ...

    def atomic(
        self, conn: Connection, *, long: bool = False
    ) -> AbstractAsyncContextManager[object]:
        """A transaction (a savepoint, inside the caller's) on a connection of `run`."""
        ...

    @property
    def lock_wait(self) -> float | None:
        """Seconds the store waits for a row lock, end to end, before `LockTimeout`."""
        ...

    def waited_too_long(self) -> Exception:
        """The error of a lock wait the client ended, counted and logged."""
        ...


__all__ = ["Connection", "Executor", "Work"]
