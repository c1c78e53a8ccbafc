"""The schema as PostgreSQL itself reports it, and the models' behaviour on a real server."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from tortoise import connections
from tortoise.exceptions import IntegrityError

from faceplate_models import Conversation, MCPConfig, Message, Role, Task, User
from faceplate_models.config import DatabaseTarget

pytestmark = pytest.mark.usefixtures("faceplate_db")


async def query(sql: str, *args: Any) -> list[dict[str, Any]]:
    rows = await connections.get("default").execute_query_dict(sql, list(args))
    return cast(list[dict[str, Any]], rows)


async def columns(table: str) -> dict[str, tuple[str, bool]]:
    rows = await query(
        """SELECT column_name, data_type, is_nullable FROM information_schema.columns
           WHERE table_schema = 'faceplate' AND table_name = $1""",
        table,
    )
    return {r["column_name"]: (r["data_type"], r["is_nullable"] == "YES") for r in rows}


TABLES = (
    "aerich",
    "budgets",
    "conversation_sources",
    "conversation_tags",
    "conversations",
    "feedback",
    "folders",
    "holds",
    "mcp_configs",
    "messages",
    "model_prices",
    "oauth_clients",
    "oauth_grants",
    "oauth_sign_ins",
    "replies",
    "reply_chunks",
    "shares",
    "tags",
    "tasks",
    "tool_calls",
    "usage_days",
    "usage_rollups",
    "users",
)
UUID, TSTZ, TEXT, VARCHAR, JSONB, BOOL = (
    "uuid",
    "timestamp with time zone",
    "text",
    "character varying",
    "jsonb",
    "boolean",
)


async def test_every_table_lives_in_the_faceplate_schema_and_none_in_public() -> None:
    rows = await query(
        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
        "('pg_catalog', 'information_schema') ORDER BY tablename"
    )
    assert {(r["schemaname"], r["tablename"]) for r in rows} == {("faceplate", t) for t in TABLES}


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            "users",
            {
                "id": (UUID, False),
                "email": (VARCHAR, False),
                "subject_id": (VARCHAR, False),
                "created_at": (TSTZ, False),
                "updated_at": (TSTZ, False),
            },
        ),
        (
            "conversations",
            {
                "id": (UUID, False),
                "user_id": (UUID, False),
                "title": (VARCHAR, True),
                "active_leaf_id": (UUID, True),
                "open_calls": ("integer", False),
                "settings": (JSONB, True),
                "metadata": (JSONB, True),
                "message_count": ("integer", True),
                "archived_at": (TSTZ, True),
                "pinned_at": (TSTZ, True),
                "folder_id": (UUID, True),
                "tag_ids": (JSONB, True),
                "temporary": (BOOL, False),
                "trashed_at": (TSTZ, True),
                "created_at": (TSTZ, False),
                "updated_at": (TSTZ, False),
            },
        ),
        (
            "messages",
            {
                "id": (UUID, False),
                "conversation_id": (UUID, False),
                # Nullable until the next release's migration (contract): the previous
                # release writes rows without them, which a trigger then places.
                "parent_id": (UUID, True),
                "user_id": (UUID, True),
                "role": (VARCHAR, False),
                "content": (TEXT, True),
                "tool_calls": (JSONB, True),
                "tool_results": (JSONB, True),
                "depth": ("integer", True),
                "segment_id": (UUID, True),
                "fork_segment_id": (UUID, True),
                "open_calls": (JSONB, True),
                "model": (VARCHAR, True),
                "provider": (VARCHAR, True),
                "finish_reason": (VARCHAR, True),
                "usage": (JSONB, True),
                "cost": ("bigint", True),
                "thinking": (JSONB, True),
                "metadata": (JSONB, True),
                "created_at": (TSTZ, False),
                "turn_id": (UUID, True),
                "status": (VARCHAR, True),
                "failure": (TEXT, True),
            },
        ),
        (
            "tool_calls",
            {
                "id": (UUID, False),
                "conversation_id": (UUID, False),
                "user_id": (UUID, True),
                "call_id": (VARCHAR, False),
                "message_id": (UUID, False),
                "result_message_id": (UUID, True),
                "created_at": (TSTZ, False),
            },
        ),
        (
            "mcp_configs",
            {
                "id": (UUID, False),
                "user_id": (UUID, False),
                "name": (VARCHAR, False),
                "config": (JSONB, False),
                "enabled": (BOOL, False),
                "secret_names": (JSONB, False),
                "secret_key_id": (VARCHAR, True),
                "secret_box": ("bytea", True),
                "secret_version": ("bigint", False),
                "created_at": (TSTZ, False),
                "updated_at": (TSTZ, False),
            },
        ),
        *(
            (
                table,
                {
                    "id": (UUID, False),
                    "user_id": (UUID, False),
                    "name": (VARCHAR, False),
                    "created_at": (TSTZ, False),
                    "updated_at": (TSTZ, False),
                },
            )
            for table in ("folders", "tags")
        ),
        (
            "conversation_tags",
            {
                "id": (UUID, False),
                "user_id": (UUID, False),
                "conversation_id": (UUID, False),
                "tag_id": (UUID, False),
                "updated_at": (TSTZ, False),
                "created_at": (TSTZ, False),
            },
        ),
        (
            "shares",
            {
                "id": (UUID, False),
                "user_id": (UUID, False),
                "conversation_id": (UUID, False),
                "token_hash": ("bytea", False),
                "leaf_id": (UUID, True),
                "live": (BOOL, False),
                "created_at": (TSTZ, False),
                "updated_at": (TSTZ, False),
            },
        ),
        (
            "feedback",
            {
                "id": (UUID, False),
                "user_id": (UUID, False),
                "message_id": (UUID, False),
                "conversation_id": (UUID, False),
                "rating": ("smallint", True),
                "reasons": (JSONB, False),
                "comment": (TEXT, True),
                "created_at": (TSTZ, False),
                "updated_at": (TSTZ, False),
            },
        ),
        (
            "tasks",
            {
                "id": (UUID, False),
                "user_id": (UUID, False),
                "title": (VARCHAR, False),
                "description": (TEXT, True),
                "completed": (BOOL, False),
                "created_at": (TSTZ, False),
                "updated_at": (TSTZ, False),
            },
        ),
    ],
)
async def test_columns_and_types(table: str, expected: dict[str, tuple[str, bool]]) -> None:
    assert await columns(table) == expected


async def test_primary_keys_are_id() -> None:
    rows = await query(
        """SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc
           JOIN information_schema.key_column_usage kcu USING (constraint_schema, constraint_name)
           WHERE tc.table_schema = 'faceplate' AND tc.constraint_type = 'PRIMARY KEY'"""
    )
    # A reply's row is its message's: keyed by the message.
    keys = {(t, "message_id" if t == "replies" else "id") for t in TABLES}
    assert {(r["table_name"], r["column_name"]) for r in rows} == keys


async def test_foreign_keys_cascade_on_delete() -> None:
    rows = await query(
        """SELECT c.conrelid::regclass::text AS child, a.attname AS col,
                  c.confrelid::regclass::text AS parent, c.confdeltype::text AS on_delete
           FROM pg_constraint c
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
           WHERE c.contype = 'f' AND c.connamespace = 'faceplate'::regnamespace"""
    )
    assert {(r["child"], r["col"], r["parent"], r["on_delete"]) for r in rows} == {
        ("conversations", "user_id", "users", "c"),
        ("messages", "conversation_id", "conversations", "c"),
        # A message with replies cannot go alone (no action); calls go with their message,
        # and a deleted answer leaves its call unanswered.
        ("messages", "parent_id", "messages", "a"),
        ("tool_calls", "conversation_id", "conversations", "c"),
        ("tool_calls", "message_id", "messages", "c"),
        ("tool_calls", "result_message_id", "messages", "n"),
        ("mcp_configs", "user_id", "users", "c"),
        ("tasks", "user_id", "users", "c"),
        # A user's spending goes with the user (not with a conversation: spent stays spent).
        ("usage_days", "user_id", "users", "c"),
        ("usage_rollups", "user_id", "users", "c"),
        ("budgets", "user_id", "users", "c"),
        ("holds", "user_id", "users", "c"),
        # The sidebar's: a deleted folder leaves its conversations, in no folder.
        ("folders", "user_id", "users", "c"),
        ("tags", "user_id", "users", "c"),
        ("conversations", "folder_id", "folders", "n"),
        ("conversation_tags", "conversation_id", "conversations", "c"),
        ("conversation_tags", "tag_id", "tags", "c"),
        ("shares", "user_id", "users", "c"),
        ("shares", "conversation_id", "conversations", "c"),
        ("feedback", "user_id", "users", "c"),
        ("feedback", "message_id", "messages", "c"),
        # A live reply's row and text go with its message; OAuth with the MCP config, but a
        # client registration is every user's and stays.
        ("replies", "message_id", "messages", "c"),
        ("reply_chunks", "message_id", "messages", "c"),
        ("oauth_grants", "mcp_config_id", "mcp_configs", "c"),
        ("oauth_grants", "client_id", "oauth_clients", "n"),
        ("oauth_sign_ins", "mcp_config_id", "mcp_configs", "c"),
        ("conversation_sources", "conversation_id", "conversations", "c"),
    }


async def indexes() -> dict[str, tuple[str, bool, str]]:
    rows = await query(
        """SELECT i.relname AS name, t.relname AS tab, x.indisunique AS uniq,
                  pg_get_indexdef(x.indexrelid) AS def
           FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_class t ON t.oid = x.indrelid
           WHERE t.relnamespace = 'faceplate'::regnamespace AND NOT x.indisprimary"""
    )
    return {
        r["name"]: (r["tab"], r["uniq"], re.split(r" USING (btree|gin) ", r["def"])[-1])
        for r in rows
    }


async def test_indexes_follow_the_hot_queries() -> None:
    found = {(tab, uniq, cols) for tab, uniq, cols in (await indexes()).values()}
    assert found == {
        ("users", True, "(subject_id)"),
        ("users", True, "(lower((email)::text))"),
        ("conversations", False, "(user_id, updated_at, id)"),
        ("conversations", False, "(user_id, id) WHERE (open_calls > 0)"),
        *(
            ("conversations", False, f"(user_id, updated_at, id) WHERE {where}")
            for where in (
                "((trashed_at IS NULL) AND (archived_at IS NULL))",
                "((trashed_at IS NULL) AND (archived_at IS NOT NULL))",
                "((trashed_at IS NULL) AND (pinned_at IS NOT NULL))",
            )
        ),
        ("conversations", False, "(user_id, trashed_at, id) WHERE (trashed_at IS NOT NULL)"),
        ("conversations", False, "(folder_id, user_id, updated_at, id)"),
        ("conversations", False, "(trashed_at) WHERE (trashed_at IS NOT NULL)"),
        ("conversations", False, "(created_at) WHERE temporary"),
        (
            "conversations",
            False,
            "(search_document(user_id, id, created_at, (title)::text)) "
            "WITH (fastupdate=off) WHERE (trashed_at IS NULL)",
        ),
        (
            "messages",
            False,
            "(search_document(user_id, conversation_id, created_at, content)) "
            "WITH (fastupdate=off) "
            "WHERE ((role)::text = ANY ((ARRAY['user'::character varying, "
            "'assistant'::character varying])::text[]))",
        ),
        ("folders", True, "(user_id, name)"),
        ("tags", True, "(user_id, name)"),
        ("conversation_tags", True, "(conversation_id, tag_id)"),
        ("conversation_tags", False, "(tag_id, updated_at, conversation_id)"),
        ("shares", True, "(token_hash)"),
        ("shares", False, "(user_id, created_at, id)"),
        ("shares", False, "(conversation_id)"),
        ("feedback", True, "(message_id)"),
        ("feedback", False, "(updated_at, id)"),
        ("feedback", False, "(rating, updated_at, id)"),
        ("feedback", False, "(user_id)"),
        ("messages", False, "(conversation_id, created_at, id)"),
        ("messages", False, "(conversation_id, turn_id) WHERE (turn_id IS NOT NULL)"),
        ("messages", True, "(segment_id, depth)"),
        ("messages", False, "(parent_id, id)"),
        ("messages", False, "(conversation_id, id) WHERE (parent_id IS NULL)"),
        ("messages", False, "(fork_segment_id, depth, id) WHERE (fork_segment_id IS NOT NULL)"),
        ("tool_calls", False, "(conversation_id, call_id)"),
        ("tool_calls", True, "(message_id, call_id)"),
        ("tool_calls", False, "(result_message_id) WHERE (result_message_id IS NOT NULL)"),
        ("tool_calls", False, "(conversation_id) WHERE (result_message_id IS NULL)"),
        ("mcp_configs", True, "(user_id, name)"),
        ("model_prices", True, "(provider, model, starts_at)"),
        ("usage_days", True, "(user_id, day, provider, model)"),
        ("usage_rollups", True, "(user_id, day, conversation_id, provider, model)"),
        ("budgets", True, "(user_id, period)"),
        ("holds", False, "(user_id, expires_at)"),
        ("tasks", False, "(user_id, created_at, id)"),
        ("tasks", False, "(user_id, completed, created_at, id)"),
        ("messages", False, "(id) WHERE ((status)::text = 'streaming'::text)"),
        ("replies", False, "(conversation_id, turn_id) WHERE (turn_id IS NOT NULL)"),
        ("reply_chunks", True, "(message_id, at)"),
        ("oauth_clients", True, "(lookup)"),
        ("oauth_grants", True, "(mcp_config_id)"),
        ("oauth_grants", False, "(client_id)"),
        ("oauth_sign_ins", True, "(state_hash)"),
        ("oauth_sign_ins", False, "(mcp_config_id)"),
        ("oauth_sign_ins", False, "(expires_at)"),
        ("conversation_sources", True, "(user_id, source, source_id)"),
        ("conversation_sources", False, "(conversation_id)"),
    }


async def test_every_foreign_key_leads_an_index() -> None:
    leading = {
        (tab, cols[1 : cols.index(")")].split(", ")[0])
        for tab, _, cols in (await indexes()).values()
    }
    for child, column in [
        ("conversations", "user_id"),
        ("messages", "conversation_id"),
        ("messages", "parent_id"),
        ("tool_calls", "conversation_id"),
        ("tool_calls", "message_id"),
        ("tool_calls", "result_message_id"),
        ("mcp_configs", "user_id"),
        ("tasks", "user_id"),
        ("usage_days", "user_id"),
        ("usage_rollups", "user_id"),
        ("budgets", "user_id"),
        ("holds", "user_id"),
        ("folders", "user_id"),
        ("tags", "user_id"),
        ("conversations", "folder_id"),
        ("conversation_tags", "conversation_id"),
        ("conversation_tags", "tag_id"),
        ("shares", "user_id"),
        ("shares", "conversation_id"),
        ("feedback", "user_id"),
        ("reply_chunks", "message_id"),
        ("oauth_grants", "client_id"),
        ("oauth_sign_ins", "mcp_config_id"),
        ("conversation_sources", "conversation_id"),
        ("feedback", "message_id"),
    ]:
        assert (child, column) in leading


async def test_email_is_unique_case_insensitively() -> None:
    await User.create(email="ada@example.com", subject_id="a")
    with pytest.raises(IntegrityError):
        await User.create(email="ADA@Example.COM", subject_id="b")
    with pytest.raises(IntegrityError):
        await User.create(email="other@example.com", subject_id="a")
    assert await User.all().count() == 1


async def test_mcp_config_name_is_unique_per_user() -> None:
    ada = await User.create(email="ada@example.com", subject_id="a")
    bob = await User.create(email="bob@example.com", subject_id="b")
    await MCPConfig.create(user=ada, name="todo", config={})
    await MCPConfig.create(user=bob, name="todo", config={})
    with pytest.raises(IntegrityError):
        await MCPConfig.create(user=ada, name="todo", config={"x": 1})


async def test_ids_are_uuid7_and_time_ordered() -> None:
    users = [await User.create(email=f"u{i}@example.com", subject_id=str(i)) for i in range(5)]
    assert all(u.id.version == 7 for u in users)
    assert [u.id for u in users] == sorted(u.id for u in users)
    fetched = await User.get(id=users[0].id)
    assert fetched.id == users[0].id


async def test_timestamps_are_aware_utc() -> None:
    before = datetime.now(UTC)
    user = await User.create(email="ada@example.com", subject_id="a")
    fetched = await User.get(id=user.id)
    for moment in (fetched.created_at, fetched.updated_at):
        assert moment.tzinfo is not None
        offset = moment.utcoffset()
        assert offset is not None
        assert offset.total_seconds() == 0
        assert before <= moment <= datetime.now(UTC)


async def test_json_round_trips() -> None:
    user = await User.create(email="ada@example.com", subject_id="a")
    chat = await Conversation.create(user=user, title="t")
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "todo.add", "arguments": json.dumps({"title": "x"})},
        }
    ]
    results = {"nested": [1, 2.5, None, True, {"ü": "ß✓"}], "big": 2**70}
    message = await Message.create(
        conversation=chat, role=Role.ASSISTANT, tool_calls=calls, tool_results=results
    )
    fetched = await Message.get(id=message.id)
    assert fetched.tool_calls == calls
    assert fetched.tool_results == results
    assert fetched.content is None
    assert fetched.role is Role.ASSISTANT
    stored = await query(
        "SELECT jsonb_typeof(tool_calls) AS t FROM faceplate.messages WHERE id = $1", message.id
    )
    assert stored == [{"t": "array"}]


async def test_deleting_a_conversation_deletes_its_messages() -> None:
    user = await User.create(email="ada@example.com", subject_id="a")
    keep, drop = await Conversation.create(user=user), await Conversation.create(user=user)
    for chat in (keep, drop):
        await Message.create(conversation=chat, role=Role.USER, content="hi")
    await drop.delete()
    assert await Message.filter(conversation_id=drop.id).count() == 0
    assert await Message.filter(conversation_id=keep.id).count() == 1


async def test_deleting_a_user_deletes_everything_they_own() -> None:
    ada = await User.create(email="ada@example.com", subject_id="a")
    bob = await User.create(email="bob@example.com", subject_id="b")
    for owner in (ada, bob):
        chat = await Conversation.create(user=owner)
        await Message.create(conversation=chat, role=Role.USER, content="hi")
        await MCPConfig.create(user=owner, name="todo", config={})
        await Task.create(user=owner, title="t")
    await ada.delete()
    for model in (Conversation, MCPConfig, Task):
        assert await model.filter(user_id=ada.id).count() == 0
        assert await model.filter(user_id=bob.id).count() == 1
    assert await Message.all().count() == 1


async def test_str_of_each_model(faceplate_db: DatabaseTarget) -> None:
    user = await User.create(email="ada@example.com", subject_id="a")
    chat = await Conversation.create(user=user)
    assert str(user) == "ada@example.com"
    assert str(chat) == "(untitled conversation)"
    assert str(await Message.create(conversation=chat, role=Role.USER, content="hi")) == "user: hi"
    assert str(await MCPConfig.create(user=user, name="todo", config={})) == "todo"
    assert str(await Task.create(user=user, title="t")) == "[ ] t"
