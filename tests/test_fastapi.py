"""The FastAPI glue with a real application: its lifespan, and each error's response."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from tortoise import Tortoise

import faceplate_models as fm
from faceplate_models import errors
from faceplate_models.config import DatabaseTarget
from faceplate_models.fastapi import install_error_handlers, lifespan

WHERE = 'database "secret_db" on db.internal port 5432 as user "app"'

# What each error the package raises must answer: (status, Retry-After). A new error class
# fails `test_every_error_class_has_a_deliberate_response` until it is given a line here.
EXPECTED: dict[str, tuple[int, str | None]] = {
    "NotFound": (404, None),
    "ValidationError": (422, None),
    "BudgetExceeded": (402, None),
    "QuotaExceeded": (429, None),
    "Conflict": (409, None),
    "ReplyClosed": (409, None),
    "SignInRequired": (403, None),
    "ProviderError": (502, None),
    "DatabaseUnavailable": (503, "5"),
    "PoolTimeout": (503, "5"),
    "ConnectionLost": (503, "5"),
    "OutcomeUnknown": (503, "5"),
    "LockTimeout": (503, "1"),
    "SerializationFailure": (503, "1"),
    "DeadlockDetected": (503, "1"),
    "QueryCanceled": (503, "1"),
    "StatementTimeout": (503, "1"),
    "DatabaseError": (500, None),
    "ConfigError": (500, None),
    "SecretError": (500, None),
    "MigrationError": (500, None),
    "FaceplateError": (500, None),
}


def instance(name: str) -> errors.FaceplateError:
    cls = getattr(errors, name)
    if cls is errors.ValidationError:
        return errors.ValidationError("messages[2].tool_calls", "entry 0 has no id")
    return cls(f"cannot use {WHERE}: password=hunter2", sqlstate="XX000")  # type: ignore[no-any-return]


class Turn(BaseModel):
    title: str


def application() -> FastAPI:
    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)

    @app.get("/raise/{name}")
    async def fail(name: str) -> None:
        raise instance(name)

    @app.get("/users/{subject}")
    async def user(subject: str) -> dict[str, str]:
        found = await fm.get_or_create_user(subject_id=subject, email=f"{subject}@example.com")
        return {"email": found.email}

    @app.post("/conversations/{conversation_id}/rename")
    async def rename(conversation_id: str, body: Turn, user_id: str) -> None:
        await fm.rename_conversation(
            user_id=user_id, conversation_id=conversation_id, title=body.title
        )

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


def test_every_error_class_has_a_deliberate_response() -> None:
    assert set(errors.__all__) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_each_error_becomes_the_response_fastapi_users_expect(
    client: httpx.AsyncClient, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    status, retry_after = EXPECTED[name]
    response = await client.get(f"/raise/{name}")
    assert response.status_code == status
    assert response.headers.get("retry-after") == retry_after
    body = response.json()
    if name == "ValidationError":
        assert body == {
            "detail": [
                {
                    "type": "value_error",
                    "loc": ["body", "messages", 2, "tool_calls"],
                    "msg": "entry 0 has no id",
                }
            ]
        }
    elif status >= 500:
        # The body tells the kind of trouble; hosts, databases and the rest go to the log.
        assert "db.internal" not in body["detail"] and "hunter2" not in body["detail"]
        assert "db.internal" in caplog.text
    else:
        assert body["detail"] == str(instance(name))


async def test_a_validation_error_names_where_the_value_came_from(
    client: httpx.AsyncClient,
) -> None:
    user = await fm.get_or_create_user(subject_id="loc", email="loc@example.com")
    chat = await fm.create_conversation(user_id=user.id)
    cases = {
        # A path parameter, a query parameter, and a field of the body.
        f"/conversations/not-a-uuid/rename?user_id={user.id}": ["path", "conversation_id"],
        f"/conversations/{chat.id}/rename?user_id=nobody": ["query", "user_id"],
    }
    for url, loc in cases.items():
        response = await client.post(url, json={"title": "Trip"})
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"][0] == loc[0]
    blank = await client.post(
        f"/conversations/{chat.id}/rename?user_id={user.id}", json={"title": " "}
    )
    assert blank.status_code == 422
    assert blank.json()["detail"][0]["loc"] == ["body", "title"]


def test_a_field_path_splits_as_pydantic_spells_it() -> None:
    assert errors.ValidationError("messages[10].tool_calls", "x").loc == (
        "messages",
        10,
        "tool_calls",
    )
    assert errors.ValidationError("title", "x").loc == ("title",)
