"""The retry rule, on one screen.

- A connection lost (or gone silent) while it was being had, or while idempotent work ran
  outside a transaction, is tried once more on a fresh connection after `RETRY_DELAY`, the
  whole call within twice the statement timeout less `GRACE`; a second loss is
  `DatabaseUnavailable`. Idempotent work is every statement of the store (written to be
  repeatable: inserts carry a client-made uuid7 key and skip a key that exists, updates
  set absolute values, upserts go by natural key) and every ORM statement that begins with
  SELECT. Any other write lost in flight may have been applied: `OutcomeUnknown`, saying
  so; so is a store write whose every attempt was lost after one of them was sent (the
  caller's retry with the same ids finds what was stored instead of storing it again).
- The store's own work is also tried again after a deadlock or a serialization failure, at
  most `CONFLICT_RETRIES` times, with jitter.
- For the store, a driver error leaves as the package's (`translation`); the ORM keeps
  stock Tortoise's classes, which Tortoise's own code and its users catch.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from faceplate_models.engine import failures
from faceplate_models.engine.deadline import GRACE
from faceplate_models.engine.pool import Counters
from faceplate_models.engine.translation import CONFLICTS, driver_error
from faceplate_models.errors import DatabaseUnavailable, OutcomeUnknown

log = logging.getLogger("faceplate_models.engine")

T = TypeVar("T")
#: Seconds between a lost connection and the one retry.
RETRY_DELAY: Final = 1.0
#: Retries of the store's work after a deadlock or a serialization failure.
CONFLICT_RETRIES: Final = 3


class Retrier:
    """Runs attempts of one call within the rule; `where` names the server in messages, and
    `counters` counts what it retried."""

    def __init__(self, *, where: str, counters: Counters) -> None:
        self.where = where
        self.counters = counters

    async def call(
        self,
        attempt: Callable[[float | None], Awaitable[T]],
        seconds: float,
        *,
        idempotent: bool,
        store: bool,
        retry: bool = True,
        write: bool = False,
    ) -> T:
        """Run `attempt(limit)` (`limit`: the event loop's time by which a retry must end)
        for work of at most `seconds` a statement; a `write` that fails after one of its
        attempts reached the server is `OutcomeUnknown`."""
        loop = asyncio.get_running_loop()
        limit: float | None = None
        lost_once = False
        sent = False
        conflicts = 0
        while True:
            try:
                return await attempt(limit)
            except failures.Lost as lost:
                how, why = failures.how(lost, self.where), failures.why(lost)
                if lost.sent and not idempotent:
                    raise OutcomeUnknown(
                        f"{how} during a write, which is not retried because repeating it "
                        "could apply it twice; it may or may not have been applied "
                        f"({failures.describe_connect_error(lost.cause)})"
                    ) from lost.cause
                sent = sent or (write and lost.sent)
                now = loop.time()
                if seconds and limit is None:
                    limit = (lost.started or now) + 2 * seconds - GRACE
                if lost_once or not retry:
                    twice = f" twice, {RETRY_DELAY:g} s apart" if lost_once else ""
                    problem = f"lost the connection to {self.where}{twice}"
                    raise _gave_up(problem, sent, why) from lost.cause
                if limit is not None and limit - now <= RETRY_DELAY:
                    problem = f"{how}, too late in the call to retry within its bound"
                    raise _gave_up(problem, sent, why) from lost.cause
                lost_once = True
                self.counters.retries += 1
                log.warning("%s (%s); retrying once in %g s", how, why, RETRY_DELAY)
                await asyncio.sleep(RETRY_DELAY)
            except failures.DRIVER as exc:
                self.counters.count(exc)
                if store and isinstance(exc, CONFLICTS) and conflicts < CONFLICT_RETRIES:
                    conflicts += 1
                    self.counters.conflict_retries += 1
                    log.warning(
                        "%s; retrying (%d of %d)", driver_error(exc), conflicts, CONFLICT_RETRIES
                    )
                    await asyncio.sleep(random.uniform(0.01, 0.05) * 2**conflicts)  # noqa: S311
                    continue
                if store:
                    raise driver_error(exc) from exc
                raise


def _gave_up(problem: str, sent: bool, why: str) -> DatabaseUnavailable:
    if sent:
        return OutcomeUnknown(
            f"{problem} after the write reached the server: it may or may not have been "
            "applied. Calling again with the same ids (the turn_id, message_id, task_id or "
            f"conversation_id given) returns what was stored, never a second copy ({why})"
        )
    return DatabaseUnavailable(f"{problem}; the server is down, restarting or unreachable ({why})")


__all__ = ["CONFLICT_RETRIES", "RETRY_DELAY", "Retrier"]
