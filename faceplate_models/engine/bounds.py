"""The server's time bounds of a session, in one place: each a number of seconds (0: none),
rendered in whole milliseconds, a fraction of one rounded up (never down to 0, which
PostgreSQL reads as no bound), as startup parameters, as a session's `SET`s, as `SET LOCAL`
and as `ALTER ROLE`;
and how both ends of a connection find a dead peer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

# Dead peers are found by the kernel, at both ends: probes after 5 s without traffic, every
# 2 s, three unanswered ones end the connection; unacknowledged data ends it after 10 s.
# The client sets them on its socket; the server is told them too, since its own default
# waits two hours, and until then a partitioned client's transaction keeps its row locks.
KEEPALIVE_IDLE: Final = 5
KEEPALIVE_INTERVAL: Final = 2
KEEPALIVE_COUNT: Final = 3
TCP_USER_TIMEOUT_MS: Final = 10_000
#: The server's settings for the same: a dead client's backend ends within about 11 s.
DEAD_PEER: Final = {
    "tcp_keepalives_idle": KEEPALIVE_IDLE,
    "tcp_keepalives_interval": KEEPALIVE_INTERVAL,
    "tcp_keepalives_count": KEEPALIVE_COUNT,
    "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
}


def milliseconds(seconds: float) -> int:
    """`seconds` in whole milliseconds, rounded up: 0.0004 s is 1 ms, not 0 ("no bound")."""
    if seconds <= 0:
        return 0
    return max(1, math.ceil(round(seconds * 1000, 6)))


@dataclass(frozen=True)
class TimeBounds:
    """How long a statement may run, wait for a lock, and a transaction sit idle."""

    statement: float = 0
    lock: float = 0
    idle_in_transaction: float = 0

    def settings(self) -> dict[str, int]:
        """PostgreSQL's settings for the bounds that are set, in milliseconds."""
        named = {
            "statement_timeout": self.statement,
            "lock_timeout": self.lock,
            "idle_in_transaction_session_timeout": self.idle_in_transaction,
        }
        return {name: milliseconds(seconds) for name, seconds in named.items() if seconds > 0}

    def session(self) -> dict[str, int]:
        """What a session is given before its first statement: the bounds, and the dead-peer
        settings."""
        return {**self.settings(), **DEAD_PEER}

    def startup_parameters(self) -> dict[str, str]:
        """As a direct connection's startup parameters."""
        return {name: str(value) for name, value in self.session().items()}

    def set_session(self, search_path: str) -> str:
        """As statements a new connection runs first, with its `search_path`: for a session
        pooler, which refuses startup parameters it does not know (PgBouncer, in every pool
        mode); a reset (RESET ALL) undoes them, so it runs them again."""
        settings = {"search_path": search_path, **self.session()}
        return ";".join(f"SET {name} = {value}" for name, value in settings.items())

    def set_local(self) -> str:
        """As statements for the start of a transaction ("" when none is set)."""
        return ";".join(f"SET LOCAL {name} = {value}" for name, value in self.settings().items())

    def alter_role(self, role: str) -> list[str]:
        """As a role's defaults (`role` quoted already): what a transaction pooler cannot send."""
        return [f"ALTER ROLE {role} SET {name} = {value}" for name, value in self.session().items()]


__all__ = [
    "DEAD_PEER",
    "KEEPALIVE_COUNT",
    "KEEPALIVE_IDLE",
    "KEEPALIVE_INTERVAL",
    "TCP_USER_TIMEOUT_MS",
    "TimeBounds",
    "milliseconds",
]
