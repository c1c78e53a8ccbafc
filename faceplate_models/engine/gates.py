"""How many of a process's pooled connections one conversation, and one user, may hold.

A call that waits at the server for a conversation's row lock holds a pooled connection for
the whole wait: a few hundred appends to one hot conversation would take the pool from
every other user. So the store's calls pass their conversation's gate and their user's
before they take a connection. Past `per_conversation` callers (the one at work and the next
in line at the server), the others wait here, holding nothing, for at most the lock wait,
and leave with `LockTimeout`, as they would have at the server; past `per_user`, for at
most the pool timeout, and leave with `PoolTimeout`. Inside the caller's transaction, which
holds its connection already, there is nothing to gate.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from faceplate_models.errors import FaceplateError, PoolTimeout


class Gate:
    """At most `size` holders per key; a semaphore per key, made on first use and dropped
    once nobody holds it or waits for it, so idle keys cost nothing."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._keys: dict[uuid.UUID, tuple[asyncio.Semaphore, int]] = {}

    @asynccontextmanager
    async def passage(
        self, key: uuid.UUID, seconds: float | None, refused: Callable[[], FaceplateError]
    ) -> AsyncIterator[None]:
        """Hold one of `key`'s places; `refused()` is raised after `seconds` without one."""
        semaphore, users = self._keys.get(key, (None, 0))
        if semaphore is None:
            semaphore = asyncio.Semaphore(self.size)
        self._keys[key] = (semaphore, users + 1)
        try:
            waited = False
            try:
                async with asyncio.timeout(seconds):
                    await semaphore.acquire()
            except TimeoutError:
                waited = True
            if waited:
                raise refused()
            try:
                yield
            finally:
                semaphore.release()
        finally:
            _, users = self._keys[key]
            if users == 1:
                del self._keys[key]
            else:
                self._keys[key] = (semaphore, users - 1)

    def busy(self) -> int:
        """How many keys are held or waited for now."""
        return len(self._keys)


class Gates:
    """The conversation gate and the user gate of one pool."""

    def __init__(self, *, per_conversation: int, per_user: int, where: str) -> None:
        self.conversations = Gate(per_conversation)
        self.users = Gate(per_user)
        self.where = where

    @asynccontextmanager
    async def passage(
        self,
        *,
        user: uuid.UUID | None,
        conversation: uuid.UUID | None,
        lock_wait: float | None,
        pool_wait: float,
        lock_refused: Callable[[], FaceplateError],
    ) -> AsyncIterator[None]:
        """Pass the conversation's gate (a hot conversation's waiters hold no user place
        either), then the user's."""
        async with AsyncExitStack() as stack:
            if conversation is not None:
                await stack.enter_async_context(
                    self.conversations.passage(conversation, lock_wait, lock_refused)
                )
            if user is not None:
                await stack.enter_async_context(
                    self.users.passage(user, pool_wait, lambda: self._user_refused(pool_wait))
                )
            yield

    def _user_refused(self, seconds: float) -> PoolTimeout:
        return PoolTimeout(
            f"this user's calls held all {self.users.size} of the connections to {self.where} "
            f"one user may hold (FACEPLATE_DB_POOL_PER_USER) for {seconds:g} s "
            "(FACEPLATE_DB_POOL_TIMEOUT): look for a client sending many requests at once"
        )


__all__ = ["Gate", "Gates"]
