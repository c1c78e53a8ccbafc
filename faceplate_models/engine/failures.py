"""What a failure means: a connection lost (and whether its work may have reached the server),
a connection that cannot be opened, and the words an operator acts on.

A connection died under us when it was refused, reset, had no socket file, timed out while
connecting (all `OSError`), closed mid-operation (class 08), or the server terminated the
backend or is shutting down (57P01-57P03); a statement timeout (57014) is not a loss.
A connection to a server that answers read-only (25006: a standby, or a primary demoted in
a failover) is on the wrong server: it is closed, as a lost one is, but nothing it was sent
was applied, and a fresh connection may reach the new primary.
"""

from __future__ import annotations

import ssl
from typing import Final

import asyncpg
from tortoise.exceptions import BaseORMException

from faceplate_models.engine.deadline import GRACE
from faceplate_models.engine.executor import Connection
from faceplate_models.errors import ConfigError, DatabaseUnavailable, FaceplateError

LOSS: Final = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)
#: Refusals while connecting that may clear up by themselves a second later (no server of a
#: multi-host URL is the one `target_session_attrs` wants: a failover in progress).
TRANSIENT_CONNECT: Final = (
    *LOSS,
    asyncpg.TooManyConnectionsError,
    asyncpg.TargetServerAttributeNotMatched,
)
# Refusals that a second attempt would only repeat: the address is right, the rest is not.
_FATAL_CONNECT: Final = (
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.ClientConfigurationError,
    ssl.SSLError,
)
#: Every error the driver raises about a statement or the protocol.
DRIVER: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


class Lost(Exception):
    """A connection failed: `sent` says whether work may have reached the server, `silent`
    whether the client's deadline closed it, `started` when the work had its connection."""

    def __init__(
        self,
        cause: BaseException,
        *,
        sent: bool,
        silent: bool = False,
        started: float | None = None,
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.sent = sent
        self.silent = silent
        self.started = started


def closed(conn: Connection | asyncpg.Connection) -> bool:
    try:
        return conn.is_closed()
    except asyncpg.InterfaceError:
        return True  # the pool detaches a proxy whose connection closed


def from_loss(exc: BaseException) -> bool:
    """Whether `exc` is a lost connection, or was raised while handling one.

    A backend's FATAL error reaches asyncpg before the socket closes, so a ROLLBACK sent
    in that instant fails with "another operation is in progress", hiding the real cause.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, LOSS):
            return True
        seen = seen.__context__
    return False


def killed(exc: BaseException, conn: Connection | asyncpg.Connection) -> bool:
    """Whether `exc` came from the connection dying (a cancelled task's did not, nor did one
    of the package's own errors, raised on purpose, unless the connection closed under it)."""
    if not isinstance(exc, Exception):
        return False
    return closed(conn) or (not isinstance(exc, FaceplateError) and from_loss(exc))


def read_only(exc: BaseException) -> bool:
    """Whether the server refused the work because it is read-only (SQLSTATE 25006), as the
    driver's error or the cause of Tortoise's."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, asyncpg.ReadOnlySQLTransactionError):
            return True
        seen = seen.__cause__
    return False


def describe_connect_error(exc: BaseException) -> str:
    """Say why a connection failed, in words an operator can act on."""
    if isinstance(exc, BaseORMException) and exc.__cause__ is not None:
        exc = exc.__cause__  # Tortoise wraps the driver's error; the driver's says more
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS certificate verification failed: {exc.verify_message} (check sslrootcert, "
            "and that the host name in the URL is one the certificate names)"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc} (check sslmode, sslcert and sslkey)"
    if isinstance(exc, TimeoutError):
        return "no answer (the server or a firewall is silently dropping the connection)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running and listening there?)"
    if isinstance(exc, FileNotFoundError):
        return "no socket there (is PostgreSQL running?)"
    if isinstance(exc, ConnectionError) and "rejected SSL upgrade" in str(exc):
        return "the server does not offer TLS, which the sslmode requires"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "authentication failed (InvalidPasswordError; check the user and password)"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return f"not allowed to connect: {exc} (check the user, and pg_hba.conf)"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "the database does not exist (create it, or fix the database name)"
    if read_only(exc):
        return (
            "the server is read-only: a standby, or a primary being demoted in a failover "
            "(a URL naming every server, with target_session_attrs=read-write, follows it)"
        )
    if isinstance(exc, asyncpg.TargetServerAttributeNotMatched):
        return f"no server is the one target_session_attrs asks for ({exc}): a failover?"
    return f"{type(exc).__name__}: {exc}"


def fatal(exc: BaseException) -> bool:
    """Whether a failed connect would fail the same way a second later."""
    seen: BaseException | None = exc
    while seen is not None:  # Tortoise wraps a missing database in DBConnectionError
        if isinstance(seen, _FATAL_CONNECT) or "rejected SSL upgrade" in str(seen):
            return True
        seen = seen.__cause__
    return False


def rejected_parameter(exc: BaseException) -> bool:
    return isinstance(exc, asyncpg.ProtocolViolationError) and "startup parameter" in str(exc)


def connect_error(exc: BaseException, where: str) -> FaceplateError:
    """The package's error for a connection to `where` that could not be opened."""
    if rejected_parameter(exc):
        return ConfigError(
            f"{where} refused a startup parameter ({exc}): it is a pooler. For a "
            "transaction pooler set FACEPLATE_DB_POOL_MODE=transaction (and point "
            "FACEPLATE_MIGRATION_DATABASE_URL at a direct connection for migrations); for "
            "a session pooler, FACEPLATE_DB_POOL_MODE=session_pooler"
        )
    return DatabaseUnavailable(f"cannot connect to {where}: {describe_connect_error(exc)}")


def why(lost: Lost) -> str:
    """What became of a lost connection, in words an operator acts on."""
    if lost.silent:
        return f"no answer within the statement timeout and {GRACE:g} s"
    return describe_connect_error(lost.cause)


def how(lost: Lost, where: str) -> str:
    """How the connection to `where` was lost."""
    if lost.silent:
        return (
            f"the connection to {where} went silent (no answer within the statement "
            f"timeout and {GRACE:g} s: a network partition or a failover?) and was closed"
        )
    return f"lost the connection to {where}"


def unreachable(lost: Lost, where: str) -> DatabaseUnavailable:
    """The error of a connection that could not be had, for a caller not retrying it."""
    return DatabaseUnavailable(f"cannot reach {where}: {describe_connect_error(lost.cause)}")


__all__ = [
    "DRIVER",
    "LOSS",
    "TRANSIENT_CONNECT",
    "Lost",
    "closed",
    "connect_error",
    "describe_connect_error",
    "fatal",
    "from_loss",
    "how",
    "killed",
    "read_only",
    "rejected_parameter",
    "unreachable",
    "why",
]
