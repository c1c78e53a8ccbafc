"""The store as a chat backend composes it: inside the caller's transaction, a turn as one
unit, tool calls paired with their results, cursors bound to what they page."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise.transactions import atomic, in_transaction

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget
from faceplate_models.errors import Conflict, NotFound, ValidationError
from faceplate_models.ids import uuid7
from faceplate_models.store import _cursors as cursors
from faceplate_models.validation import MAX_PAGE_BYTES

pytestmark = pytest.mark.usefixtures("faceplate_db")


def call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "t", "arguments": "{}"}}


def result(call_id: str, content: Any = "ok") -> dict[str, Any]:
    return {"tool_call_id": call_id, "content": content}


async def chat(n: int = 0) -> tuple[fm.User, fm.Conversation]:
    user = await fm.get_or_create_user(subject_id=f"turns|{n}", email=f"turns{n}@example.com")
    return user, await fm.create_conversation(user_id=user.id)


async def count(table: str) -> int:
    rows = await fm.Message._meta.db.execute_query_dict(
        f"SELECT count(*) AS n FROM faceplate.{table}"
    )
    return int(rows[0]["n"])


# --- inside the caller's transaction -----------------------------------------------------


async def test_store_calls_inside_a_transaction_commit_together() -> None:
    async with in_transaction():
        user = await fm.get_or_create_user(subject_id="tx", email="tx@example.com")
        conversation = await fm.create_conversation(user_id=user.id, title="t")
        await fm.append_message(
            user_id=user.id, conversation_id=conversation.id, role="user", content="hi"
        )
        await fm.add_task(user_id=user.id, title="t")
    assert (await fm.get_history(user_id=user.id, conversation_id=conversation.id)).items
    assert (await fm.list_tasks(user_id=user.id)).items


async def test_store_calls_inside_a_transaction_roll_back_together() -> None:
    user, conversation = await chat()

    async def failing() -> None:
        async with in_transaction():
            await fm.append_message(
                user_id=user.id, conversation_id=conversation.id, role="user", content="gone"
            )
            await fm.add_task(user_id=user.id, title="gone")
            await fm.rename_conversation(
                user_id=user.id, conversation_id=conversation.id, title="gone"
            )
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await failing()
    assert (await fm.get_history(user_id=user.id, conversation_id=conversation.id)).items == []
    assert (await fm.list_tasks(user_id=user.id)).items == []
    assert (
        await fm.get_conversation(user_id=user.id, conversation_id=conversation.id)
    ).title is None


async def test_atomic_decorator_and_errors_inside_a_transaction() -> None:
    user, conversation = await chat()

    @atomic()
    async def book(title: str) -> fm.Task:
        task = await fm.add_task(user_id=user.id, title=title)
        # A store error inside the transaction is the store's own, and a savepoint keeps
        # the transaction usable after a failed append.
        with pytest.raises(NotFound):
            await fm.append_message(
                user_id=user.id, conversation_id=uuid7(), role="user", content="x"
            )
        await fm.append_message(
            user_id=user.id, conversation_id=conversation.id, role="user", content=title
        )
        return task

    task = await book("kept")
    assert (await fm.get_task(user_id=user.id, task_id=task.id)).title == "kept"
    assert [
        m.content
        for m in (await fm.get_history(user_id=user.id, conversation_id=conversation.id)).items
    ] == ["kept"]


# --- a turn as one unit ------------------------------------------------------------------


TURN: list[dict[str, Any]] = [
    {"role": "user", "content": "What is open?"},
    {"role": "assistant", "tool_calls": [call("call_1")]},
    {"role": "tool", "tool_results": [result("call_1", ["passport"])]},
    {"role": "assistant", "content": "The passport."},
]


async def test_a_turn_is_stored_in_order_with_one_activity_update() -> None:
    user, conversation = await chat()
    stored = await fm.append_turn(user_id=user.id, conversation_id=conversation.id, messages=TURN)
    history = (await fm.get_history(user_id=user.id, conversation_id=conversation.id)).items
    assert [m.id for m in history] == [m.id for m in stored]
    assert [m.role for m in history] == ["user", "assistant", "tool", "assistant"]
    times = [m.created_at for m in history]
    assert times == sorted(times) and len(set(times)) == 4
    fresh = await fm.get_conversation(user_id=user.id, conversation_id=conversation.id)
    assert fresh.updated_at == history[-1].created_at
    assert {m.turn_id for m in history} == {None}  # the caller named no turn
    assert await fm.list_open_tool_calls(user_id=user.id) == []


async def test_a_turn_is_all_or_nothing() -> None:
    user, conversation = await chat()
    bad = [*TURN[:3], {"role": "tool", "tool_results": [result("call_missing")]}]
    before = await count("messages"), await count("tool_calls")
    with pytest.raises(ValidationError, match="call_missing") as caught:
        await fm.append_turn(user_id=user.id, conversation_id=conversation.id, messages=bad)
    assert caught.value.field == "tool_results"
    assert (await count("messages"), await count("tool_calls")) == before
    fresh = await fm.get_conversation(user_id=user.id, conversation_id=conversation.id)
    assert fresh.updated_at == conversation.updated_at


async def test_a_turn_id_makes_the_turn_idempotent_even_when_repeats_race() -> None:
    user, conversation = await chat()
    turn_id = uuid.uuid4()
    repeats = await asyncio.gather(
        *(
            fm.append_turn(
                user_id=user.id, conversation_id=conversation.id, messages=TURN, turn_id=turn_id
            )
            for _ in range(8)
        )
    )
    assert len({tuple(m.id for m in messages) for messages in repeats}) == 1
    assert {m.turn_id for m in repeats[0]} == {turn_id}
    assert await count("messages") == 4 and await count("tool_calls") == 1
    # The same turn id in another conversation is another turn.
    _, other = await chat(1)
    other_user = await fm.get_user_by_subject(subject_id="turns|1")
    await fm.append_turn(
        user_id=other_user.id, conversation_id=other.id, messages=TURN, turn_id=turn_id
    )
    assert await count("messages") == 8


async def test_a_repeated_turn_id_with_other_messages_is_a_conflict_and_get_turn_reads_it() -> None:
    user, conversation = await chat()
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": conversation.id}
    turn_id = uuid.uuid4()
    with pytest.raises(NotFound, match=str(turn_id)):
        await fm.get_turn(**at, turn_id=turn_id)
    stored = await fm.append_turn(**at, messages=TURN, turn_id=turn_id)
    assert [m.id for m in await fm.get_turn(**at, turn_id=turn_id)] == [m.id for m in stored]

    changed = [*TURN[:-1], {"role": "assistant", "content": "a different answer"}]
    with pytest.raises(Conflict, match="already stored with other messages"):
        await fm.append_turn(**at, messages=changed, turn_id=turn_id)
    # The same messages, in another JSON key order, are the same turn.
    reordered = [{key: message[key] for key in reversed(list(message))} for message in TURN]
    repeat = await fm.append_turn(**at, messages=reordered, turn_id=turn_id)
    assert [m.id for m in repeat] == [m.id for m in stored]
    assert await count("messages") == 4
    # Another user cannot read it.
    stranger, _ = await chat(1)
    with pytest.raises(NotFound):
        await fm.get_turn(user_id=stranger.id, conversation_id=conversation.id, turn_id=turn_id)


async def test_a_callers_key_makes_every_create_repeatable() -> None:
    """A uuid7 of the caller's (`conversation_id=`, `task_id=`, `message_id=`): the retry of a
    call whose outcome was unknown returns the row stored the first time, never a second;
    the same key for something else, or another user's key, is a `Conflict`."""
    ada, _ = await chat(1)
    bob, _ = await chat(2)
    key = uuid7()
    made = [await fm.create_conversation(user_id=ada.id, title="t", conversation_id=key)]
    made.append(await fm.create_conversation(user_id=ada.id, title="t", conversation_id=key))
    assert [c.id for c in made] == [key, key]
    with pytest.raises(Conflict, match="taken by another row"):
        await fm.create_conversation(user_id=bob.id, conversation_id=key)
    task_key = uuid7()
    tasks = [await fm.add_task(user_id=ada.id, title="t", task_id=task_key) for _ in range(2)]
    assert {t.id for t in tasks} == {task_key}
    with pytest.raises(Conflict):
        await fm.add_task(user_id=bob.id, title="t", task_id=task_key)

    message_key = uuid7()
    at: dict[str, Any] = {"user_id": ada.id, "conversation_id": key}
    stored = [
        await fm.append_message(**at, role="user", content="hi", message_id=message_key)
        for _ in range(2)
    ]
    assert {m.id for m in stored} == {message_key}
    with pytest.raises(Conflict, match=f"message_id {message_key}"):
        await fm.append_message(**at, role="user", content="other", message_id=message_key)
    elsewhere = await fm.create_conversation(user_id=ada.id)
    with pytest.raises(Conflict):
        await fm.append_message(
            user_id=ada.id,
            conversation_id=elsewhere.id,
            role="user",
            content="hi",
            message_id=message_key,
        )
    with pytest.raises(Conflict):
        await fm.append_message(
            user_id=bob.id,
            conversation_id=(await fm.create_conversation(user_id=bob.id)).id,
            role="user",
            content="hi",
            message_id=message_key,
        )
    assert (await count("conversations"), await count("tasks"), await count("messages")) == (
        5,
        1,
        1,
    )
    for field, call in (
        ("message_id", fm.append_message(**at, role="user", content="x", message_id=uuid.uuid4())),
        ("task_id", fm.add_task(user_id=ada.id, title="t", task_id="not a key")),
        ("conversation_id", fm.create_conversation(user_id=ada.id, conversation_id=uuid.uuid4())),
    ):
        with pytest.raises(ValidationError) as caught:
            await call
        assert caught.value.field == field


async def test_a_turn_id_holds_across_processes(faceplate_db: DatabaseTarget) -> None:
    user, conversation = await chat()
    turn_id = str(uuid.uuid4())
    script = f"""
import asyncio, json, faceplate_models as fm
async def main():
    async with fm.database({faceplate_db.url()!r}):
        stored = await fm.append_turn(user_id={str(user.id)!r},
            conversation_id={str(conversation.id)!r}, messages={TURN!r}, turn_id={turn_id!r})
        print(json.dumps([str(m.id) for m in stored]))
asyncio.run(main())
"""
    runs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [json.loads(run.communicate(timeout=120)[0]) for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert outputs[0] == outputs[1] == outputs[2] and len(outputs[0]) == 4
    assert await count("messages") == 4


# --- tool calls and their results --------------------------------------------------------


async def test_tool_calls_pair_with_results() -> None:
    user, conversation = await chat()
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": conversation.id}
    await fm.append_message(**at, role="assistant", tool_calls=[call("a"), call("b")])
    assert {c.call_id for c in await fm.list_open_tool_calls(**at)} == {"a", "b"}
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("an id still open", {"role": "assistant", "tool_calls": [call("a")]}, "still open"),
        ("an id twice", {"role": "assistant", "tool_calls": [call("c"), call("c")]}, "repeats"),
        ("an unknown call", {"role": "tool", "tool_results": [result("zzz")]}, "zzz"),
        ("a call twice", {"role": "tool", "tool_results": [result("a"), result("a")]}, "twice"),
    ]
    for problem, kwargs, words in cases:
        field = "tool_calls" if "tool_calls" in kwargs else "tool_results"
        with pytest.raises(ValidationError, match=words) as caught:
            await fm.append_message(**at, **kwargs)
        assert caught.value.field == field, problem
    await fm.append_message(**at, role="tool", tool_results=[result("a")])
    with pytest.raises(ValidationError, match="answered it already"):
        await fm.append_message(**at, role="tool", tool_results=[result("a")])
    assert [c.call_id for c in await fm.list_open_tool_calls(**at)] == ["b"]
    assert await count("messages") == 2


async def test_tool_call_and_result_shapes_are_checked() -> None:
    user, conversation = await chat()
    at: dict[str, Any] = {
        "user_id": user.id,
        "conversation_id": conversation.id,
        "role": "assistant",
    }
    for calls in (
        [{"id": "x", "type": "function", "function": {"name": "t", "arguments": {"a": 1}}}],
        [{"id": "x", "type": "function", "function": {"name": "t", "arguments": "[1]"}}],
        [{"id": "x", "type": "function", "function": {"name": "", "arguments": "{}"}}],
        [{"id": "x", "type": "custom", "function": {"name": "t", "arguments": "{}"}}],
        [{"id": "x" * 257, "type": "function", "function": {"name": "t", "arguments": "{}"}}],
        [{**call("x"), "extra": 1}],
    ):
        with pytest.raises(ValidationError) as caught:
            await fm.append_message(**at, tool_calls=calls)
        assert caught.value.field == "tool_calls"


# --- cursors -----------------------------------------------------------------------------


async def test_cursors_name_what_they_page() -> None:
    user, first = await chat()
    second = await fm.create_conversation(user_id=user.id)
    other, theirs = await chat(1)
    for conversation, owner in ((first, user), (second, user), (theirs, other)):
        for i in range(3):
            await fm.append_message(
                user_id=owner.id, conversation_id=conversation.id, role="user", content=str(i)
            )
    for _ in range(3):
        await fm.add_task(user_id=user.id, title="t")
    history = (await fm.get_history(user_id=user.id, conversation_id=first.id, limit=1)).next_cursor
    listing = (await fm.list_conversations(user_id=user.id, limit=1)).next_cursor
    open_tasks = (await fm.list_tasks(user_id=user.id, completed=False, limit=1)).next_cursor
    assert history and listing and open_tasks
    misuses: dict[str, Callable[[], Awaitable[Any]]] = {
        "another conversation's history": lambda: fm.get_history(
            user_id=user.id, conversation_id=second.id, before=history
        ),
        "another user": lambda: fm.get_history(
            user_id=other.id, conversation_id=theirs.id, before=history
        ),
        "a history cursor for conversations": lambda: fm.list_conversations(
            user_id=user.id, cursor=history
        ),
        "a conversations cursor for tasks": lambda: fm.list_tasks(user_id=user.id, cursor=listing),
        "another task filter": lambda: fm.list_tasks(
            user_id=user.id, completed=True, cursor=open_tasks
        ),
    }
    for case, misuse in misuses.items():
        with pytest.raises(ValidationError, match="is a cursor of") as caught:
            await misuse()
        assert caught.value.field in ("before", "cursor"), case
    assert (
        len((await fm.list_tasks(user_id=user.id, completed=False, cursor=open_tasks)).items) == 2
    )


@pytest.mark.parametrize("year", [1, 1899, 9999])
async def test_cursor_times_outside_the_stored_range_are_refused(year: int) -> None:
    user, conversation = await chat()
    forged = cursors.encode(
        cursors.HISTORY, user.id, conversation.id, datetime(year, 6, 1, tzinfo=UTC), uuid7()
    )
    with pytest.raises(ValidationError, match="outside the range"):
        await fm.get_history(user_id=user.id, conversation_id=conversation.id, before=forged)


async def test_paging_forward_catches_up_after_a_reconnect() -> None:
    user, conversation = await chat()
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": conversation.id}
    assert (await fm.get_history(**at)).after_cursor is None
    for i in range(3):
        await fm.append_message(**at, role="user", content=f"seen {i}")
    seen = await fm.get_history(**at)
    assert seen.after_cursor is not None
    nothing_new = await fm.get_history(**at, after=seen.after_cursor)
    assert nothing_new.items == [] and nothing_new.after_cursor == seen.after_cursor
    for i in range(5):  # while the client was away
        await fm.append_message(**at, role="user", content=f"new {i}")
    page = await fm.get_history(**at, after=seen.after_cursor, limit=3)
    assert [m.content for m in page.items] == ["new 0", "new 1", "new 2"]
    rest = await fm.get_history(**at, after=page.next_cursor, limit=3)
    assert [m.content for m in rest.items] == ["new 3", "new 4"] and rest.next_cursor is None
    with pytest.raises(ValidationError, match="one way"):
        await fm.get_history(**at, after=page.after_cursor, before=page.after_cursor)


async def test_a_page_ends_at_its_byte_budget_and_its_cursor_goes_on() -> None:
    """A hundred messages of a million characters: a page of 100 stops once it passes
    MAX_PAGE_BYTES (the caller's memory grows by a few pages' worth, not a hundred
    megabytes), and its cursors, both ways, reach every message exactly once."""
    user, conversation = await chat()
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": conversation.id}
    for i in range(100):
        await fm.append_message(**at, role="user", content=f"{i:03d}" + "x" * 999_997)
    gc.collect()
    tracemalloc.start()
    try:
        page = await fm.get_history(**at, limit=100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    sizes = sum(len(m.content or "") for m in page.items)
    print(
        f"\na page of 100 asked: {len(page.items)} messages, {sizes / 1e6:.0f} MB of text, "
        f"the process's allocations peaked at {peak / 1e6:.0f} MB"
    )
    assert 1 <= len(page.items) < 100 and sizes <= MAX_PAGE_BYTES + 1_000_000
    assert peak < 50_000_000
    seen = [(m.content or "")[:3] for m in page.items]
    cursor, oldest = page.next_cursor, page
    while cursor is not None:
        oldest = await fm.get_history(**at, limit=100, before=cursor)
        seen = [(m.content or "")[:3] for m in oldest.items] + seen
        cursor = oldest.next_cursor
    assert seen == [f"{i:03d}" for i in range(100)]
    # Forward, from the first message: the same, in the same order.
    start = oldest.items[0]
    forward = [(start.content or "")[:3]]
    cursor = cursors.encode(cursors.HISTORY, user.id, conversation.id, start.created_at, start.id)
    while cursor is not None:
        ahead = await fm.get_history(**at, limit=100, after=cursor)
        forward += [(m.content or "")[:3] for m in ahead.items]
        cursor = ahead.next_cursor
    assert forward == seen


async def test_appends_racing_on_one_conversation_never_hide_from_forward_paging() -> None:
    """Messages take their times under the conversation's lock: a reader paging forward
    never skips one that committed after it had read past its neighbours."""
    user, conversation = await chat()
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": conversation.id}
    await fm.append_message(**at, role="user", content="start")
    cursor = (await fm.get_history(**at)).after_cursor
    seen: list[str] = []

    async def write(n: int) -> None:
        await fm.append_message(**at, role="user", content=f"w{n}")

    async def read() -> None:
        nonlocal cursor
        page = await fm.get_history(**at, after=cursor)
        seen.extend(m.content or "" for m in page.items)
        cursor = page.after_cursor

    for _ in range(10):
        await asyncio.gather(*(write(n) for n in range(10)), read())
    await read()
    assert sorted(seen) == sorted(f"w{n}" for n in range(10) for _ in range(10))
    assert len(seen) == 100


# --- small getters -----------------------------------------------------------------------


async def test_small_getters() -> None:
    user, _ = await chat()
    assert (await fm.get_user_by_subject(subject_id="turns|0")).id == user.id
    with pytest.raises(NotFound):
        await fm.get_user_by_subject(subject_id="nobody")
    task = await fm.add_task(user_id=user.id, title="t")
    assert (await fm.get_task(user_id=user.id, task_id=task.id)).id == task.id
    other, _ = await chat(1)
    with pytest.raises(NotFound):
        await fm.get_task(user_id=other.id, task_id=task.id)
    await fm.save_mcp_config(user_id=user.id, name="todo", config={"url": "u"})
    assert (await fm.get_mcp_config(user_id=user.id, name="todo")).config == {"url": "u"}
    with pytest.raises(NotFound):
        await fm.get_mcp_config(user_id=other.id, name="todo")


def test_no_environment_leaks_into_the_child() -> None:
    assert "FACEPLATE_DATABASE_URL" in os.environ  # the session fixture sets it for apps
