"""The connection layer: Tortoise's asyncpg client with bounded waits, deadlines, one retry
after a lost connection, and the one place where driver errors become the package's. The
Tortoise config names this package as its engine (`client_class`), so the models, the store
and Aerich all go through it.

The rules (docs/operations.md, Failure behaviour, states them for operators):

- Every wait is bounded. A free pooled connection: the pool timeout, then `PoolTimeout`. A
  statement: the server cancels it after the statement timeout, and a connection silent for
  `GRACE` longer (a partition, a failover: no FIN, no RST) is closed by the client, never
  returned to the pool (`deadline`); keepalives and TCP_USER_TIMEOUT find dead idle ones in
  the background (`pool`). A row lock: the lock timeout, not retried.
- A connection lost (or gone silent) while it is being had, or while idempotent work runs
  outside a transaction, is tried once more on a fresh connection; the store's own work is
  also retried after a deadlock or a serialization failure (`retrier`, the whole rule).
  Inside a transaction nothing is retried (`transaction`).
- The store speaks only `FaceplateError`s (`translation`); the ORM keeps what stock Tortoise
  raises for a statement error, since Tortoise's code and its users catch those; only
  connection loss, pool waits and the client's deadlines become this package's errors there.
- A missing database, a bad password, a missing role, a refused TLS certificate: reported at
  once, without the retry; a server that rejects a startup parameter is a transaction
  pooler: `ConfigError`, naming the setting to use (`failures`).
- Pooled connections the server closed (an idle kill, a restart) are replaced by the pool
  when they are next acquired; no caller sees them.

The parts, each owning its state: `failures` (what a failure means), `translation`,
`deadline`, `bounds` (the server's time bounds, rendered one way, and how both ends find a
dead peer), `options` (the engine's settings), `pool` (the pool and a lease of one
connection), `gates` (how much of the pool one conversation or user may hold), `retrier`,
`transaction`, `listener` (the process's one LISTEN connection), `executor` (the contract
the store relies on) and `client` (Tortoise's hooks wired to them).
"""

from faceplate_models.engine.bounds import (
    DEAD_PEER,
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    TCP_USER_TIMEOUT_MS,
)
from faceplate_models.engine.client import FaceplateClient, current
from faceplate_models.engine.deadline import GRACE
from faceplate_models.engine.executor import Connection, Executor, Work, texts
from faceplate_models.engine.failures import connect_error, describe_connect_error
from faceplate_models.engine.pool import PoolStats
from faceplate_models.engine.retrier import CONFLICT_RETRIES, RETRY_DELAY
from faceplate_models.engine.translation import driver_error

#: What Tortoise instantiates for a connection whose engine is this package.
client_class = FaceplateClient

__all__ = [
    "CONFLICT_RETRIES",
    "DEAD_PEER",
    "GRACE",
    "KEEPALIVE_COUNT",
    "KEEPALIVE_IDLE",
    "KEEPALIVE_INTERVAL",
    "RETRY_DELAY",
    "TCP_USER_TIMEOUT_MS",
    "Connection",
    "Executor",
    "FaceplateClient",
    "PoolStats",
    "Work",
    "client_class",
    "connect_error",
    "current",
    "describe_connect_error",
    "driver_error",
    "texts",
]
