"""The FastAPI glue with a real application: its lifespan, and each error's response."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from tortoise import Tortoise

import faceplate_models as fm
from faceplate_models import errors
from faceplate_models.config import DatabaseTarget
from faceplate_models.fastapi import install_error_handlers, lifespan

WHERE = 'database "secret_db" on db.internal port 5432 as user "app"'


def application() -> FastAPI:
    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)
    raised = {
        "missing": errors.NotFound("task 1 not found"),
        "invalid": errors.ValidationError("title", "must not be empty"),
        "taken": errors.Conflict("email taken"),
        "down": errors.DatabaseUnavailable(f"cannot reach {WHERE}"),
        "full": errors.PoolTimeout(f"no connection to {WHERE}"),
        "locked": errors.LockTimeout("waited too long", sqlstate="55P03"),
        "raced": errors.SerializationFailure("raced", sqlstate="40001"),
    }

    @app.get("/raise/{name}")
    async def fail(name: str) -> None:
        raise raised[name]

    @app.get("/users/{subject}")
    async def user(subject: str) -> dict[str, str]:
        found = await fm.get_or_create_user(subject_id=subject, email=f"{subject}@example.com")
        return {"email": found.email}

    return app


@pytest.fixture
async def client(faceplate_db: DatabaseTarget) -> AsyncIterator[httpx.AsyncClient]:
    app = application()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    assert not Tortoise.is_inited()  # the lifespan closed the pool


async def test_the_lifespan_opens_the_database_for_the_app(client: httpx.AsyncClient) -> None:
    response = await client.get("/users/ada")
    assert response.status_code == 200 and response.json() == {"email": "ada@example.com"}


@pytest.mark.parametrize(
    ("name", "status", "retry_after"),
    [
        ("missing", 404, None),
        ("invalid", 422, None),
        ("taken", 409, None),
        ("down", 503, "5"),
        ("full", 503, "5"),
        ("locked", 503, "1"),
        ("raced", 503, "1"),
    ],
)
async def test_errors_become_the_responses_fastapi_users_expect(
    client: httpx.AsyncClient, name: str, status: int, retry_after: str | None
) -> None:
    response = await client.get(f"/raise/{name}")
    assert response.status_code == status
    assert response.headers.get("retry-after") == retry_after
    body = response.json()
    if name == "invalid":
        assert body == {
            "detail": [{"type": "value_error", "loc": ["title"], "msg": "must not be empty"}]
        }
    if status == 503:
        assert "db.internal" not in body["detail"] and "secret_db" not in body["detail"]
