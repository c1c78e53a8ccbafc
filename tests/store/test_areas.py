"""The user-scoped store on a real server: behaviour, isolation, validation, pagination, scale."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from tortoise import connections

import faceplate_models as fm
from faceplate_models import store
from faceplate_models.errors import Conflict, NotFound, ValidationError
from faceplate_models.formats import shape
from faceplate_models.ids import uuid7
from faceplate_models.store import (
    _cursors as cursors,
    _rows as rows,
    conversations,
    export,
    feedback,
    history,
    imports,
    messages,
    organise,
    replies,
    retention,
    search,
    shares,
    tasks,
    usage,
)
from faceplate_models.validation import MAX_PAGE_BYTES

pytestmark = pytest.mark.usefixtures("faceplate_db")

CALL = {"id": "call_1", "type": "function", "function": {"name": "todo.add", "arguments": "{}"}}


async def counts() -> dict[str, int]:
    rows = await connections.get("default").execute_query_dict(
        """SELECT (SELECT count(*) FROM faceplate.users) AS users,
                  (SELECT count(*) FROM faceplate.conversations) AS conversations,
                  (SELECT count(*) FROM faceplate.messages) AS messages,
                  (SELECT count(*) FROM faceplate.mcp_configs) AS mcp_configs,
                  (SELECT count(*) FROM faceplate.tasks) AS tasks"""
    )
    return dict(rows[0])


async def user(n: int = 0) -> fm.User:
    return await fm.get_or_create_user(subject_id=f"sub|{n}", email=f"user{n}@example.com")


# --- users --------------------------------------------------------------------------------


async def test_get_or_create_user_normalises_and_returns_the_same_user() -> None:
    first = await fm.get_or_create_user(subject_id="auth0|1", email="  Ada@Example.COM ")
    assert first.email == "ada@example.com"
    again = await fm.get_or_create_user(subject_id="auth0|1", email="ada@example.com")
    assert again.id == first.id and again.created_at == first.created_at
    moved = await fm.get_or_create_user(subject_id="auth0|1", email="ada@new.example")
    assert moved.id == first.id and moved.email == "ada@new.example"
    assert (await fm.get_user(user_id=first.id)).email == "ada@new.example"


async def test_email_of_another_subject_is_a_conflict() -> None:
    await fm.get_or_create_user(subject_id="a", email="ada@example.com")
    with pytest.raises(Conflict, match="already belongs"):
        await fm.get_or_create_user(subject_id="b", email="ADA@example.com")
    assert (await counts())["users"] == 1


async def test_twenty_racing_logins_create_one_user() -> None:
    users = await asyncio.gather(
        *(
            fm.get_or_create_user(subject_id="auth0|race", email="race@example.com")
            for _ in range(20)
        )
    )
    assert len({u.id for u in users}) == 1
    assert (await counts())["users"] == 1


async def test_delete_user_cascades_to_everything_they_own() -> None:
    ada, bob = await user(1), await user(2)
    for owner in (ada, bob):
        chat = await fm.create_conversation(user_id=owner.id)
        await fm.append_message(
            user_id=owner.id, conversation_id=chat.id, role="user", content="hi"
        )
        await fm.save_mcp_config(user_id=owner.id, name="todo", config={})
        await fm.add_task(user_id=owner.id, title="t")
    erased = await fm.delete_user(user_id=ada.id)
    assert {kind: n for kind, n in erased.items() if n} == {
        "users": 1,
        "conversations": 1,
        "messages": 1,
        "mcp_configs": 1,
        "tasks": 1,
    }
    assert await counts() == {
        "users": 1,
        "conversations": 1,
        "messages": 1,
        "mcp_configs": 1,
        "tasks": 1,
    }
    with pytest.raises(NotFound):
        await fm.get_user(user_id=ada.id)
    with pytest.raises(NotFound):
        await fm.delete_user(user_id=ada.id)


# --- conversations and messages -------------------------------------------------------------


async def test_a_chat_turn_with_an_mcp_tool_call() -> None:
    ada = await user()
    chat = await fm.create_conversation(user_id=ada.id, title="Plans")
    created = chat.updated_at
    await fm.append_message(
        user_id=ada.id, conversation_id=chat.id, role="user", content="What's open?"
    )
    call = await fm.append_message(
        user_id=ada.id, conversation_id=chat.id, role=fm.Role.ASSISTANT, tool_calls=[CALL]
    )
    await fm.append_message(
        user_id=ada.id,
        conversation_id=chat.id,
        role="tool",
        tool_results=[{"tool_call_id": "call_1", "content": ["Renew passport"]}],
    )
    await fm.append_message(
        user_id=ada.id, conversation_id=chat.id, role="assistant", content="One."
    )
    page = await fm.get_history(user_id=ada.id, conversation_id=chat.id)
    assert [m.role for m in page.items] == ["user", "assistant", "tool", "assistant"]
    assert page.items[1].tool_calls == [CALL] and page.items[1].content is None
    assert page.items[2].tool_results == [{"tool_call_id": "call_1", "content": ["Renew passport"]}]
    assert page.next_cursor is None
    assert call.id.version == 7 and call.created_at.tzinfo is not None
    fetched = await fm.get_conversation(user_id=ada.id, conversation_id=chat.id)
    assert fetched.updated_at > created
    assert fetched.updated_at == page.items[-1].created_at


async def test_conversations_are_listed_by_latest_activity() -> None:
    ada = await user()
    chats = [await fm.create_conversation(user_id=ada.id, title=f"c{i}") for i in range(5)]
    await fm.append_message(
        user_id=ada.id, conversation_id=chats[1].id, role="user", content="bump"
    )
    page = await fm.list_conversations(user_id=ada.id, limit=3)
    assert [c.title for c in page.items] == ["c1", "c4", "c3"]
    rest = await fm.list_conversations(user_id=ada.id, limit=3, cursor=page.next_cursor)
    assert [c.title for c in rest.items] == ["c2", "c0"] and rest.next_cursor is None


async def test_listings_end_at_their_byte_budget_and_go_on() -> None:
    """Tasks with a million-character description, conversations with a long system prompt:
    a page stops once it passes MAX_PAGE_BYTES, and its cursor reaches every row once."""
    ada = await user(1)
    for i in range(20):
        await fm.add_task(user_id=ada.id, title=f"t{i:02d}", description="d" * 1_000_000)
        await fm.create_conversation(
            user_id=ada.id, title=f"c{i:02d}", settings={"system_prompt": "p" * 100_000}
        )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        tasks_page = await fm.list_tasks(user_id=ada.id, limit=20, cursor=cursor)
        pages += 1
        seen += [t.title for t in tasks_page.items]
        assert sum(len(t.description or "") for t in tasks_page.items) <= MAX_PAGE_BYTES + 1e6
        if (cursor := tasks_page.next_cursor) is None:
            break
    assert seen == [f"t{i:02d}" for i in range(20)] and pages == 3
    big = [
        await fm.create_conversation(
            user_id=ada.id, settings={"system_prompt": "p" * 100_000}, metadata={"m": "x" * 900}
        )
        for _ in range(80)
    ]
    first = await fm.list_conversations(user_id=ada.id, limit=100)
    assert 70 < len(first.items) < 100 and first.next_cursor is not None
    rest = await fm.list_conversations(user_id=ada.id, limit=100, cursor=first.next_cursor)
    listed = [c.id for c in first.items + rest.items]
    assert len(listed) == len(set(listed)) == 100 and rest.next_cursor is None
    assert {c.id for c in big} <= set(listed)


async def test_rename_and_delete_conversation() -> None:
    ada = await user()
    chat = await fm.create_conversation(user_id=ada.id)
    assert chat.title is None
    renamed = await fm.rename_conversation(user_id=ada.id, conversation_id=chat.id, title=" Trip ")
    assert renamed.title == "Trip" and renamed.updated_at > chat.updated_at
    await fm.append_message(user_id=ada.id, conversation_id=chat.id, role="user", content="x")
    await fm.delete_conversation(user_id=ada.id, conversation_id=chat.id)
    assert (await counts())["messages"] == 0
    with pytest.raises(NotFound):
        await fm.get_conversation(user_id=ada.id, conversation_id=chat.id)


async def test_history_of_an_empty_conversation_and_of_a_missing_one() -> None:
    ada = await user()
    chat = await fm.create_conversation(user_id=ada.id)
    assert await fm.get_history(user_id=ada.id, conversation_id=chat.id) == store.HistoryPage(
        [], None
    )
    with pytest.raises(NotFound):
        await fm.get_history(user_id=ada.id, conversation_id=uuid7())


async def test_paging_a_thousand_messages_back_while_new_ones_arrive() -> None:
    ada = await user()
    chat = await fm.create_conversation(user_id=ada.id)
    await seed_messages(chat.id, 1000)
    original = {
        r["id"]
        for r in await connections.get("default").execute_query_dict(
            "SELECT id FROM faceplate.messages WHERE conversation_id = $1", [chat.id]
        )
    }
    stop = asyncio.Event()

    async def keep_appending() -> int:
        n = 0
        while not stop.is_set():
            await fm.append_message(
                user_id=ada.id, conversation_id=chat.id, role="user", content=f"new {n}"
            )
            n += 1
            await asyncio.sleep(0)
        return n

    writers = [asyncio.create_task(keep_appending()) for _ in range(3)]
    seen: list[uuid.UUID] = []
    pages = 0
    before: str | None = None
    try:
        while True:
            page = await fm.get_history(
                user_id=ada.id, conversation_id=chat.id, limit=37, before=before
            )
            ordered = [(m.created_at, m.id) for m in page.items]
            assert ordered == sorted(ordered)
            seen = [m.id for m in page.items] + seen
            pages += 1
            if page.next_cursor is None:
                break
            before = page.next_cursor
    finally:
        stop.set()
        appended = sum(await asyncio.gather(*writers))
    assert appended > 0
    assert len(seen) == len(set(seen)), "a message was returned twice"
    assert original <= set(seen), "a message was skipped"
    assert pages >= 1000 // 37


async def seed_messages(conversation_id: uuid.UUID, n: int) -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        (
            uuid7(),
            conversation_id,
            "assistant" if i % 2 else "user",
            f"m{i}",
            None,
            None,
            start + timedelta(milliseconds=i // 3),
        )  # shared timestamps exercise the id tie-break
        for i in range(n)
    ]
    async with connections.get("default").acquire_connection() as conn:
        await conn.executemany(
            """INSERT INTO faceplate.messages (id, conversation_id, role, content, tool_calls,
               tool_results, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            rows,
        )


# --- MCP configs and tasks ------------------------------------------------------------------


async def test_save_mcp_config_creates_or_replaces_by_name() -> None:
    ada = await user()
    first = await fm.save_mcp_config(user_id=ada.id, name="todo", config={"url": "a"})
    second = await fm.save_mcp_config(
        user_id=ada.id, name="todo", config={"url": "b"}, enabled=False
    )
    await fm.save_mcp_config(user_id=ada.id, name="calendar", config={"url": "c"})
    assert second.id == first.id and second.config == {"url": "b"} and not second.enabled
    assert [c.name for c in await fm.list_mcp_configs(user_id=ada.id)] == ["calendar", "todo"]
    assert [c.name for c in await fm.list_mcp_configs(user_id=ada.id, enabled=True)] == ["calendar"]
    assert [c.name for c in await fm.list_mcp_configs(user_id=ada.id, enabled=False)] == ["todo"]
    await fm.delete_mcp_config(user_id=ada.id, name="todo")
    assert [c.name for c in await fm.list_mcp_configs(user_id=ada.id)] == ["calendar"]


async def test_task_lifecycle() -> None:
    ada = await user()
    task = await fm.add_task(user_id=ada.id, title="Renew passport", description="before May")
    assert not task.completed
    edited = await fm.update_task(user_id=ada.id, task_id=task.id, title="Renew the passport")
    assert (edited.title, edited.description) == ("Renew the passport", "before May")
    cleared = await fm.update_task(user_id=ada.id, task_id=task.id, description=None)
    assert cleared.description is None
    done = await fm.complete_task(user_id=ada.id, task_id=task.id)
    assert done.completed and (await fm.complete_task(user_id=ada.id, task_id=task.id)).completed
    reopened = await fm.update_task(user_id=ada.id, task_id=task.id, completed=False)
    assert not reopened.completed
    await fm.delete_task(user_id=ada.id, task_id=task.id)
    assert (await fm.list_tasks(user_id=ada.id)).items == []


async def test_tasks_filter_by_state_in_creation_order() -> None:
    ada = await user()
    tasks = [await fm.add_task(user_id=ada.id, title=f"t{i}") for i in range(6)]
    for t in tasks[::2]:
        await fm.complete_task(user_id=ada.id, task_id=t.id)
    assert [t.title for t in (await fm.list_tasks(user_id=ada.id)).items] == [
        f"t{i}" for i in range(6)
    ]
    assert [t.title for t in (await fm.list_tasks(user_id=ada.id, completed=True)).items] == [
        "t0",
        "t2",
        "t4",
    ]
    page = await fm.list_tasks(user_id=ada.id, completed=False, limit=2)
    assert [t.title for t in page.items] == ["t1", "t3"]
    rest = await fm.list_tasks(user_id=ada.id, completed=False, limit=2, cursor=page.next_cursor)
    assert [t.title for t in rest.items] == ["t5"] and rest.next_cursor is None


# --- isolation ---------------------------------------------------------------------------


def isolation_calls(a: dict[str, Any]) -> dict[str, Callable[[uuid.UUID], Awaitable[Any]]]:
    """Every store function that takes a row of user A, called by user B."""
    chat, task = a["chat"].id, a["task"].id
    return {
        "get_conversation": lambda b: fm.get_conversation(user_id=b, conversation_id=chat),
        "rename_conversation": lambda b: fm.rename_conversation(
            user_id=b, conversation_id=chat, title="x"
        ),
        "delete_conversation": lambda b: fm.delete_conversation(user_id=b, conversation_id=chat),
        "append_message": lambda b: fm.append_message(
            user_id=b, conversation_id=chat, role="user", content="x"
        ),
        "get_history": lambda b: fm.get_history(user_id=b, conversation_id=chat),
        "delete_mcp_config": lambda b: fm.delete_mcp_config(user_id=b, name="todo"),
        "update_task": lambda b: fm.update_task(user_id=b, task_id=task, title="x"),
        "complete_task": lambda b: fm.complete_task(user_id=b, task_id=task),
        "delete_task": lambda b: fm.delete_task(user_id=b, task_id=task),
    }


async def a_world() -> dict[str, Any]:
    ada = await user(1)
    chat = await fm.create_conversation(user_id=ada.id, title="secret")
    for i in range(3):
        await fm.append_message(
            user_id=ada.id, conversation_id=chat.id, role="user", content=f"m{i}"
        )
    cursor = (await fm.get_history(user_id=ada.id, conversation_id=chat.id, limit=1)).next_cursor
    await fm.save_mcp_config(user_id=ada.id, name="todo", config={"token": "ada's"})
    task = await fm.add_task(user_id=ada.id, title="secret task")
    return {"ada": ada, "chat": chat, "task": task, "cursor": cursor}


@pytest.mark.parametrize(
    "name", list(isolation_calls({"chat": fm.User(), "task": fm.User()}).keys())
)
async def test_another_users_rows_are_not_found(name: str) -> None:
    a = await a_world()
    bob = await user(2)
    before = await counts()
    with pytest.raises(NotFound) as caught:
        await isolation_calls(a)[name](bob.id)
    assert "not found" in str(caught.value)
    assert await counts() == before
    missing = str(caught.value).replace(str(a["chat"].id), "X").replace(str(a["task"].id), "X")
    # Exactly as if it did not exist: a random id gives the same message.
    assert "secret" not in missing


async def test_listings_show_nothing_of_another_user() -> None:
    await a_world()
    bob = await user(2)
    assert (await fm.list_conversations(user_id=bob.id)).items == []
    assert (await fm.list_tasks(user_id=bob.id)).items == []
    assert await fm.list_mcp_configs(user_id=bob.id) == []


async def test_creating_for_a_missing_user_is_not_found() -> None:
    ghost = uuid7()
    for call in (
        fm.create_conversation(user_id=ghost),
        fm.add_task(user_id=ghost, title="t"),
        fm.save_mcp_config(user_id=ghost, name="n", config={}),
    ):
        with pytest.raises(NotFound, match="user"):
            await call
    assert (await counts())["conversations"] == 0


# --- validation ------------------------------------------------------------------------------


def bad_calls(uid: uuid.UUID, cid: uuid.UUID) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    def msg(**kw: Any) -> Callable[[], Awaitable[Any]]:
        return lambda: fm.append_message(user_id=uid, conversation_id=cid, **{"role": "user", **kw})

    return [
        ("user_id", lambda: fm.create_conversation(user_id="not-a-uuid")),
        ("subject_id", lambda: fm.get_or_create_user(subject_id=" ", email="a@b.co")),
        ("subject_id", lambda: fm.get_or_create_user(subject_id="x" * 256, email="a@b.co")),
        ("email", lambda: fm.get_or_create_user(subject_id="s", email="not an email")),
        ("email", lambda: fm.get_or_create_user(subject_id="s", email="a\x00@b.co")),
        ("title", lambda: fm.create_conversation(user_id=uid, title="t" * 201)),
        ("title", lambda: fm.create_conversation(user_id=uid, title="a\x00b")),
        ("content", msg(content="nul \x00 byte")),
        ("content", msg(content="lone \ud800 surrogate")),
        ("content", msg(content="x" * (store.MAX_TEXT_CHARS + 1))),
        ("content", msg(content=None)),
        ("content", msg(content=42)),
        ("role", msg(role="wizard", content="x")),
        ("tool_calls", msg(role="assistant", tool_calls=[{"type": "function"}])),
        ("tool_calls", msg(role="assistant", tool_calls={"id": "x"})),
        ("tool_calls", msg(role="user", content="x", tool_calls=[CALL])),
        ("tool_calls", msg(role="assistant", tool_calls=[{**CALL, "arguments": "\x00"}])),
        ("tool_results", msg(role="tool", tool_results=result({"x": float("nan")}))),
        ("tool_results", msg(role="tool", tool_results=result({"when": datetime.now(UTC)}))),
        ("tool_results", msg(role="tool", tool_results=result({1: "int key"}))),
        ("tool_results", msg(role="tool", tool_results=result({"k\x00": 1}))),
        ("tool_results", msg(role="tool", tool_results=result("x" * store.MAX_JSON_BYTES))),
        ("tool_results", msg(role="tool", tool_results=result(nested(store.MAX_JSON_DEPTH)))),
        ("tool_results", msg(role="tool", tool_results={"tool_call_id": "call_1"})),
        ("tool_results", msg(role="tool", tool_results=[{"tool_call_id": "", "content": 1}])),
        ("tool_results", msg(role="tool", tool_results=[{**result(1)[0], "extra": 1}])),
        ("tool_results", msg(role="tool", tool_results=[{**result(1)[0], "is_error": "yes"}])),
        ("tool_results", msg(role="tool", tool_results=result(1) * 2)),
        ("tool_results", msg(role="user", content="x", tool_results=result(1))),
        ("name", lambda: fm.save_mcp_config(user_id=uid, name="n" * 101, config={})),
        (
            "config",
            lambda: fm.save_mcp_config(user_id=uid, name="n", config=cast(Any, ["not", "an"])),
        ),
        ("config", lambda: fm.save_mcp_config(user_id=uid, name="n", config={"s": {1, 2}})),
        ("enabled", lambda: fm.save_mcp_config(user_id=uid, name="n", config={}, enabled="yes")),  # type: ignore[arg-type]
        ("title", lambda: fm.add_task(user_id=uid, title="")),
        ("title", lambda: fm.add_task(user_id=uid, title="t" * 501)),
        ("description", lambda: fm.add_task(user_id=uid, title="t", description="\x00")),
        ("completed", lambda: fm.list_tasks(user_id=uid, completed="no")),  # type: ignore[arg-type]
        ("limit", lambda: fm.list_tasks(user_id=uid, limit=0)),
        ("limit", lambda: fm.list_conversations(user_id=uid, limit=store.MAX_PAGE + 1)),
        ("cursor", lambda: fm.list_conversations(user_id=uid, cursor="garbage!")),
        ("cursor", lambda: fm.list_tasks(user_id=uid, cursor=123)),  # type: ignore[arg-type]
        ("before", lambda: fm.get_history(user_id=uid, conversation_id=cid, before="bm9wZQ")),
        ("task_id", lambda: fm.complete_task(user_id=uid, task_id=12)),  # type: ignore[arg-type]
    ]


def result(content: Any, call_id: str = "call_1") -> list[dict[str, Any]]:
    """Tool results answering `call_id` with `content`."""
    return [{"tool_call_id": call_id, "content": content}]


async def answered(user_id: Any, conversation_id: Any, content: Any) -> fm.Message:
    """Make a call, then answer it with `content`: a way to store any JSON value."""
    call = {**CALL, "id": f"call_{uuid7().hex}"}
    await fm.append_message(
        user_id=user_id, conversation_id=conversation_id, role="assistant", tool_calls=[call]
    )
    return await fm.append_message(
        user_id=user_id,
        conversation_id=conversation_id,
        role="tool",
        tool_results=result(content, str(call["id"])),
    )


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


async def test_bad_input_is_rejected_naming_the_field_and_nothing_is_written() -> None:
    ada = await user()
    chat = await fm.create_conversation(user_id=ada.id)
    before = await counts()
    for field, call in bad_calls(ada.id, chat.id):
        with pytest.raises(ValidationError) as caught:
            await call()
        assert caught.value.field == field, (field, str(caught.value))
        assert str(caught.value).startswith(f"{field}: ")
    assert await counts() == before


async def test_json_at_the_documented_limits_is_accepted() -> None:
    ada = await user()
    chat = await fm.create_conversation(user_id=ada.id)
    # The limit is the whole value's: the results list, the result and `content` take three.
    deep = nested(store.MAX_JSON_DEPTH - 3)
    big = "é" * ((store.MAX_JSON_BYTES - 1000) // 2)  # two bytes each in UTF-8
    message = await answered(ada.id, chat.id, {"deep": deep, "big": big})
    stored = (await fm.get_history(user_id=ada.id, conversation_id=chat.id)).items[-1]
    assert stored.id == message.id
    assert stored.tool_results[0]["content"] == {"deep": deep, "big": big}
    assert json.dumps(stored.tool_results)


async def test_large_integral_floats_come_back_exactly() -> None:
    # JSONB keeps numbers as decimals: 3.602879701896397e+16 would come back as the int
    # 36028797018963970, a different number, unless it is written out in full.
    ada = await user()
    chat = await fm.create_conversation(user_id=ada.id)
    values = {
        "f": 3.602879701896397e16,
        "neg": [-1e300],
        "small": 1.5e-300,
        "int": 2**80,
        "one": 1.0,
    }
    await answered(ada.id, chat.id, values)
    stored = (await fm.get_history(user_id=ada.id, conversation_id=chat.id)).items[-1]
    content = stored.tool_results[0]["content"]
    assert content == values
    assert all(type(content[k]) is type(v) for k, v in values.items())


# --- scale and plans ---------------------------------------------------------------------


async def test_ten_thousand_tasks_and_a_thousand_conversations_page_correctly() -> None:
    ada, bob = await user(1), await user(2)
    start = datetime.now(UTC) - timedelta(days=1)
    async with connections.get("default").acquire_connection() as conn:
        await conn.executemany(
            "INSERT INTO faceplate.tasks VALUES ($1, $2, NULL, $3, $4, $4, $5)",
            [
                (uuid7(), f"task {i}", i % 3 == 0, start + timedelta(seconds=i), owner.id)
                for owner in (ada, bob)
                for i in range(10_000)
            ],
        )
        await conn.executemany(
            "INSERT INTO faceplate.conversations VALUES ($1, $2, $3, $3, $4)",
            [(uuid7(), f"chat {i}", start + timedelta(seconds=i), ada.id) for i in range(1000)],
        )
    open_titles: list[str] = []
    cursor = None
    while True:
        page = await fm.list_tasks(user_id=ada.id, completed=False, limit=500, cursor=cursor)
        open_titles += [t.title for t in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert open_titles == [f"task {i}" for i in range(10_000) if i % 3]
    chats: list[str] = []
    cursor = None
    while True:
        conv_page = await fm.list_conversations(user_id=ada.id, limit=100, cursor=cursor)
        chats += [c.title or "" for c in conv_page.items]
        if (cursor := conv_page.next_cursor) is None:
            break
    assert chats == [f"chat {i}" for i in reversed(range(1000))]


async def explain(sql: str, *args: Any) -> str:
    async with connections.get("default").acquire_connection() as conn:
        plan = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    return json.dumps(json.loads(plan))


async def test_hot_queries_use_their_indexes() -> None:
    users = [await user(n) for n in range(20)]
    ada = users[0]
    start = datetime.now(UTC) - timedelta(days=1)
    # The heavy user of the seeds has a thousand conversations; the others a few each.
    chats = [(uuid7(), u.id) for u in users for _ in range(1000 if u is ada else 50)]
    async with connections.get("default").acquire_connection() as conn:
        await conn.executemany(
            "INSERT INTO faceplate.conversations VALUES ($1, NULL, $3, $3, $2)",
            [(cid, uid, start + timedelta(seconds=i)) for i, (cid, uid) in enumerate(chats)],
        )
        # The heavy user's first conversation is long (30,000 messages, one path, written
        # by the server: the one whose tree and history are read below, as a long chat's
        # are); 199 others have a hundred each.
        for first in range(0, 30_000, 3000):  # each statement well within its time bound
            await conn.execute(
                """INSERT INTO faceplate.messages (id, conversation_id, parent_id, user_id,
                       role, content, depth, segment_id, created_at)
                   SELECT md5($1::text || n)::uuid, $1::uuid,
                          CASE WHEN n > 0 THEN md5($1::text || (n - 1))::uuid END, $2,
                          CASE WHEN n % 2 = 0 THEN 'user' ELSE 'assistant' END, 'hi', n,
                          md5($1::text || 0)::uuid,
                          $3::timestamptz + n * interval '1 millisecond'
                   FROM generate_series($4::int, $4::int + 2999) n""",
                str(chats[0][0]),
                chats[0][1],
                start,
                first,
            )
        await conn.execute(
            "UPDATE faceplate.conversations SET updated_at = $2::timestamptz + interval '30 s' "
            "WHERE id = $1",
            chats[0][0],
            start,
        )
        seeded = [
            (uuid7(), cid, uid, start + timedelta(seconds=i))
            for cid, uid in chats[1:200]
            for i in range(100)
        ]
        # In batches: each message is placed by a trigger and indexed for search, and one
        # call of 20,000 would come close to the statement's time bound on a slow disk.
        for first in range(0, len(seeded), 2000):
            await conn.executemany(
                """INSERT INTO faceplate.messages (id, conversation_id, role, content, created_at)
                   VALUES ($1, $2, 'user', 'hi', $3)""",
                [(mid, cid, at) for mid, cid, _, at in seeded[first : first + 2000]],
            )
        # A year of usage for every user: three models a day, and a row per conversation-day.
        usage_columns = (
            "id, user_id, day, provider, model, answers, input_tokens, cached_input_tokens, "
            "cache_write_tokens, output_tokens, reasoning_tokens, cost, unpriced"
        )
        await conn.executemany(
            f"""INSERT INTO faceplate.usage_days ({usage_columns})
                VALUES ($1, $2, $3, 'openai', $4, 1, 1, 0, 0, 1, 0, 10, 0)""",
            [
                (uuid7(), u.id, (start - timedelta(days=d)).date(), model)
                for u in users
                for d in range(365)
                for model in ("a", "b", "c")
            ],
        )
        await conn.executemany(
            f"""INSERT INTO faceplate.usage_rollups ({usage_columns}, conversation_id)
                VALUES ($1, $2, $3, 'openai', 'a', 1, 1, 0, 0, 1, 0, 10, 0, $4)""",
            [
                (uuid7(), uid, (start - timedelta(days=i % 365)).date(), cid)
                for i, (cid, uid) in enumerate(chats)
            ],
        )
        # Every tenth message made a tool call (answered or not, it does not matter here).
        await conn.executemany(
            """INSERT INTO faceplate.tool_calls
               (id, conversation_id, user_id, call_id, message_id, created_at)
               VALUES ($1, $2, $3, 'c', $4, $5)""",
            [(uuid7(), cid, uid, mid, at) for mid, cid, uid, at in seeded[::10]],
        )
        # A price list of a few hundred models, each repriced a few times, and the holds of
        # requests in flight.
        await conn.executemany(
            """INSERT INTO faceplate.model_prices
               (id, provider, model, starts_at, input, cached_input, cache_write, output,
                created_at)
               VALUES ($1, 'openai', $2, $3, 1, 1, 1, 1, $3)""",
            [
                (uuid7(), f"model-{m}", start - timedelta(days=30 * n))
                for m in range(300)
                for n in range(4)
            ],
        )
        await conn.executemany(
            "INSERT INTO faceplate.holds VALUES ($1, $2, 10, $3, $3)",
            [(uuid7(), u.id, start + timedelta(hours=1)) for u in users for _ in range(50)],
        )
        await conn.executemany(
            "INSERT INTO faceplate.tasks VALUES ($1, 't', NULL, $2, $3, $3, $4)",
            [
                (uuid7(), i % 3 == 0, start + timedelta(seconds=i), u.id)
                for u in users
                for i in range(1000)
            ],
        )
        # A service's worth of users, so that a user's row is found by its key, as it is in
        # production, and not by reading a table of one page.
        await conn.execute(
            """INSERT INTO faceplate.users
               SELECT gen_random_uuid(), 'filler' || n || '@example.com', 'filler|' || n,
                   $1, $1
               FROM generate_series(1, 5000) n""",
            start,
        )
        # The sidebar: folders and tags, some conversations archived, pinned, trashed or
        # temporary, shares of them and ratings of their messages.
        folders = [(uuid7(), u.id, f"folder {n}") for u in users for n in range(10)]
        await conn.executemany(
            "INSERT INTO faceplate.folders VALUES ($1, $3, $4, $4, $2)",
            [(fid, uid, name, start) for fid, uid, name in folders],
        )
        tags = [(uuid7(), u.id, f"tag {n}") for u in users for n in range(10)]
        await conn.executemany(
            "INSERT INTO faceplate.tags VALUES ($1, $3, $4, $4, $2)",
            [(tid, uid, name, start) for tid, uid, name in tags],
        )
        await conn.execute(
            """UPDATE faceplate.conversations c SET
                archived_at = CASE WHEN n % 3 = 0 THEN $1::timestamptz END,
                pinned_at = CASE WHEN n % 97 = 0 THEN $1 END,
                trashed_at = CASE WHEN n % 5 = 1 THEN $1 + n * interval '1 second' END,
                temporary = n % 40 = 2,
                folder_id = CASE WHEN n % 10 = 0 THEN (
                    SELECT id FROM faceplate.folders f WHERE f.user_id = c.user_id LIMIT 1) END
            FROM (SELECT id, row_number() OVER (ORDER BY id) AS n
                  FROM faceplate.conversations) numbered WHERE numbered.id = c.id""",
            start,
        )
        await conn.executemany(
            """INSERT INTO faceplate.conversation_tags
               (id, user_id, conversation_id, tag_id, updated_at, created_at)
               SELECT $1, c.user_id, c.id, $3, c.updated_at, c.created_at
               FROM faceplate.conversations c WHERE c.id = $2""",
            [(uuid7(), cid, tags[0][0]) for cid, _ in chats[:1000]]
            + [
                (uuid7(), cid, tags[10 * (i // 50) + i % 10][0])
                for i, (cid, _) in enumerate(chats[1000:], 50)
            ],
        )
        await conn.executemany(
            """INSERT INTO faceplate.shares VALUES ($1, $2, NULL, false, $3, $3, $4, $5)""",
            [(uuid7(), uuid7().bytes, start, cid, uid) for cid, uid in chats[::4]],
        )
        await conn.executemany(
            """INSERT INTO faceplate.feedback
               VALUES ($1, $2, 1, '[]', NULL, $3, $3, $4, $5)""",
            [(uuid7(), cid, at, mid, uid) for mid, cid, uid, at in seeded[::5]],
        )
    cid = chats[0][0]
    # The first chat becomes a tree: a regenerated answer every few messages, each on its
    # branch with a tool call still open, the main line active again after each.
    at: dict[str, Any] = {"user_id": ada.id, "conversation_id": cid}
    line = (await fm.get_history(**at, limit=1000)).items
    for message in line[10:90:8]:
        call = {"id": "c", "type": "function", "function": {"name": "t", "arguments": "{}"}}
        await fm.append_message(**at, role="assistant", tool_calls=[call], after=message.id)
        await fm.append_message(**at, role="user", content="on a branch")
    await fm.switch_branch(**at, message_id=line[-1].id)
    async with connections.get("default").acquire_connection() as conn:
        await conn.execute(
            "ANALYZE faceplate.conversations, faceplate.messages, faceplate.tool_calls, "
            "faceplate.tasks, faceplate.usage_days, faceplate.usage_rollups, "
            "faceplate.model_prices, faceplate.holds, faceplate.folders, faceplate.tags, "
            "faceplate.users, "
            "faceplate.conversation_tags, faceplate.shares, faceplate.feedback"
        )
    middle, at_time, some_id = line[50].id, start + timedelta(seconds=50), uuid7()
    month_ago = (start - timedelta(days=30)).date()
    budget = MAX_PAGE_BYTES
    plans = {
        "history": await explain(history.PATH_SQL["newest", False], cid, ada.id, 101, budget),
        "history to a leaf": await explain(
            history.PATH_SQL["newest", True], cid, ada.id, 101, line[-1].id, budget
        ),
        "history before": await explain(
            history.PATH_SQL["before", False], cid, ada.id, 101, middle, budget
        ),
        "history after": await explain(
            history.PATH_SQL["after", False], cid, ada.id, 101, middle, budget
        ),
        "history after, to a leaf": await explain(
            history.PATH_SQL["after", True], cid, ada.id, 101, middle, line[-1].id, budget
        ),
        "siblings": await explain(history.SIBLINGS_SQL, cid, ada.id, middle),
        "switch_branch": await explain(history.TIPS_SQL, cid, ada.id, line[10].id),
        "delete_branch": await explain(history.DELETE_BRANCH_SQL, cid, ada.id, line[10].id),
        "tree": await explain(history.TREE_SQL, cid, ada.id, start, some_id, 1001),
        "turn": await explain(history.TURN_SQL, cid, ada.id, some_id),
        "regenerate": await explain(history.ANSWERED_SQL, cid, ada.id, middle, 10_000),
        "open calls": await explain(history.OPEN_CALLS_SQL[False], cid, ada.id),
        "open calls to a leaf": await explain(history.OPEN_CALLS_SQL[True], cid, ada.id, middle),
        "all open calls": await explain(history.ALL_OPEN_CALLS_SQL, ada.id, 101),
        **{
            f"usage by {by}": await explain(
                usage.USAGE_SQL[by], ada.id, month_ago, start.date() + timedelta(days=1)
            )
            for by in usage.GROUPINGS
        },
        "reserve's lock": await explain(rows.LOCK_USER_SQL, ada.id),
        "reserve": await explain(
            usage.RESERVE_SQL, ada.id, some_id, 10, start, start, start.date(), month_ago
        ),
        "conversations": await explain(conversations.CONVERSATIONS_SQL, ada.id, 51, budget),
        "conversations after": await explain(
            conversations.CONVERSATIONS_AFTER_SQL,
            ada.id,
            51,
            start + timedelta(seconds=500),
            some_id,
            budget,
        ),
        **{
            f"conversations, {name}": await explain(
                conversations.listing_sql(**filters), ada.id, 51, *args, budget
            )
            for name, filters, args in (
                ("archived", {"archived": True}, ()),
                ("all", {"archived": None}, ()),
                ("pinned", {"pinned": True}, ()),
                ("not pinned, after", {"pinned": False, "after": True}, (start, some_id)),
                ("in a folder", {"folder": True}, (folders[0][0],)),
                ("with a tag", {"tag": True}, (tags[0][0],)),
                ("with a tag, after", {"tag": True, "after": True}, (tags[0][0], start, some_id)),
                ("in the trash", {"trashed": True}, ()),
            )
        },
        "organise": await explain(
            organise.ORGANISE_SQL,
            cid,
            ada.id,
            True,
            True,
            False,
            None,
            False,
            None,
            False,
            None,
            start,
        ),
        "delete a tag": await explain(organise.UNTAG_ALL_SQL, str(tags[1][0]), ada.id),
        **{
            f"search{label}": await explain(
                search.SEARCH_SQL,
                ada.id,
                words,
                21,
                *position,
                search.bucket(start),
                search.token(ada.id),
                f"{search.token(ada.id)}.",
            )
            for label, words, position in (
                ("", "hi", (cursors.LATEST, some_id)),
                (", absent", "nowhere", (cursors.LATEST, some_id)),
                (", after", "hi -there", (start, some_id)),
            )
        },
        "shares": await explain(shares.SHARES_SQL, ada.id, 51),
        "shared": await explain(shares.SHARED_SQL, uuid7().bytes),
        "rate": await explain(feedback.RATE_SQL, ada.id, middle, some_id, 1, "[]", None, start),
        "feedback": await explain(
            feedback.feedback_sql(by_rating=False, after=False), start, 51, budget
        ),
        "feedback by rating, after": await explain(
            feedback.feedback_sql(by_rating=True, after=True),
            start,
            51,
            -1,
            start,
            some_id,
            budget,
        ),
        "purge the trash": await explain(retention.PURGE_SQL["trashed"], start, 100),
        "purge temporary": await explain(retention.PURGE_SQL["temporary"], start, 100),
        "purge inactive": await explain(
            retention.PURGE_INACTIVE_SQL, uuid.UUID(int=0), ada.id, start, 100
        ),
        "follow a reply": await explain(replies.FOLLOW_SQL, middle, ada.id, 0),
        # A user of the seeds' usual size: the heavy one holds half the table, which the
        # planner rightly reads whole; a user among many holds a sliver of it.
        "export conversations": await explain(
            export.CONVERSATIONS_SQL,
            users[1].id,
            start - timedelta(days=9),
            uuid.UUID(int=0),
            500,
        ),
        "export messages": await explain(
            export.MESSAGES_SQL, cid, ada.id, start - timedelta(days=9), uuid.UUID(int=0), 500
        ),
        "export tasks": await explain(
            export.TASKS_SQL, ada.id, start - timedelta(days=9), uuid.UUID(int=0), 500
        ),
        "import, known source": await explain(imports.KNOWN_SQL, ada.id, "chatgpt", "c-1"),
        "flush a reply": await explain(
            replies.FLUSH_SQL, middle, ada.id, some_id, 0, "text", 4, 30, "channel", uuid7()
        ),
        "interrupt silent replies": await explain(replies.INTERRUPT_SQL, 100),
        "tasks": await explain(tasks.tasks_sql(False, False), ada.id, 51, budget),
        "tasks by state": await explain(tasks.tasks_sql(True, False), ada.id, 51, False, budget),
        "done tasks": await explain(tasks.tasks_sql(True, False), ada.id, 51, True, budget),
        "tasks by state after": await explain(
            tasks.tasks_sql(True, True), ada.id, 51, False, at_time, some_id, budget
        ),
    }
    # Filtered by state, the planner may walk either tasks index: open tasks are two thirds
    # of the rows, so reading the creation-order index and skipping done ones is as good.
    either = ("idx_tasks_user_state", "idx_tasks_user_created")
    path = ("uidx_messages_segment_depth",)
    expected_index = {
        "history": path,
        "history to a leaf": path,
        "history before": path,
        "history after": path,
        "history after, to a leaf": path,
        "siblings": ("idx_messages_parent",),
        "switch_branch": ("idx_messages_forks",),
        "delete_branch": ("idx_messages_forks",),
        "tree": ("idx_messages_history",),
        "turn": ("idx_messages_turn",),
        "regenerate": ("messages_pkey",),
        "open calls": ("uidx_tool_calls_message_call",),
        "open calls to a leaf": ("uidx_tool_calls_message_call",),
        "all open calls": ("idx_conversations_open",),
        "usage by day": ("uidx_usage_days_key",),
        "usage by model": ("uidx_usage_days_key",),
        "usage by conversation": ("uidx_usage_rollups_key",),
        "reserve's lock": ("users_pkey",),
        "reserve": ("uidx_usage_days_key", "idx_holds_user"),
        "conversations": ("idx_conversations_listed",),
        "conversations after": ("idx_conversations_listed",),
        "conversations, archived": ("idx_conversations_archived",),
        "conversations, all": ("idx_conversations_user_activity",),
        "conversations, pinned": ("idx_conversations_pinned",),
        "conversations, not pinned, after": ("idx_conversations_listed",),
        "conversations, in a folder": ("idx_conversations_folder",),
        "conversations, with a tag": ("idx_tagged_activity",),
        "conversations, with a tag, after": ("idx_tagged_activity",),
        "conversations, in the trash": ("idx_conversations_trash",),
        "organise": ("conversations_pkey",),
        "delete a tag": ("idx_tagged_activity",),
        "search": ("idx_messages_search",),
        "search, absent": ("idx_messages_search",),
        "search, after": ("idx_conversations_search",),
        "shares": ("idx_shares_user",),
        "shared": ("uidx_shares_token",),
        "rate": ("messages_pkey",),
        "feedback": ("idx_feedback_recent",),
        "feedback by rating, after": ("idx_feedback_rating",),
        "purge the trash": ("idx_conversations_trashed",),
        "purge temporary": ("idx_conversations_temporary",),
        "purge inactive": ("idx_conversations_user_activity",),
        "follow a reply": ("messages_pkey",),
        "export conversations": ("idx_conversations_user_activity",),
        "export messages": ("idx_messages_history", "idx_messages_parent"),
        "export tasks": ("idx_tasks_user_created",),
        "import, known source": ("uid_conversatio_user_id_78c758",),
        "flush a reply": ("replies_pkey",),
        "interrupt silent replies": ("idx_messages_streaming",),
        "tasks": ("idx_tasks_user_created",),
        "tasks by state": either,
        "done tasks": either,
        "tasks by state after": either,
    }
    for name, plan in plans.items():
        assert '"Seq Scan"' not in plan, (name, plan)
        # The one sort allowed: a history page's own rows (at most limit + 1) by depth, for
        # the running sum of its byte budget.
        budget_sorts = len(re.findall(r'"Sort Key": \["\w+\.depth( DESC)?"\]', plan))
        # And a live reply's chunks, by their place: that reply's own, never a history's.
        chunk_sorts = len(re.findall(r'"Sort Key": \["\w+\.at"\]', plan))
        # And a search's, which sorts the matches of one bucket of time, or at most 201 of
        # all (`store.search`), never the user's history.
        if not name.startswith("search"):
            allowed = chunk_sorts + (budget_sorts if name.startswith("history") else 0)
            assert plan.count('"Sort"') == allowed, (
                name,
                plan,
            )
        assert any(index in plan for index in expected_index[name]), (name, plan)
    # An append is one call of the schema's function, whose statements EXPLAIN cannot show:
    # what it reads is bounded instead. After the leaf of the 30,000-message conversation,
    # after a message in its middle, and with usage to price, it touches about what an
    # append to a new conversation does (a scan of the history would be thousands).
    small = (await fm.create_conversation(user_id=ada.id)).id
    await fm.append_message(user_id=ada.id, conversation_id=small, role="user", content="x")
    touched = {
        name: await appended_buffers(conversation, ada.id, after, priced)
        for name, conversation, after, priced in (
            ("a new conversation", small, None, False),
            ("after the leaf", cid, None, False),
            ("after a message", cid, middle, False),
            ("priced", cid, None, True),
        )
    }
    print(f"\nbuffers an append touches: {touched}")
    assert max(touched.values()) < 4 * touched["a new conversation"] + 50, touched


async def appended_buffers(
    cid: uuid.UUID, uid: uuid.UUID, after: uuid.UUID | None, priced: bool
) -> int:
    """The shared buffers one append touches, its function's statements included, in a
    transaction rolled back."""
    draft: dict[str, Any] = {"role": "user", "content": "x"}
    if priced:
        draft = {
            "role": "assistant",
            "content": "x",
            "model": "model-7",
            "usage": {"output_tokens": 9},
        }
    turn = shape.drafts([draft])
    place, anchor = messages._place(after)
    args = messages._arguments(uid, cid, turn, None, place, anchor)
    async with connections.get("default").acquire_connection() as conn:
        undone = conn.transaction()
        await undone.start()
        try:
            explained = await conn.fetchval(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {messages.APPEND_SQL}", *args
            )
        finally:
            await undone.rollback()
    plan = json.loads(explained)[0]["Plan"]
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


async def test_the_functions_run_the_stores_own_statements() -> None:
    """Migration 15's functions hold their statements as text; those the store also names
    are the same text, which the EXPLAIN tests above read the plans of."""
    async with connections.get("default").acquire_connection() as conn:
        reserve = await conn.fetchval("SELECT pg_get_functiondef('faceplate.reserve'::regproc)")
        switch = await conn.fetchval(
            "SELECT pg_get_functiondef('faceplate.switch_branch'::regproc)"
        )
    assert usage.RESERVE_SQL in reserve
    assert history.TIPS_SQL in switch


async def test_fast_model_building_matches_tortoise() -> None:
    someone = await user()
    chat = await fm.create_conversation(user_id=someone.id, title="same")
    await fm.append_message(
        user_id=someone.id, conversation_id=chat.id, role="assistant", tool_calls=[CALL]
    )
    await fm.add_task(user_id=someone.id, title="t", description="d")
    await fm.save_mcp_config(user_id=someone.id, name="m", config={"a": [1]}, secrets={"k": "v"})
    for model in (fm.User, fm.Conversation, fm.Message, fm.ToolCall, fm.MCPConfig, fm.Task):
        columns = ", ".join(model._meta.fields_db_projection.values())
        async with connections.get("default").acquire_connection() as conn:
            row = await conn.fetchrow(f"SELECT {columns} FROM faceplate.{model._meta.db_table}")
        slow, fast = model._init_from_db(**row), rows.builder(model, columns)(row)
        assert vars(fast) == vars(slow), model
        assert {k: type(v) for k, v in vars(fast).items()} == {
            k: type(v) for k, v in vars(slow).items()
        }
        assert all(
            getattr(vars(fast)[k], "tzinfo", None) == getattr(v, "tzinfo", None)
            for k, v in vars(slow).items()
        )
