"""One connection of the pool, held while anyone in the process waits for a notification,
that LISTENs on every channel they wait on and wakes each waiter (`Listener.wake_on`).

A notification is a hint, never the truth: a waiter always reads the data again after a
bounded wait, so a notification lost (the connection dropped, the server restarted, a
transaction pooler in between, where LISTEN cannot work) costs latency, not correctness.
So nothing here raises: a channel that cannot be listened on is one whose waiters wait out
their bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

log = logging.getLogger("faceplate_models.engine")


class Listener:
    """The process's LISTEN connection and its waiters, by channel."""

    def __init__(self, *, open: Callable[[], Awaitable[asyncpg.Pool]], timeout: float) -> None:
        self._open = open
        self._timeout = timeout
        self._conn: Any = None  # a pooled connection, while any channel has waiters
        self._pool: asyncpg.Pool | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def wake_on(self, channel: str) -> AsyncIterator[asyncio.Event]:
        """An event set whenever `channel` is notified, for as long as the block runs."""
        event = asyncio.Event()
        async with self._lock:
            first = channel not in self._waiters
            self._waiters.setdefault(channel, set()).add(event)
            if first:
                await self._listen(channel)
        try:
            yield event
        finally:
            async with self._lock:
                waiters = self._waiters.get(channel, set())
                waiters.discard(event)
                if not waiters:
                    self._waiters.pop(channel, None)
                    await self._unlisten(channel)

    def _notified(self, _conn: object, _pid: int, channel: str, _payload: str) -> None:
        for event in self._waiters.get(channel, ()):
            event.set()

    def _dropped(self, _conn: object) -> None:
        # The server closed it: the waiters poll, and the next channel opens another.
        self._conn = None
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    async def _listen(self, channel: str) -> None:
        try:
            if self._conn is None:
                self._pool = await self._open()
                self._conn = await self._pool.acquire(timeout=self._timeout)
                self._conn.add_termination_listener(self._dropped)
            await self._conn.add_listener(channel, self._notified)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("cannot listen on %s (%s): its waiters poll", channel, exc)
            await self._release()

    async def _unlisten(self, channel: str) -> None:
        if self._conn is None:
            return
        try:
            await self._conn.remove_listener(channel, self._notified)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await self._release()
            return
        if not self._waiters:
            await self._release()

    async def _release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or self._pool is None:
            return
        try:
            conn.remove_termination_listener(self._dropped)
            await self._pool.release(conn, timeout=self._timeout)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            conn.terminate()

    async def close(self) -> None:
        """Give the connection back (before the pool closes)."""
        async with self._lock:
            self._waiters.clear()
            await self._release()


__all__ = ["Listener"]
