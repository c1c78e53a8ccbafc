"""Every error the package raises on purpose; callers catch `FaceplateError`.

An error raised for something the server reported carries its SQLSTATE as `.sqlstate` and
the driver's exception as `__cause__`; the kinds a caller acts on have classes of their own.
"""

from __future__ import annotations

import re

# A field path as the store names it: `messages[0].tool_calls`, `config`, `secrets`.
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class FaceplateError(Exception):
    """Base of every error faceplate-models raises on purpose."""

    #: The server's SQLSTATE when the server reported the error, else None.
    sqlstate: str | None = None

    def __init__(self, message: str = "", *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        if sqlstate is not None:
            self.sqlstate = sqlstate


class ConfigError(FaceplateError):
    """The configuration or the lifecycle is wrong (no URL, a bad setting, no init_db())."""


class DatabaseUnavailable(FaceplateError):
    """The database could not be reached or stopped answering."""


class PoolTimeout(DatabaseUnavailable):
    """Every pooled connection stayed busy for the whole pool timeout."""


class ConnectionLost(DatabaseUnavailable):
    """The connection dropped under a transaction or a write that is not safe to repeat."""


class OutcomeUnknown(ConnectionLost):
    """A write reached the server and its answer was lost: it may or may not have been applied."""


class DatabaseError(FaceplateError):
    """The database refused or failed a statement for a reason other than the connection."""


class SerializationFailure(DatabaseError):
    """A concurrent transaction changed what this one read (SQLSTATE 40001); retry it whole."""


class DeadlockDetected(DatabaseError):
    """The server broke a lock cycle by aborting this transaction (SQLSTATE 40P01)."""


class LockTimeout(DatabaseError):
    """A row or table lock held by another session was not released in time (SQLSTATE 55P03)."""


class QueryCanceled(DatabaseError):
    """The server cancelled the statement (SQLSTATE 57014)."""


class StatementTimeout(QueryCanceled):
    """The statement ran longer than the statement timeout and the server cancelled it."""


class SecretError(FaceplateError):
    """A stored secret did not open: its box was altered or copied from another row."""


class MigrationError(FaceplateError):
    """A migration could not be applied; the schema is as it was before."""


class ValidationError(FaceplateError, ValueError):
    """An argument was rejected before any SQL ran; nothing was written."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")

    @property
    def loc(self) -> tuple[str | int, ...]:
        """The field as a path, as pydantic and FastAPI spell one: `messages[0].content` is
        `("messages", 0, "content")`."""
        return tuple(int(index) if index else name for name, index in _PART.findall(self.field))


class NotFound(FaceplateError, LookupError):
    """The row does not exist, or it belongs to another user."""


class Conflict(FaceplateError):
    """The write would break a uniqueness rule, such as one email per user."""


class ReplyClosed(Conflict):
    """A live reply's writer was refused: the reply ended, was taken over, or its writer fell
    silent past the timeout."""


class SignInRequired(FaceplateError):
    """The user's OAuth grant for an MCP server is missing or was refused by its provider:
    the user signs in again."""


class ProviderError(FaceplateError):
    """An OAuth provider could not be reached, or answered with an error other than a
    refusal of the grant."""


class BudgetExceeded(FaceplateError):
    """A reservation would take the user past a budget's limit for its period."""


class QuotaExceeded(FaceplateError):
    """The write would take the user past a limit of the deployment (FACEPLATE_MAX_...)."""


__all__ = [
    "BudgetExceeded",
    "ConfigError",
    "Conflict",
    "ConnectionLost",
    "DatabaseError",
    "DatabaseUnavailable",
    "DeadlockDetected",
    "FaceplateError",
    "LockTimeout",
    "MigrationError",
    "NotFound",
    "OutcomeUnknown",
    "PoolTimeout",
    "ProviderError",
    "QueryCanceled",
    "QuotaExceeded",
    "ReplyClosed",
    "SecretError",
    "SerializationFailure",
    "SignInRequired",
    "StatementTimeout",
    "ValidationError",
]
