"""Conversations: a user's chat threads, listed by latest activity."""

from __future__ import annotations

import uuid

from uuid6 import uuid7

from faceplate_models.models import TITLE_MAX, Conversation
from faceplate_models.store import cursors
from faceplate_models.store.rows import (
    Page,
    builder,
    columns,
    execute,
    fetch,
    fetchrow,
    insert_owned,
    missing,
    now,
    page,
    write_row,
)
from faceplate_models.store.validation import as_uuid, page_size, required_text

_COLUMNS = columns(Conversation)
_conversations = builder(Conversation, _COLUMNS)

# The listing queries are module constants so that the EXPLAIN tests check these very strings.
CONVERSATIONS_SQL = f"""SELECT {_COLUMNS} FROM faceplate.conversations
    WHERE user_id = $1 ORDER BY updated_at DESC, id DESC LIMIT $2"""
CONVERSATIONS_AFTER_SQL = f"""SELECT {_COLUMNS} FROM faceplate.conversations
    WHERE user_id = $1 AND (updated_at, id) < ($3, $4) ORDER BY updated_at DESC, id DESC LIMIT $2"""


def _title(title: object) -> str | None:
    return None if title is None else required_text("title", title, TITLE_MAX)


async def create_conversation(
    *, user_id: uuid.UUID | str, title: str | None = None
) -> Conversation:
    """Start a new, empty conversation."""
    uid = as_uuid("user_id", user_id)
    name = _title(title)
    row = await insert_owned(
        "conversations",
        _COLUMNS,
        f"""INSERT INTO faceplate.conversations ({_COLUMNS})
            VALUES ($2, $1, $3, NULL, 0, $4, $4) ON CONFLICT (id) DO NOTHING
            RETURNING {_COLUMNS}""",
        uid,
        uuid7(),
        name,
        now(),
    )
    return _conversations(row)


async def get_conversation(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str
) -> Conversation:
    """One conversation of the user."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    row = await fetchrow(
        f"SELECT {_COLUMNS} FROM faceplate.conversations WHERE id = $1 AND user_id = $2",
        cid,
        uid,
        user=uid,
    )
    if row is None:
        raise missing("conversation", cid)
    return _conversations(row)


async def list_conversations(
    *, user_id: uuid.UUID | str, limit: int = 50, cursor: str | None = None
) -> Page[Conversation]:
    """The user's conversations, latest activity first, `limit` at a time.

    A conversation that gets a new message while someone pages moves to the front; it is
    not shown again on a later page, nor lost, only the page it was on moves.
    """
    uid = as_uuid("user_id", user_id)
    size = page_size(limit)
    if cursor is None:
        rows = await fetch(CONVERSATIONS_SQL, uid, size + 1, user=uid)
    else:
        position = cursors.decode("cursor", cursor, cursors.CONVERSATIONS, uid, None)
        rows = await fetch(CONVERSATIONS_AFTER_SQL, uid, size + 1, *position, user=uid)
    return page(
        rows,
        size,
        _conversations,
        lambda at, row_id: cursors.encode(cursors.CONVERSATIONS, uid, None, at, row_id),
        "updated_at",
    )


async def rename_conversation(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str, title: str | None
) -> Conversation:
    """Give the conversation a new title (None clears it); this counts as activity."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    row = await write_row(
        f"""UPDATE faceplate.conversations SET title = $3, updated_at = GREATEST(updated_at, $4)
            WHERE id = $1 AND user_id = $2 RETURNING {_COLUMNS}""",
        cid,
        uid,
        _title(title),
        now(),
        user=uid,
    )
    if row is None:
        raise missing("conversation", cid)
    return _conversations(row)


async def delete_conversation(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str
) -> None:
    """Delete the conversation and all its messages (under the long statement timeout, since
    a long history takes a while)."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    status = await execute(
        "DELETE FROM faceplate.conversations WHERE id = $1 AND user_id = $2",
        cid,
        uid,
        user=uid,
        long=True,
    )
    if status == "DELETE 0":
        raise missing("conversation", cid)


__all__ = [
    "CONVERSATIONS_AFTER_SQL",
    "CONVERSATIONS_SQL",
    "create_conversation",
    "delete_conversation",
    "get_conversation",
    "list_conversations",
    "rename_conversation",
]
