"""A user's data out: everything the package holds for a user, as a zip written while it is
read (`export_user`), in a bounded amount of memory whatever the user's size.

The zip is shaped like ChatGPT's own export, so that tools that read those read it, and this
package's `import_conversations` reads it back: `conversations.json` holds each
conversation with ChatGPT's `mapping` (every message of the tree, its parent and children)
and `current_node` (the active leaf), and, under `faceplate` keys, what ChatGPT's shape has
no place for: a message's tool calls and results, model, provider, usage and cost, thinking,
metadata, feedback and status; a conversation's settings, metadata, folder and tags (by id,
named in `folders.json` and `tags.json`), archive, pin and trash. Beside it: `export.json`
(the format and its version), `user.json`, `tasks.json`, `mcp_configs.json` (secret names
only, never values), `shares.json`, `folders.json`, `tags.json` and `usage.json` (the daily
totals). docs/guide.md, "A user's data in and out", documents every field.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any, Final

import asyncpg

from faceplate_models.formats.shape import KEYS
from faceplate_models.store._rows import fetch, fetchrow, missing
from faceplate_models.validation import as_uuid

#: Rows read per statement: a batch of messages, or of conversations.
BATCH: Final = 500
#: The format's name and version, in `export.json`.
FORMAT: Final = "faceplate-export"
VERSION: Final = 1

# Folders and tags by id: `folders.json` and `tags.json` name them.
CONVERSATIONS_SQL: Final = """SELECT id, title, created_at, updated_at, active_leaf_id,
        settings, metadata, archived_at, pinned_at, temporary, trashed_at, folder_id, tag_ids
    FROM faceplate.conversations
    WHERE user_id = $1 AND (updated_at, id) > ($2, $3)
    ORDER BY updated_at, id LIMIT $4"""
MESSAGES_SQL: Final = """SELECT m.id, m.parent_id, m.role, m.content, m.tool_calls,
        m.tool_results, m.model, m.provider, m.finish_reason, m.usage, m.cost, m.thinking,
        m.metadata, m.created_at, m.status, m.failure,
        ARRAY(SELECT k.id::text FROM faceplate.messages k  -- text[]: see engine.texts
              WHERE k.parent_id = m.id AND k.user_id = $2 ORDER BY k.id) AS children,
        (SELECT json_build_object('rating', f.rating, 'reasons', f.reasons,
                                  'comment', f.comment)
         FROM faceplate.feedback f WHERE f.message_id = m.id) AS feedback
    FROM faceplate.messages m
    WHERE m.conversation_id = $1 AND m.user_id = $2 AND (m.created_at, m.id) > ($3, $4)
    ORDER BY m.created_at, m.id LIMIT $5"""
# The newest message, which is the one shown when no leaf was chosen.
_NEWEST_SQL: Final = """SELECT id FROM faceplate.messages WHERE conversation_id = $1
    AND user_id = $2 ORDER BY created_at DESC, id DESC LIMIT 1"""
TASKS_SQL: Final = """SELECT id, title, description, completed, created_at, updated_at
    FROM faceplate.tasks WHERE user_id = $1 AND (created_at, id) > ($2, $3)
    ORDER BY created_at, id LIMIT $4"""
#: The user's small tables, whole (each bounded by a per-user limit), by file.
_WHOLE: Final = {
    "mcp_configs.json": """SELECT name, config, enabled, secret_names, created_at,
        updated_at FROM faceplate.mcp_configs WHERE user_id = $1 ORDER BY name""",
    "folders.json": """SELECT id, name, created_at FROM faceplate.folders
        WHERE user_id = $1 ORDER BY name""",
    "tags.json": """SELECT id, name, created_at FROM faceplate.tags
        WHERE user_id = $1 ORDER BY name""",
    "shares.json": """SELECT id, conversation_id, leaf_id, live, created_at, updated_at
        FROM faceplate.shares WHERE user_id = $1 ORDER BY created_at, id""",
    "usage.json": """SELECT day, provider, model, answers, input_tokens,
        cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost,
        unpriced FROM faceplate.usage_days WHERE user_id = $1 ORDER BY day, provider, model""",
}
_USER_SQL: Final = (
    "SELECT id, email, subject_id, created_at, updated_at FROM faceplate.users WHERE id = $1"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: A message's fields kept under `metadata.faceplate`: what `append_message` takes beyond its
#: role and text, and what the store made of it.
SAVED: Final = (*sorted(KEYS - {"role", "content"}), "cost", "feedback", "status", "failure")
_FIRST: Final = uuid.UUID(int=0)


def _plain(value: Any) -> Any:
    """A column as JSON: times as ISO 8601, ids as strings, JSON columns decoded."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | asyncpg.pgproto.pgproto.UUID):
        return str(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _record(row: asyncpg.Record, decoded: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        key: json.loads(value) if key in decoded and value is not None else _plain(value)
        for key, value in row.items()
    }


def _time(at: datetime | None) -> float | None:
    return None if at is None else at.timestamp()


def _node(row: asyncpg.Record) -> dict[str, Any]:
    """A message as a node of ChatGPT's `mapping`, with the package's fields beside it."""
    message = _record(
        row,
        ("tool_calls", "tool_results", "usage", "thinking", "metadata", "feedback"),
    )
    text = message["content"]
    return {
        "id": message["id"],
        "parent": message["parent_id"],
        "children": message["children"],
        "message": {
            "id": message["id"],
            "author": {"role": message["role"], "name": None, "metadata": {}},
            "create_time": _time(row["created_at"]),
            "update_time": None,
            "content": {"content_type": "text", "parts": [text] if text is not None else []},
            "status": "finished_successfully" if row["status"] is None else "in_progress",
            "end_turn": None,
            "weight": 1.0,
            "metadata": {
                "model_slug": message["model"],
                "faceplate": {key: message[key] for key in SAVED if message[key] is not None},
            },
            "recipient": "all",
        },
    }


class _Sink(io.RawIOBase):
    """Where the zip is written: bytes kept until the export hands them on."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        taken, self._parts = b"".join(self._parts), []
        return taken


async def export_user(*, user_id: uuid.UUID | str) -> AsyncIterator[bytes]:
    """Everything held for the user, as the bytes of a zip, yielded as they are made (write
    them to a file or a response as they come). Memory stays bounded: conversations and
    their messages are read `BATCH` at a time. `NotFound` for no such user."""
    uid = as_uuid("user_id", user_id)
    user = await fetchrow(_USER_SQL, uid, user=uid)
    if user is None:
        raise missing("user", uid)
    import zipfile  # on first use: a process that never exports does not pay its import

    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        described = {"format": FORMAT, "version": VERSION, "user_id": str(uid)}
        archive.writestr("export.json", json.dumps(described))
        archive.writestr("user.json", json.dumps(_record(user)))
        with archive.open("conversations.json", "w", force_zip64=True) as out:
            out.write(b"[")
            first = True
            async for conversation in _conversations(uid):
                out.write(b"" if first else b",")
                first = False
                async for piece in conversation:
                    out.write(piece)
                    if chunk := sink.take():
                        yield chunk
            out.write(b"]")
        with archive.open("tasks.json", "w", force_zip64=True) as out:
            out.write(b"[")
            after: tuple[datetime, uuid.UUID] = (_EPOCH, _FIRST)
            first = True
            while rows := await fetch(TASKS_SQL, uid, *after, BATCH, user=uid):
                for row in rows:
                    out.write((b"" if first else b",") + json.dumps(_record(row)).encode())
                    first = False
                after = (rows[-1]["created_at"], rows[-1]["id"])
                if chunk := sink.take():
                    yield chunk
            out.write(b"]")
        for name, sql in _WHOLE.items():
            rows = await fetch(sql, uid, user=uid)
            records = [_record(row, ("config", "secret_names")) for row in rows]
            archive.writestr(name, json.dumps(records))
            if chunk := sink.take():
                yield chunk
    yield sink.take()


async def _conversations(uid: uuid.UUID) -> AsyncIterator[AsyncIterator[bytes]]:
    """Each conversation of the user, as the pieces of its JSON."""
    after: tuple[datetime, uuid.UUID] = (_EPOCH, _FIRST)
    while rows := await fetch(CONVERSATIONS_SQL, uid, *after, BATCH, user=uid):
        for row in rows:
            yield _conversation(uid, row)
        after = (rows[-1]["updated_at"], rows[-1]["id"])


async def _conversation(uid: uuid.UUID, row: asyncpg.Record) -> AsyncIterator[bytes]:
    cid = row["id"]
    leaf = row["active_leaf_id"]
    if leaf is None:
        newest = await fetchrow(_NEWEST_SQL, cid, uid, user=uid)
        leaf = None if newest is None else newest["id"]
    conversation = _record(row, ("settings", "metadata", "tag_ids"))
    head = {
        "id": str(cid),
        "conversation_id": str(cid),
        "title": row["title"],
        "create_time": _time(row["created_at"]),
        "update_time": _time(row["updated_at"]),
        "current_node": None if leaf is None else str(leaf),
        "faceplate": {
            key: conversation[key]
            for key in (
                "settings",
                "metadata",
                "folder_id",
                "tag_ids",
                "archived_at",
                "pinned_at",
                "temporary",
                "trashed_at",
            )
        },
    }
    yield json.dumps(head)[:-1].encode() + b', "mapping": {'
    after: tuple[datetime, uuid.UUID] = (_EPOCH, _FIRST)
    first = True
    while messages := await fetch(MESSAGES_SQL, cid, uid, *after, BATCH, user=uid):
        nodes = (
            json.dumps(str(m["id"])) + ": " + json.dumps(_node(m), ensure_ascii=False)
            for m in messages
        )
        yield ("" if first else ", ").encode() + ", ".join(nodes).encode()
        first = False
        after = (messages[-1]["created_at"], messages[-1]["id"])
    yield b"}}"


__all__ = [
    "BATCH",
    "CONVERSATIONS_SQL",
    "FORMAT",
    "MESSAGES_SQL",
    "SAVED",
    "TASKS_SQL",
    "VERSION",
    "export_user",
]
