"""Read replicas: the store's reads go to a replica, and a user always reads their own writes.

A watcher looks at the primary's WAL position and each replica's replayed position every
`POLL` seconds. A replica that is down, refuses, or has replayed less than the primary
had written `max_lag` seconds ago is skipped, and comes back by itself once it answers and
catches up. (The comparison is by WAL position, not by replay time, so an idle primary
does not make its replicas look late.)

After a user's write, the store notes the primary's WAL position for that user; the
user's reads then go to a replica that has replayed that far, or, after waiting at most
`wait` seconds for one, to the primary. Other users' reads stay on the replicas. Across
processes, `consistency_token()` gives that position as a short string a backend hands to
the browser and takes back (`read_after()`), so the next request, served by any process,
sees the write too. Writes, reads inside a transaction and ORM calls use the primary;
`read_client()` opts an ORM query in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from faceplate_models.engine import Connection, FaceplateClient
from faceplate_models.errors import (
    DatabaseUnavailable,
    FaceplateError,
    NotFound,
)
from faceplate_models.validation import parsed

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds between the watcher's looks at the primary and the replicas.
POLL: Final = 0.2
#: Seconds between asking the replicas whether they have a user's write yet.
CATCH_UP_STEP: Final = 0.002
#: Users whose last write position is remembered (the oldest are forgotten first).
MAX_TRACKED_USERS: Final = 100_000
_PRIMARY_LSN = "SELECT pg_current_wal_lsn()::text"
_REPLAYED_LSN = "SELECT pg_last_wal_replay_lsn()::text"


def parse_lsn(text: str) -> int:
    """A WAL position (`16/B374D848`) as a number; `ValueError` if it is not one."""
    high, slash, low = text.partition("/")
    if not slash or not high or not low or len(high) > 8 or len(low) > 8:
        raise ValueError(text)
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


@dataclass
class _Replica:
    client: FaceplateClient
    replayed: int = 0
    healthy: bool = False
    lagging: bool = True

    @property
    def usable(self) -> bool:
        return self.healthy and not self.lagging


class Replicas:
    """The read replicas of one primary, and each user's last write position."""

    def __init__(
        self,
        primary: FaceplateClient,
        replicas: list[FaceplateClient],
        *,
        max_lag: float,
        wait: float,
    ) -> None:
        self.primary = primary
        self.replicas = [_Replica(client) for client in replicas]
        self.max_lag = max_lag
        self.wait = wait
        self._written: OrderedDict[uuid.UUID, int] = OrderedDict()
        self._primary_until: dict[uuid.UUID, float] = {}  # writes whose position is unknown
        self._samples: deque[tuple[float, int]] = deque()  # (time, the primary's position)
        self._next = 0
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._look()
        self._watcher = asyncio.create_task(self._watch(), name="faceplate replica watcher")

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher

    # --- the watcher ---------------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL)
            await self._look()

    async def _look(self) -> None:
        now = time.monotonic()
        try:
            primary = parse_lsn(await self.primary.run(lambda c: c.fetchval(_PRIMARY_LSN)))
        except FaceplateError:
            return  # the primary's own errors reach its own callers
        self._samples.append((now, primary))
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.max_lag:
            self._samples.popleft()
        # What a replica must have replayed: the primary's position max_lag seconds ago.
        then, due = self._samples[0]
        due = due if then <= now - self.max_lag else 0
        for replica in self.replicas:
            was = replica.usable
            try:
                replica.replayed = await self._replayed(replica)
                replica.healthy = True
            except FaceplateError:
                replica.healthy = False
            replica.lagging = replica.replayed < due
            if was != replica.usable:
                log.warning(
                    "replica %s %s",
                    replica.client.where,
                    "serves reads again"
                    if replica.usable
                    else "is skipped: " + ("it lags" if replica.healthy else "it does not answer"),
                )

    @staticmethod
    async def _replayed(replica: _Replica) -> int:
        text = await replica.client.run(lambda c: c.fetchval(_REPLAYED_LSN), retry=False)
        if text is None:  # not a standby: a primary read as a replica has everything
            text = await replica.client.run(lambda c: c.fetchval(_PRIMARY_LSN), retry=False)
        return parse_lsn(text)

    # --- writes and tokens ---------------------------------------------------------------

    def wrote(self, user_id: uuid.UUID, position: int | None) -> None:
        """Note a user's write: at `position`, or (unknown, as inside the caller's
        transaction) by sending their reads to the primary until any usable replica has it."""
        if position is None:
            self._primary_until[user_id] = time.monotonic() + self.max_lag + 2 * POLL
            return
        if position > self._written.get(user_id, 0):
            self._written[user_id] = position
        self._written.move_to_end(user_id)
        while len(self._written) > MAX_TRACKED_USERS:
            self._written.popitem(last=False)

    def token(self, user_id: uuid.UUID) -> str | None:
        position = self._written.get(user_id)
        return None if position is None else format_lsn(position)

    def read_after(self, user_id: uuid.UUID, token: str) -> None:
        position = parsed(
            "token", lambda: parse_lsn(token), (ValueError,), "is not a consistency token"
        )
        self.wrote(user_id, position)

    async def write(
        self,
        user: uuid.UUID | Callable[[T], uuid.UUID | None] | None,
        work: Callable[[Connection], Awaitable[T]],
        long: bool,
    ) -> T:
        """Run a write on the primary, noting the position its commit reached for `user`
        (or for the user a function of the result names)."""

        async def tracked(conn: Connection) -> tuple[T, str]:
            result = await work(conn)
            return result, await conn.fetchval(_PRIMARY_LSN)

        result, position = await self.primary.run(tracked, long=long, write=True)
        user_id = user(result) if callable(user) else user
        if user_id is not None:
            self.wrote(user_id, parse_lsn(position))
        return result

    # --- reads ---------------------------------------------------------------------------

    async def read(
        self, user_id: uuid.UUID | None, work: Callable[[Connection], Awaitable[T]]
    ) -> T:
        """Run a read on a replica that has the user's writes, else on the primary."""
        client = await self.client_for(user_id)
        if client is self.primary:
            return await client.run(work)
        try:
            return await client.run(work, retry=False)
        except DatabaseUnavailable:
            # It failed under this read: skip it until the watcher finds it answering.
            for replica in self.replicas:
                if replica.client is client:
                    replica.healthy = False
        except NotFound:
            pass  # perhaps written by another process a moment ago: the primary knows
        return await self.primary.run(work)

    async def client_for(self, user_id: uuid.UUID | None) -> FaceplateClient:
        """The replica to read from for this user, or the primary."""
        usable = [r for r in self.replicas if r.usable]
        if not usable:
            return self.primary
        self._next += 1
        usable = usable[self._next % len(usable) :] + usable[: self._next % len(usable)]
        if user_id is not None and self._primary_until.get(user_id, 0) > time.monotonic():
            return self.primary
        needed = self._written.get(user_id, 0) if user_id is not None else 0
        for replica in usable:
            if replica.replayed >= needed:
                return replica.client
        # Ask them, and wait a little for one to catch up: most are a millisecond behind.
        deadline = time.monotonic() + self.wait
        while True:
            for replica in usable:
                with contextlib.suppress(FaceplateError):
                    replica.replayed = await self._replayed(replica)
                    if replica.replayed >= needed:
                        return replica.client
            if time.monotonic() >= deadline:
                return self.primary
            await asyncio.sleep(CATCH_UP_STEP)


# The router `init_db` installs when replicas are configured.
_router: Replicas | None = None


def use(router: Replicas | None) -> None:
    global _router
    _router = router


def router() -> Replicas | None:
    return _router


__all__ = ["Replicas", "format_lsn", "parse_lsn", "router", "use"]
