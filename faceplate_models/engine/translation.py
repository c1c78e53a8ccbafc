"""How a driver error becomes the package's: a server error of a kind a caller acts on gets
its class, every one keeps its SQLSTATE and the driver's exception as `__cause__`, and the
message is the package's own (the server's text, with constraint names and key values,
stays in `__cause__`, for the log)."""

from __future__ import annotations

from typing import Final

import asyncpg

from faceplate_models.errors import (
    Conflict,
    DatabaseError,
    DeadlockDetected,
    FaceplateError,
    LockTimeout,
    QueryCanceled,
    SerializationFailure,
    StatementTimeout,
)

#: Conflicts between transactions that the store's repeatable work retries.
CONFLICTS: Final = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
KINDS: Final[dict[str, tuple[type[DatabaseError], str]]] = {
    "40001": (
        SerializationFailure,
        "a concurrent transaction changed what this one read (serialization failure); "
        "run the whole transaction again",
    ),
    "40P01": (
        DeadlockDetected,
        "the server broke a deadlock by aborting this transaction; run it again",
    ),
    "55P03": (
        LockTimeout,
        "waited longer than the lock timeout (FACEPLATE_DB_LOCK_TIMEOUT) for a row or table "
        "another session holds: look for a long transaction holding it",
    ),
}


# What a broken integrity rule means, in the package's words: the server's own message
# names constraints and dumps keys (a user's email, say), so it stays in `__cause__`.
_INTEGRITY: Final = {
    "23505": "it would duplicate a value that must be unique",
    "23503": "it refers to a row that does not exist (or that another request just deleted)",
    "23502": "it leaves out a value the schema requires",
    "23514": "it breaks a check of the schema",
}


def driver_error(exc: BaseException) -> FaceplateError:
    """The package's error for a driver error that is not about the connection.

    The message is the package's own: the server's text (constraint names, key values) stays
    in `__cause__`, for the log, and never reaches a caller that shows messages to users.
    """
    state: str | None = getattr(exc, "sqlstate", None)
    if isinstance(exc, asyncpg.IntegrityConstraintViolationError):
        why = _INTEGRITY.get(state or "", "it breaks a rule of the schema")
        return Conflict(f"the database refused the write: {why}", sqlstate=state)
    if state in KINDS:
        kind, words = KINDS[state]
        return kind(words, sqlstate=state)
    if isinstance(exc, asyncpg.QueryCanceledError):
        if "statement timeout" in str(exc):
            return StatementTimeout(
                "the statement ran longer than the statement timeout "
                "(FACEPLATE_DB_STATEMENT_TIMEOUT) and the server cancelled it",
                sqlstate=state,
            )
        return QueryCanceled(
            "the server cancelled the statement (an administrator's pg_cancel_backend, or a "
            "shutdown)",
            sqlstate=state,
        )
    return DatabaseError(
        f"the database failed the statement ({type(exc).__name__}, SQLSTATE {state}); the "
        "server's own message is this error's __cause__",
        sqlstate=state,
    )


def lock_timeout() -> LockTimeout:
    """The error of a lock wait the client ended itself (see the client's `lock_wait`)."""
    return LockTimeout(KINDS["55P03"][1], sqlstate="55P03")


def is_statement_timeout(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.QueryCanceledError) and "statement timeout" in str(exc)


__all__ = ["CONFLICTS", "KINDS", "driver_error", "is_statement_timeout", "lock_timeout"]
