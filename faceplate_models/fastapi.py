"""FastAPI glue (the `fastapi` extra): a lifespan that opens and closes the database, and
handlers that turn the package's errors into the responses FastAPI users expect.

    from fastapi import FastAPI
    from faceplate_models.fastapi import install_error_handlers, lifespan

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)

- `NotFound`: 404, `{"detail": message}`.
- `ValidationError`: 422 in FastAPI's own shape,
  `{"detail": [{"type": "value_error", "loc": [field], "msg": problem}]}`.
- `Conflict`: 409, `{"detail": message}`.
- `DatabaseUnavailable` (and `PoolTimeout`, `ConnectionLost`): 503, `Retry-After: 5`.
- `LockTimeout`, `SerializationFailure`, `DeadlockDetected`: 503, `Retry-After: 1`; a
  retry may well succeed.

A 503's body says only that the database is busy or unavailable: the package's message,
which names hosts and databases, goes to the log, not to the client.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from faceplate_models.db import database
from faceplate_models.errors import (
    Conflict,
    DatabaseUnavailable,
    DeadlockDetected,
    LockTimeout,
    NotFound,
    SerializationFailure,
    ValidationError,
)

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait before retrying: the database unavailable, or busy.
UNAVAILABLE_RETRY_AFTER: Final = 5
BUSY_RETRY_AFTER: Final = 1


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """`init_db()` at startup (FACEPLATE_DATABASE_URL, or the embedded server in
    development) and `close_db()` at shutdown."""
    async with database():
        yield


def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError)  # noqa: S101 - registered for this class
    detail = [{"type": "value_error", "loc": [exc.field], "msg": exc.problem}]
    return JSONResponse({"detail": detail}, status_code=422)


def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


def _busy(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    unavailable = isinstance(exc, DatabaseUnavailable)
    wait = UNAVAILABLE_RETRY_AFTER if unavailable else BUSY_RETRY_AFTER
    words = "unavailable" if unavailable else "busy"
    return JSONResponse(
        {"detail": f"the database is {words}; try again in {wait} s"},
        status_code=503,
        headers={"Retry-After": str(wait)},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map the package's errors to HTTP responses (see the module's table)."""
    handlers: dict[type[Exception], Any] = {
        NotFound: _not_found,
        ValidationError: _invalid,
        Conflict: _conflict,
        DatabaseUnavailable: _busy,
        LockTimeout: _busy,
        SerializationFailure: _busy,
        DeadlockDetected: _busy,
    }
    for error, handler in handlers.items():
        app.add_exception_handler(error, handler)


__all__ = ["install_error_handlers", "lifespan"]
