"""FastAPI glue (the `fastapi` extra): a lifespan that opens and closes the database, and
one handler that gives every `FaceplateError` a deliberate response.

    from fastapi import FastAPI
    from faceplate_models.fastapi import install_error_handlers, lifespan

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)

`RESPONSES` is the table (the most specific class wins): 404 `NotFound`, 409 `Conflict`
(a refused live-reply writer, `ReplyClosed`, too), 422 `ValidationError` in FastAPI's own
shape, 403 `SignInRequired` (an MCP server's grant, not the application's session), 502
`ProviderError`, 503 with `Retry-After` for what a retry may
cure (the database unavailable, a pool wait, a statement or lock timeout, a serialization
failure or a deadlock), and 500 for the rest (a configuration, secret, migration or other
database error). The body of a 503 or a 500 says what kind of trouble it is and nothing
more: the package's message, which may name hosts, databases and settings, goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from faceplate_models.db import database
from faceplate_models.errors import (
    BudgetExceeded,
    ConfigError,
    Conflict,
    DatabaseError,
    DatabaseUnavailable,
    DeadlockDetected,
    FaceplateError,
    LockTimeout,
    MigrationError,
    NotFound,
    OutcomeUnknown,
    ProviderError,
    QueryCanceled,
    QuotaExceeded,
    SecretError,
    SerializationFailure,
    SignInRequired,
    ValidationError,
)

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait before retrying: the database unavailable, or busy.
UNAVAILABLE_RETRY_AFTER: Final = 5
BUSY_RETRY_AFTER: Final = 1


@dataclass(frozen=True)
class Response:
    """How an error class is answered: its status, `Retry-After`, and whether the body may
    carry the error's own message (otherwise `detail` is the fixed text)."""

    status: int
    detail: str | None = None
    retry_after: int | None = None


_UNAVAILABLE = Response(
    503,
    f"the database is unavailable; try again in {UNAVAILABLE_RETRY_AFTER} s",
    UNAVAILABLE_RETRY_AFTER,
)
_BUSY = Response(503, f"the database is busy; try again in {BUSY_RETRY_AFTER} s", BUSY_RETRY_AFTER)

#: The response of each error class; a class not listed takes its nearest listed base's.
RESPONSES: Final[dict[type[FaceplateError], Response]] = {
    NotFound: Response(404),
    Conflict: Response(409),
    BudgetExceeded: Response(402),
    QuotaExceeded: Response(429),
    ValidationError: Response(422),
    # Not the application's own sign-in (a 401 would log its user out): an MCP server's.
    SignInRequired: Response(403),
    ProviderError: Response(502, "an MCP server's OAuth provider failed the request"),
    DatabaseUnavailable: _UNAVAILABLE,
    OutcomeUnknown: Response(
        503,
        "the database stopped answering after the write reached it: it may or may not have "
        f"been applied; retry it with the same id in {UNAVAILABLE_RETRY_AFTER} s",
        UNAVAILABLE_RETRY_AFTER,
    ),
    LockTimeout: _BUSY,
    SerializationFailure: _BUSY,
    DeadlockDetected: _BUSY,
    QueryCanceled: _BUSY,
    DatabaseError: Response(500, "the database failed the request"),
    ConfigError: Response(500, "the server is misconfigured"),
    SecretError: Response(500, "a stored secret could not be opened"),
    MigrationError: Response(500, "the database schema does not match the server"),
    FaceplateError: Response(500, "the request failed"),
}


def response_for(error: type[FaceplateError]) -> Response:
    """The response of `error`'s nearest class in `RESPONSES`."""
    for cls in error.__mro__:
        if cls in RESPONSES:
            return RESPONSES[cls]
    raise TypeError(f"{error.__name__} is not a FaceplateError")  # pragma: no cover


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """`init_db()` at startup (FACEPLATE_DATABASE_URL, or the embedded server in
    development) and `close_db()` at shutdown."""
    async with database():
        yield


def lifespan_with(
    *, models: Sequence[str] = ()
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """`lifespan`, registering the application's own model modules too (`init_db(models=...)`):
    `FastAPI(lifespan=lifespan_with(models=["myapp.models"]))`."""

    @asynccontextmanager
    async def with_models(app: FastAPI) -> AsyncIterator[None]:
        async with database(models=models):
            yield

    return with_models


def _where(request: Request, loc: Sequence[str | int]) -> list[str | int]:
    """FastAPI's `loc`: where the value came from (`path`, `query`, else `body`), then the
    field's path."""
    first = loc[0] if loc else ""
    source = (
        "path"
        if first in request.path_params
        else "query"
        if isinstance(first, str) and first in request.query_params
        else "body"
    )
    return [source, *loc]


def _handle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FaceplateError)  # noqa: S101 - registered for this class
    answer = response_for(type(exc))
    headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else None
    if answer.status >= 500:
        level = logging.WARNING if answer.retry_after else logging.ERROR
        log.log(level, "%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    detail: Any = answer.detail or str(exc)
    if isinstance(exc, ValidationError):
        detail = [{"type": "value_error", "loc": _where(request, exc.loc), "msg": exc.problem}]
    return JSONResponse({"detail": detail}, status_code=answer.status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every `FaceplateError` as `RESPONSES` says."""
    app.add_exception_handler(FaceplateError, _handle)


__all__ = [
    "RESPONSES",
    "Response",
    "install_error_handlers",
    "lifespan",
    "lifespan_with",
    "response_for",
]
