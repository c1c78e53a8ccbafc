"""The one bound the client keeps on a statement: a connection that says nothing for the
statement timeout and `GRACE` more (a partition, a failover: no FIN, no RST) is silent, and
is closed, since asyncpg would wait forever to cancel on it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

#: Seconds the client waits beyond the statement timeout before it calls a connection
#: silent: the server reports its own timeout first when it can.
GRACE: Final = 1.0


class Deadline:
    """Calls `on_silent` if a step it times outlives its bound; `silent` says it did."""

    __slots__ = ("_on_silent", "_timer", "silent")

    def __init__(self, on_silent: Callable[[], None]) -> None:
        self._on_silent = on_silent
        self._timer: asyncio.TimerHandle | None = None
        self.silent = False

    def start(self, seconds: float, *, limit: float | None = None) -> None:
        """Time a step of at most `seconds` (0: unbounded), ending no later than `limit` (the
        event loop's clock) when the caller's whole call has a bound."""
        if not seconds:
            return
        loop = asyncio.get_running_loop()
        at = loop.time() + seconds + GRACE
        self._timer = loop.call_at(at if limit is None else min(at, limit), self._expire)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self.silent = True
        self._on_silent()


__all__ = ["GRACE", "Deadline"]
