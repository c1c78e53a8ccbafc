"""The caller's transaction (`in_transaction()`, `@atomic()`): its connection is had within the
pool timeout and its BEGIN retried like a read (BEGIN alone changes nothing); after that
nothing is retried, and a connection lost under it is `ConnectionLost`, saying that none of
its work was committed (or, lost during COMMIT, that the outcome is unknown). Store calls
inside it run on its connection (`run`), each step under the client's deadline."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from tortoise.backends.asyncpg.client import TransactionWrapper
from tortoise.backends.base.client import (
    NestedTransactionContext,
    TransactionContext,
    TransactionContextPooled,
)
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError

from faceplate_models.engine import failures
from faceplate_models.engine.deadline import Deadline
from faceplate_models.engine.executor import Connection, Work
from faceplate_models.engine.translation import driver_error
from faceplate_models.errors import ConnectionLost, LockTimeout, OutcomeUnknown

if TYPE_CHECKING:
    from faceplate_models.engine.client import FaceplateClient
    from faceplate_models.engine.pool import Lease

T = TypeVar("T")


class Transaction(TransactionWrapper):
    """A transaction's connection, under the rules above."""

    where: str
    root: FaceplateClient

    def __init__(self, connection: FaceplateClient | Transaction) -> None:
        super().__init__(connection)
        self.where = connection.where
        self.root = connection.root if isinstance(connection, Transaction) else connection
        self._deadline = Deadline(self._silenced)

    def _in_transaction(self) -> TransactionContext:
        return NestedTransactionContext(Transaction(self))

    def _silenced(self) -> None:
        self.root.pool.silenced(self._connection)

    def _lost(self, exc: BaseException, *, committing: bool = False) -> ConnectionLost:
        outcome = (
            "while committing: the transaction may or may not have been committed"
            if committing
            else "inside a transaction: none of its work was committed"
        )
        how = "went silent and was closed" if self._deadline.silent else "was lost"
        kind = OutcomeUnknown if committing else ConnectionLost
        return kind(
            f"the connection to {self.where} {how} {outcome} "
            f"({failures.describe_connect_error(exc)})"
        )

    @asynccontextmanager
    async def _bounded(self, seconds: float) -> AsyncIterator[None]:
        """Close the transaction's connection if one step outlives `seconds` (+ grace)."""
        self._deadline.start(seconds)
        try:
            yield
        finally:
            self._deadline.stop()

    def _dead(self, exc: BaseException) -> bool:
        """Whether `exc` ended the connection; a read-only server's is ended here, since its
        replacement may reach the new primary."""
        if failures.read_only(exc):
            self._connection.terminate()
        return self._deadline.silent or failures.killed(exc, self._connection)

    async def run(self, work: Work[T], *, long: bool = False, write: bool = False) -> T:
        """Run store `work` on this transaction's connection: no retry, the store's errors.
        A lost connection is `ConnectionLost` for reads and writes alike: nothing of the
        transaction was committed (`write` changes nothing here)."""
        root = self.root
        async with self._lock, self._bounded(root.statement_bound(long=long)):
            try:
                return await work(self._connection)
            except (*failures.DRIVER, *failures.LOSS) as exc:
                if self._dead(exc):
                    raise self._lost(exc) from exc
                root.pool.stats.count(exc)
                raise driver_error(exc) from exc

    def atomic(self, conn: Connection, *, long: bool = False) -> Any:
        """A savepoint inside this transaction (its bounds were set when it began)."""
        return conn.transaction()

    @property
    def lock_wait(self) -> float | None:
        return self.root.lock_wait

    def waited_too_long(self) -> LockTimeout:
        return self.root.waited_too_long()

    async def _translate_exceptions(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        async with self._bounded(self.root.statement_bound()):
            try:
                return await super()._translate_exceptions(func, *args, **kwargs)
            except (*failures.DRIVER, *failures.LOSS) as exc:
                if self._dead(exc):
                    raise self._lost(exc) from exc
                self.root.pool.stats.count(exc)
                raise  # the ORM keeps stock Tortoise's classes

    async def _end(self, step: Callable[[], Awaitable[None]]) -> Exception | None:
        """COMMIT or ROLLBACK within the statement bound: a lost connection ends the
        transaction and is returned; any other error is raised."""
        try:
            async with self._bounded(self.root.statement_bound()):
                await step()
        except Exception as exc:
            if not self._dead(exc):
                raise
            self._finalized = True
            return exc
        return None

    async def commit(self) -> None:
        # A connection found closed before COMMIT was sent committed nothing.
        sent = not failures.closed(self._connection)
        if (lost := await self._end(super().commit)) is not None:
            raise self._lost(lost, committing=sent) from lost

    async def rollback(self) -> None:
        # The server discards the transaction of a connection that dropped: nothing to undo,
        # and the driver's error about the dead connection would hide the caller's own.
        if failures.closed(self._connection):
            self._finalized = True
            return
        await self._end(super().rollback)


class PooledTransaction(TransactionContextPooled):
    """`in_transaction()` with a bounded wait for its connection and a retried BEGIN."""

    __slots__ = ("_lease",)

    client: Transaction

    async def __aenter__(self) -> Transaction:
        root = self.client.root

        async def begin(limit: float | None) -> None:
            lease = root.lease(limit)
            async with lease as conn:
                transaction = conn.transaction()
                await transaction.start()
                if bounds := root.transaction_bounds(long=False):
                    await conn.execute(bounds)
                lease.keep()  # the transaction owns the connection until it ends
            self._lease: Lease = lease
            self.client._connection = conn  # type: ignore[assignment] # a proxy of one
            self.client.transaction = transaction

        # BEGIN alone changes nothing, so a connection lost before or during it is retried.
        await root.retrier.call(begin, root.statement_bound(), idempotent=True, store=False)
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
            await self._lease.release()
            get_connections().reset(self.token)


__all__ = ["PooledTransaction", "Transaction"]
