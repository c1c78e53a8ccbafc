"""Share links: a conversation shown read-only to whoever has the token, as it was up to a
message (a snapshot: what came later never shows) or, `live`, as it is.

A token is 192 random bits, given to the caller once and stored only as its SHA-256: a
database that leaks does not leak working links. A token is found by its hash through a
unique index, and the stored hash is compared again in constant time. A revoked or unknown
token, or one whose conversation is in the trash, is `NotFound`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Final

import asyncpg

from faceplate_models.engine import Connection, current
from faceplate_models.errors import ValidationError
from faceplate_models.models import Message, Share
from faceplate_models.store import _cursors as cursors
from faceplate_models.store._rows import (
    HistoryPage,
    Page,
    below_limit,
    builder,
    columns,
    delete_owned,
    fetch,
    fetchrow,
    insert_owned,
    missing,
    now,
    run,
)
from faceplate_models.store.history import LEAF_SQL, get_history
from faceplate_models.validation import as_uuid, flag, new_key, page_size

_COLUMNS = columns(Share)
_shares = builder(Share, _COLUMNS)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")


@dataclass(frozen=True)
class ShareLink:
    """A new share and its token: the only time the token is known; store or show it now."""

    share: Share
    token: str


@dataclass(frozen=True)
class SharedConversation:
    """What a share shows: the conversation's title and a page of its messages."""

    share: Share
    title: str | None
    history: HistoryPage[Message]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


#: The message a snapshot ends at: the one named (on the conversation), or the end of the
#: active path. $1 conversation, $2 user, $3 the message or NULL.
_LEAF_OF_SQL: Final = f"""SELECT EXISTS (
        SELECT 1 FROM faceplate.conversations WHERE id = $1 AND user_id = $2
    ) AS found,
    CASE WHEN $3::uuid IS NULL THEN ({LEAF_SQL})
         ELSE (SELECT id FROM faceplate.messages
               WHERE id = $3 AND conversation_id = $1 AND user_id = $2)
    END AS leaf"""


async def _leaf(
    conn: Connection, cid: uuid.UUID, uid: uuid.UUID, leaf: uuid.UUID | None
) -> uuid.UUID | None:
    row = await conn.fetchrow(_LEAF_OF_SQL, cid, uid, leaf)
    if row is None or not row["found"]:
        raise missing("conversation", cid)
    if leaf is not None and row["leaf"] is None:
        raise missing("message", leaf)
    found: uuid.UUID | None = row["leaf"]
    return found


async def share_conversation(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    leaf: uuid.UUID | str | None = None,
    live: bool = False,
) -> ShareLink:
    """A new read-only link to the conversation: a snapshot of the path to message `leaf`
    (by default the end of the active path now), or with `live=True` the conversation as it
    is whenever the link is opened. The token is in the result only: keep it."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    end = None if leaf is None else as_uuid("leaf", leaf)
    if flag("live", live) and end is not None:
        raise ValidationError("leaf", "names a snapshot's end; a live share has none")
    token = secrets.token_urlsafe(24)

    async def snapshot(conn: Connection) -> tuple[object, ...]:
        return (None if live else await _leaf(conn, cid, uid, end),)

    row = await insert_owned(
        "shares",
        _COLUMNS,
        f"""INSERT INTO faceplate.shares ({_COLUMNS})
            SELECT $2, $1, $3, $4, $7, $5, $6, $6 WHERE {below_limit("shares", "$8")}
            ON CONFLICT (id) DO NOTHING RETURNING {_COLUMNS}""",
        uid,
        new_key("share_id", None),
        cid,
        _digest(token),
        live,
        now(),
        limit="shares",
        then=snapshot,
    )
    return ShareLink(_shares(row), token)


UPDATE_SQL: Final = f"""UPDATE faceplate.shares SET leaf_id = $3, live = false, updated_at = $4
    WHERE id = $1 AND user_id = $2 RETURNING {_COLUMNS}"""


async def update_share(
    *, user_id: uuid.UUID | str, share_id: uuid.UUID | str, leaf: uuid.UUID | str | None = None
) -> Share:
    """Move a share's snapshot to message `leaf` (by default the end of the active path now),
    keeping its token; a live share becomes a snapshot there."""
    uid = as_uuid("user_id", user_id)
    sid = as_uuid("share_id", share_id)
    end = None if leaf is None else as_uuid("leaf", leaf)
    client = current()

    async def move(conn: Connection) -> asyncpg.Record:
        async with client.atomic(conn):
            cid = await conn.fetchval(
                "SELECT conversation_id FROM faceplate.shares WHERE id = $1 AND user_id = $2",
                sid,
                uid,
            )
            if cid is None:
                raise missing("share", sid)
            row = await conn.fetchrow(UPDATE_SQL, sid, uid, await _leaf(conn, cid, uid, end), now())
        if row is None:
            raise missing("share", sid)
        return row

    return _shares(await run(move, user=uid))


async def revoke_share(*, user_id: uuid.UUID | str, share_id: uuid.UUID | str) -> None:
    """Revoke the share: its token opens nothing from now on."""
    await delete_owned(
        "shares", "share", as_uuid("share_id", share_id), as_uuid("user_id", user_id)
    )


#: A user's shares, newest first: $1 user, $2 limit, then the cursor ($3, $4).
SHARES_SQL: Final = f"""SELECT {_COLUMNS} FROM faceplate.shares WHERE user_id = $1
    ORDER BY created_at DESC, id DESC LIMIT $2"""
SHARES_AFTER_SQL: Final = f"""SELECT {_COLUMNS} FROM faceplate.shares
    WHERE user_id = $1 AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $2"""


async def list_shares(
    *, user_id: uuid.UUID | str, limit: int = 50, cursor: str | None = None
) -> Page[Share]:
    """The user's shares, newest first (without tokens: only their hashes are kept)."""
    uid = as_uuid("user_id", user_id)
    size = page_size(limit)
    if cursor is None:
        rows = await fetch(SHARES_SQL, uid, size + 1, user=uid)
    else:
        position = cursors.decode("cursor", cursor, cursors.SHARES, uid, None)
        rows = await fetch(SHARES_AFTER_SQL, uid, size + 1, *position, user=uid)
    items = _shares.many(rows[:size])
    if len(rows) <= size:
        return Page(items, None)
    last = rows[size - 1]
    return Page(items, cursors.encode(cursors.SHARES, uid, None, last["created_at"], last["id"]))


SHARED_SQL: Final = f"""SELECT {", ".join(f"s.{c}" for c in _COLUMNS.split(", "))}, c.title
    FROM faceplate.shares s JOIN faceplate.conversations c
        ON c.id = s.conversation_id AND c.trashed_at IS NULL
    WHERE s.token_hash = $1"""


async def get_shared(
    *, token: str, limit: int = 100, before: str | None = None
) -> SharedConversation:
    """What the share with `token` shows, for anyone who has the token (no user): the
    newest `limit` messages of its path (a snapshot's, or the live active path), and
    `before=` the page's `next_cursor` for older ones."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise ValidationError("token", "is not a share token")
    size = page_size(limit)
    digest = _digest(token)
    row = await fetchrow(SHARED_SQL, digest, user=None)
    if row is None or not hmac.compare_digest(bytes(row["token_hash"]), digest):
        raise missing("share", "with this token")
    share = _shares(row)
    if not share.live and share.leaf_id is None:  # a snapshot of an empty conversation
        history: HistoryPage[Message] = HistoryPage([], None)
    else:
        history = await get_history(
            user_id=share.user_id,
            conversation_id=share.conversation_id,
            limit=size,
            before=before,
            leaf=None if share.live else share.leaf_id,
        )
    return SharedConversation(share, row["title"], history)


__all__ = [
    "SHARED_SQL",
    "SHARES_SQL",
    "ShareLink",
    "SharedConversation",
    "get_shared",
    "list_shares",
    "revoke_share",
    "share_conversation",
    "update_share",
]
