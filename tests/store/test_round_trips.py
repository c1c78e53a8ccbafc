"""Round trips, counted at the wire (the benchmark suite's proxy): outside the caller's
transaction an append is one round trip in session mode and two behind a transaction
pooler, with every guarantee the other tests prove for it kept."""

from __future__ import annotations

import base64
import dataclasses
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from tortoise.transactions import in_transaction

import faceplate_models as fm
from benchmarks.wire import Wire
from faceplate_models import secrets
from faceplate_models.config import (
    SESSION,
    TRANSACTION,
    DatabaseTarget,
    Settings,
    load_settings,
    parse_secret_keys,
)
from faceplate_models.ids import uuid7
from tests import faults

CALL = {"id": "call_1", "type": "function", "function": {"name": "t", "arguments": "{}"}}


@pytest.fixture
async def wire(faceplate_db: DatabaseTarget, restore_db: DatabaseTarget) -> AsyncIterator[Wire]:
    """The package initialised through the counting proxy (`init(mode)` picks the pool mode);
    a transaction pooler's bounds set as the database's defaults, as on a role."""
    await faults.pooler_defaults(faceplate_db)
    proxy = Wire(faceplate_db)
    try:
        yield proxy
    finally:
        await fm.close_db()
        await proxy.close()
        await faults.session_defaults(faceplate_db, None)


async def init(wire: Wire, mode: str) -> None:
    through = await wire.start()
    await fm.init_db(through.url(), settings=dataclasses.replace(load_settings(), pool_mode=mode))


def calls(user: Any, conversation: Any) -> dict[str, Callable[[], Awaitable[Any]]]:
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": conversation.id}
    first: dict[str, Any] = {}

    async def append_message() -> Any:
        message = await fm.append_message(**at, role="user", content="hello")
        first.setdefault("user", message)
        return message

    async def append_turn() -> Any:
        call = {**CALL, "id": f"call_{uuid7()}"}
        return await fm.append_turn(
            **at,
            messages=[
                {"role": "user", "content": "what time is it?"},
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_results": [{"tool_call_id": call["id"], "content": "9"}]},
                {
                    "role": "assistant",
                    "content": "nine",
                    "model": "m",
                    "usage": {"input_tokens": 3},
                },
            ],
        )

    async def retried() -> Any:  # the same request again: the stored turn, nothing written
        return await fm.append_turn(**at, messages=[{"role": "user", "content": "x"}], turn_id=turn)

    turn = uuid7()
    return {
        "append_message": append_message,
        "append_turn, 4 messages with a tool call and usage": append_turn,
        "append_turn, a retry": retried,
        "edit_message": lambda: fm.edit_message(
            **at, message_id=first["user"].id, content="hello again"
        ),
        "check_turn": lambda: fm.check_turn(**at, messages=[{"role": "user", "content": "x"}]),
        "get_history(100)": lambda: fm.get_history(**at),
    }


@pytest.mark.parametrize(("mode", "trips"), [(SESSION, 1), (TRANSACTION, 2)])
async def test_appends_and_reads_are_one_round_trip_in_session_mode(
    wire: Wire, mode: str, trips: int
) -> None:
    """Two behind a transaction pooler: asyncpg keeps no prepared statement there (a pooler
    may hand the next statement to another server connection), so each statement is
    prepared, then run."""
    await init(wire, mode)
    user = await fm.get_or_create_user(subject_id=str(uuid7()), email="r@example.com")
    conversation = await fm.create_conversation(user_id=user.id)
    made = {name: await wire.count(call) for name, call in calls(user, conversation).items()}
    print(f"\nround trips, {mode}: {made}")
    assert made == dict.fromkeys(made, trips)
    history = await fm.get_history(user_id=user.id, conversation_id=conversation.id, limit=1000)
    # Three edits, each a sibling of the first message: the path holds the newest only.
    assert [m.content for m in history.items] == ["hello again"]


async def test_a_refused_turn_in_a_callers_transaction_leaves_it_usable(wire: Wire) -> None:
    """Inside the caller's transaction the append runs under a savepoint: a turn the
    database refuses (a result that answers nothing) is undone alone."""
    await init(wire, SESSION)
    user = await fm.get_or_create_user(subject_id=str(uuid7()), email="r@example.com")
    conversation = await fm.create_conversation(user_id=user.id)
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": conversation.id}
    async with in_transaction():
        await fm.append_message(**at, role="user", content="kept")
        with pytest.raises(fm.ValidationError) as refused:
            await fm.append_message(
                **at, role="tool", tool_results=[{"tool_call_id": "nothing", "content": "x"}]
            )
        assert refused.value.field == "tool_results"
        await fm.append_message(**at, role="assistant", content="also kept")
    history = await fm.get_history(**at)
    assert [m.content for m in history.items] == ["kept", "also kept"]


Prepare = Callable[[], Awaitable[dict[str, Any]]]


async def every_call(user: Any) -> dict[str, tuple[Prepare, Callable[..., Awaitable[Any]]]]:
    """Each store call a request makes, with what makes its arguments: a fresh object for
    a call that consumes one (a delete), the same for the others."""
    uid = user.id
    chat = await fm.create_conversation(user_id=uid, title="chat")
    at = {"user_id": uid, "conversation_id": chat.id}
    asked = await fm.append_message(**at, role="user", content="question")
    answer = await fm.append_message(**at, role="assistant", content="answer")
    task = await fm.add_task(user_id=uid, title="task")
    folder = await fm.create_folder(user_id=uid, name="folder")
    tag = await fm.create_tag(user_id=uid, name="tag")
    share = await fm.share_conversation(**at)
    await fm.save_mcp_config(user_id=uid, name="tools", config={"url": "https://t.example/mcp"})

    def same(**kwargs: Any) -> Prepare:
        async def prepare() -> dict[str, Any]:
            return kwargs

        return prepare

    async def new_conversation() -> dict[str, Any]:
        return {"conversation_id": (await fm.create_conversation(user_id=uid)).id}

    async def new_task() -> dict[str, Any]:
        return {"task_id": (await fm.add_task(user_id=uid, title="t")).id}

    async def new_key() -> dict[str, Any]:
        return {"key": uuid7()}

    async def trashed() -> dict[str, Any]:
        made = await new_conversation()
        await fm.delete_conversation(**u, **made, permanently=False)
        return made

    async def new_folder() -> dict[str, Any]:
        return {"folder_id": (await fm.create_folder(user_id=uid, name=str(uuid7()))).id}

    async def new_tag() -> dict[str, Any]:
        return {"tag_id": (await fm.create_tag(user_id=uid, name=str(uuid7()))).id}

    async def new_share() -> dict[str, Any]:
        return {"share_id": (await fm.share_conversation(**at)).share.id}

    async def new_branch() -> dict[str, Any]:
        side = await fm.append_message(**at, role="user", content="aside", after=asked.id)
        return {"message_id": side.id}

    async def new_hold() -> dict[str, Any]:
        return {"hold": await fm.reserve(user_id=uid, estimate=1)}

    async def new_user() -> dict[str, Any]:
        someone = await fm.get_or_create_user(subject_id=str(uuid7()), email="x@example.com")
        return {"user_id": someone.id}

    u = {"user_id": uid}
    return {
        "get_user": (same(), lambda: fm.get_user(**u)),
        "get_or_create_user": (
            same(),
            lambda: fm.get_or_create_user(subject_id=user.subject_id, email=user.email),
        ),
        "create_conversation": (
            new_key,
            lambda key: fm.create_conversation(**u, conversation_id=key),
        ),
        "get_conversation": (same(), lambda: fm.get_conversation(**at)),
        "list_conversations": (same(), lambda: fm.list_conversations(**u)),
        "rename_conversation": (same(), lambda: fm.rename_conversation(**at, title="t")),
        "organise_conversation": (same(), lambda: fm.organise_conversation(**at, pinned=True)),
        "delete_conversation": (
            new_conversation,
            lambda conversation_id: fm.delete_conversation(**u, conversation_id=conversation_id),
        ),
        "get_siblings": (same(), lambda: fm.get_siblings(**at, message_id=asked.id)),
        "switch_branch": (same(), lambda: fm.switch_branch(**at, message_id=asked.id)),
        "get_tree": (same(), lambda: fm.get_tree(**at)),
        "list_open_tool_calls": (same(), lambda: fm.list_open_tool_calls(**u)),
        "search_messages": (same(), lambda: fm.search_messages(**u, query="question")),
        "add_task": (new_key, lambda key: fm.add_task(**u, title="t", task_id=key)),
        "get_task": (same(), lambda: fm.get_task(**u, task_id=task.id)),
        "list_tasks": (same(), lambda: fm.list_tasks(**u)),
        "update_task": (same(), lambda: fm.update_task(**u, task_id=task.id, title="u")),
        "complete_task": (same(), lambda: fm.complete_task(**u, task_id=task.id)),
        "delete_task": (new_task, lambda task_id: fm.delete_task(**u, task_id=task_id)),
        "create_folder": (new_key, lambda key: fm.create_folder(**u, name=str(key), folder_id=key)),
        "list_folders": (same(), lambda: fm.list_folders(**u)),
        "rename_folder": (same(), lambda: fm.rename_folder(**u, folder_id=folder.id, name="f")),
        "create_tag": (new_key, lambda key: fm.create_tag(**u, name=str(key), tag_id=key)),
        "list_tags": (same(), lambda: fm.list_tags(**u)),
        "rename_tag": (same(), lambda: fm.rename_tag(**u, tag_id=tag.id, name="g")),
        "list_shares": (same(), lambda: fm.list_shares(**u)),
        "get_shared": (same(), lambda: fm.get_shared(token=share.token)),
        "rate_message": (
            same(),
            lambda: fm.rate_message(**u, message_id=asked.id, rating=1),
        ),
        "reserve": (new_key, lambda key: fm.reserve(**u, estimate=10, hold_id=key)),
        "usage_summary": (same(), lambda: fm.usage_summary(**u, since=chat.created_at)),
        "list_mcp_configs": (same(), lambda: fm.list_mcp_configs(**u)),
        "get_mcp_config": (same(), lambda: fm.get_mcp_config(**u, name="tools")),
        "get_user_by_subject": (same(), lambda: fm.get_user_by_subject(subject_id=user.subject_id)),
        "update_conversation": (same(), lambda: fm.update_conversation(**at, metadata={"a": 1})),
        "restore_conversation": (
            trashed,
            lambda conversation_id: fm.restore_conversation(**u, conversation_id=conversation_id),
        ),
        "regenerate": (same(), lambda: fm.regenerate(**at, message_id=answer.id)),
        "delete_branch": (
            new_branch,
            lambda message_id: fm.delete_branch(**at, message_id=message_id),
        ),
        "delete_folder": (new_folder, lambda folder_id: fm.delete_folder(**u, folder_id=folder_id)),
        "delete_tag": (new_tag, lambda tag_id: fm.delete_tag(**u, tag_id=tag_id)),
        "organise_conversation, tags": (
            same(),
            lambda: fm.organise_conversation(**at, tag_ids=[tag.id]),
        ),
        "share_conversation": (same(), lambda: fm.share_conversation(**at)),
        "update_share": (same(), lambda: fm.update_share(**u, share_id=share.share.id)),
        "revoke_share": (new_share, lambda share_id: fm.revoke_share(**u, share_id=share_id)),
        "set_budget": (same(), lambda: fm.set_budget(**u, period="day", limit=10**9)),
        "release": (new_hold, lambda hold: fm.release(**u, hold=hold)),
        "save_mcp_config": (
            same(),
            lambda: fm.save_mcp_config(**u, name="tools", config={"url": "https://t.example/m"}),
        ),
        "delete_user": (new_user, lambda user_id: fm.delete_user(user_id=user_id)),
    }


async def test_every_call_a_request_makes_is_one_round_trip_in_session_mode(
    wire: Wire,
) -> None:
    await init(wire, SESSION)
    user = await fm.get_or_create_user(subject_id=str(uuid7()), email="e@example.com")
    made: dict[str, int] = {}
    for name, (prepare, call) in (await every_call(user)).items():
        await call(**await prepare())  # its statements known to the connection
        arguments = await prepare()
        made[name] = await wire.count(functools.partial(call, **arguments), warm=0)
    print(f"\nround trips, session mode: {made}")
    assert {name: n for name, n in made.items() if n != 1} == MORE_THAN_ONE


#: The calls that take more than one round trip, and why.
MORE_THAN_ONE = {
    # The share's row, then the owner's history page through get_history.
    "get_shared": 2,
    # The answered question's row, then the history page up to it.
    "regenerate": 2,
    # Tags rewrite the conversation's tag rows, which must see what an organise it waited
    # for wrote: BEGIN, the row's lock, the ownership of the tags, the update, the rows, COMMIT.
    "organise_conversation, tags": 6,
    # A snapshot names the active leaf as stored after the user's lock: BEGIN, the lock, the
    # leaf, the insert, COMMIT.
    "share_conversation": 5,
    # Deleting a branch reads what it deletes and picks the new leaf: a long transaction.
    "delete_branch": 11,
    # The grants to revoke, then the erasure with its counts (BEGIN, SET LOCAL, the
    # statement, COMMIT: a long transaction).
    "delete_user": 4,
    # Moving a share to another leaf: as share_conversation.
    "update_share": 5,
    # Untagging every conversation, then the tag: a long transaction.
    "delete_tag": 5,
    # Secrets are sealed in Python for the version after the stored one, under the lock.
    "save_mcp_config": 4,
}


@pytest.mark.usefixtures("restore_db")
async def test_no_call_makes_the_driver_look_up_a_type(
    faceplate_db: DatabaseTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arrays travel as text[] (`engine.texts`): no store call, the rotation of secrets
    included, makes asyncpg ask the server's catalog about a type, which it would do once
    per connection, on its first use of an array of another type (5 ms on a new connection,
    the first request's in a cold start; half a second on Citus)."""
    looked_up: list[list[int]] = []
    introspect = asyncpg.Connection._introspect_types  # type: ignore[attr-defined]

    async def spy(conn: asyncpg.Connection, *args: Any) -> Any:
        looked_up.append(sorted(args[0]))
        return await introspect(conn, *args)

    monkeypatch.setattr(asyncpg.Connection, "_introspect_types", spy)
    old, new = (f"{k}:{base64.b64encode(os.urandom(32)).decode()}" for k in ("k1", "k2"))

    def keys(*ring: str) -> Settings:
        return dataclasses.replace(load_settings(), secret_keys=parse_secret_keys(",".join(ring)))

    await fm.init_db(faceplate_db.url(), settings=keys(old))  # new connections: nothing learned
    user = await fm.get_or_create_user(subject_id=str(uuid7()), email="t@example.com")
    for name, (prepare, call) in (await every_call(user)).items():
        await call(**await prepare())
        assert not looked_up, name
    chat = await fm.create_conversation(user_id=user.id)
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": chat.id}
    for call in calls(user, chat).values():
        await call()
    priced = {"role": "assistant", "content": "x", "model": "m", "usage": {"output_tokens": 1}}
    await fm.append_turn(
        **at, messages=[priced], hold=await fm.reserve(user_id=user.id, estimate=9)
    )
    reply = await fm.start_reply(**at)
    await reply.write("live")
    await reply.finish(tool_calls=[CALL], model="m", usage={"input_tokens": 1})
    await fm.save_mcp_config(user_id=user.id, name="s", config={}, secrets={"t": "v"})
    other = await fm.get_or_create_user(subject_id=str(uuid7()), email="o@example.com")
    export = b"".join([part async for part in fm.export_user(user_id=user.id)])
    imported = await fm.import_conversations(user_id=other.id, source=export)
    assert imported.messages  # (the empty conversations fail: nothing to show)
    await fm.init_db(faceplate_db.url(), settings=keys(new, old))
    assert (await secrets.rotate()).rotated == 1
    await fm.purge_expired()
    assert looked_up == []
