"""Every error the package raises on purpose; callers catch `FaceplateError`."""

from __future__ import annotations


class FaceplateError(Exception):
    """Base of every error faceplate-models raises on purpose."""


class ConfigError(FaceplateError):
    """The configuration is missing or malformed; nothing was connected."""


class DatabaseUnavailable(FaceplateError):
    """The database could not be reached or stopped answering."""


class PoolTimeout(DatabaseUnavailable):
    """Every pooled connection stayed busy for the whole pool timeout."""


class ConnectionLost(DatabaseUnavailable):
    """The connection dropped under a transaction or a write that is not safe to repeat."""


class DatabaseError(FaceplateError):
    """The database refused or failed a statement for a reason other than the connection."""


class MigrationError(FaceplateError):
    """A migration could not be applied; the schema is as it was before."""


class ValidationError(FaceplateError, ValueError):
    """An argument was rejected before any SQL ran; nothing was written."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NotFound(FaceplateError, LookupError):
    """The row does not exist, or it belongs to another user."""


class Conflict(FaceplateError):
    """The write would break a uniqueness rule, such as one email per user."""


__all__ = [
    "ConfigError",
    "Conflict",
    "ConnectionLost",
    "DatabaseError",
    "DatabaseUnavailable",
    "FaceplateError",
    "MigrationError",
    "NotFound",
    "PoolTimeout",
    "ValidationError",
]
