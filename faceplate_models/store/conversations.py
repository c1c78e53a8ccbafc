"""Conversations: a user's chat threads, listed by latest activity, with their settings (model,
provider, system prompt, enabled MCP servers) and the application's own metadata."""

from __future__ import annotations

import uuid
from typing import Any, Final

import asyncpg

from faceplate_models.engine import Connection, current
from faceplate_models.errors import ValidationError
from faceplate_models.formats import shape
from faceplate_models.models import (
    MCP_NAME_MAX,
    MODEL_NAME_MAX,
    PROVIDER_MAX,
    TITLE_MAX,
    Conversation,
)
from faceplate_models.store import _cursors as cursors
from faceplate_models.store._rows import (
    Page,
    below_limit,
    builder,
    columns,
    execute,
    fetch,
    fetchrow,
    insert_owned,
    missing,
    now,
    page,
    run,
    within_budget,
    write_row,
)
from faceplate_models.validation import (
    MAX_PAGE_BYTES,
    UNSET,
    Unset,
    as_uuid,
    flag,
    json_text,
    new_key,
    page_size,
    required_text,
    text,
)

_COLUMNS = columns(Conversation)
_conversations = builder(Conversation, _COLUMNS)

# The listing queries are module constants so that the EXPLAIN tests check these very strings.
# A conversation's weight against a page's byte budget: its title, settings (a system prompt
# may be long) and metadata.
_SIZE: Final = (
    "coalesce(octet_length(title), 0) + coalesce(octet_length(settings::text), 0)"
    " + coalesce(octet_length(metadata::text), 0)"
)
_LATEST: Final = "updated_at DESC, id DESC"
#: A user's conversations, latest activity first: $1 user, $2 limit, then the page's byte
#: budget ($3), or the cursor ($3, $4) and the budget ($5).
CONVERSATIONS_SQL = within_budget(
    f"""SELECT {_COLUMNS}, {_SIZE} AS size FROM faceplate.conversations
    WHERE user_id = $1 ORDER BY {_LATEST} LIMIT $2""",
    columns=_COLUMNS,
    order=_LATEST,
    budget="$3",
)
CONVERSATIONS_AFTER_SQL = within_budget(
    f"""SELECT {_COLUMNS}, {_SIZE} AS size FROM faceplate.conversations
    WHERE user_id = $1 AND (updated_at, id) < ($3, $4) ORDER BY {_LATEST} LIMIT $2""",
    columns=_COLUMNS,
    order=_LATEST,
    budget="$5",
)


#: What a conversation's settings may hold, and the most enabled MCP servers.
SETTINGS_KEYS: Final = ("model", "provider", "system_prompt", "mcp_servers")
MAX_MCP_SERVERS: Final = 64
#: Longest system prompt, in characters.
MAX_SYSTEM_PROMPT: Final = 100_000


def _title(title: object) -> str | None:
    return None if title is None else required_text("title", title, TITLE_MAX)


def _settings(value: object) -> str | None:
    """A conversation's settings, validated and encoded: `model`, `provider`,
    `system_prompt` (text) and `mcp_servers` (names of the user's MCP configs), each optional."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - set(SETTINGS_KEYS):
        raise ValidationError("settings", f"must be a dict of {', '.join(SETTINGS_KEYS)}")
    settings: dict[str, Any] = {}
    for key, limit in (
        ("model", MODEL_NAME_MAX),
        ("provider", PROVIDER_MAX),
        ("system_prompt", MAX_SYSTEM_PROMPT),
    ):
        if value.get(key) is not None:
            settings[key] = text(f"settings.{key}", value[key], limit)
    servers = value.get("mcp_servers")
    if servers is not None:
        if not isinstance(servers, list | tuple) or len(servers) > MAX_MCP_SERVERS:
            raise ValidationError(
                "settings.mcp_servers", f"must be a list of at most {MAX_MCP_SERVERS} names"
            )
        names = [required_text("settings.mcp_servers", name, MCP_NAME_MAX) for name in servers]
        settings["mcp_servers"] = list(dict.fromkeys(names))
    return json_text("settings", settings)


async def create_conversation(
    *,
    user_id: uuid.UUID | str,
    title: str | None = None,
    settings: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    conversation_id: uuid.UUID | str | None = None,
) -> Conversation:
    """Start a new, empty conversation, with its settings (`model`, `provider`,
    `system_prompt`, `mcp_servers`) and the application's `metadata`, if any.

    `conversation_id`, a uuid7 the caller made, makes the call repeatable: a retry with
    the same id returns the conversation stored the first time, as it is now."""
    uid = as_uuid("user_id", user_id)
    key = new_key("conversation_id", conversation_id)
    name = _title(title)
    row = await insert_owned(
        "conversations",
        _COLUMNS,
        f"""INSERT INTO faceplate.conversations ({_COLUMNS})
            SELECT $2, $1, $3, NULL, 0, $4::jsonb, $5::jsonb, 0, $6::timestamptz, $6
            WHERE {below_limit("conversations", "$7")}
            ON CONFLICT (id) DO NOTHING RETURNING {_COLUMNS}""",
        uid,
        key,
        name,
        _settings(settings),
        shape.metadata("metadata", metadata),
        now(),
        limit="conversations",
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
        rows = await fetch(CONVERSATIONS_SQL, uid, size + 1, MAX_PAGE_BYTES, user=uid)
    else:
        position = cursors.decode("cursor", cursor, cursors.CONVERSATIONS, uid, None)
        rows = await fetch(
            CONVERSATIONS_AFTER_SQL, uid, size + 1, *position, MAX_PAGE_BYTES, user=uid
        )
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
        conversation=cid,
    )
    if row is None:
        raise missing("conversation", cid)
    return _conversations(row)


UPDATE_SQL: Final = f"""UPDATE faceplate.conversations SET
        settings = CASE WHEN $3 THEN $4::jsonb ELSE settings END,
        metadata = CASE WHEN NOT $5 THEN metadata
                        WHEN $6 OR metadata IS NULL THEN $7::jsonb
                        ELSE metadata || $7::jsonb END
    WHERE id = $1 AND user_id = $2
    RETURNING {_COLUMNS},
        octet_length(metadata::text) > {shape.MAX_METADATA_BYTES} AS too_large"""


async def update_conversation(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    settings: dict[str, Any] | Unset | None = UNSET,
    metadata: dict[str, Any] | Unset | None = UNSET,
    replace_metadata: bool = False,
) -> Conversation:
    """Change the conversation's settings (replaced whole; None clears them) and its
    metadata (merged key by key into the stored object, or, with `replace_metadata=True`,
    replacing it; None clears it); what is not passed stays. Not activity: the conversation
    keeps its place in the listing. A merged object larger than MAX_METADATA_BYTES is a
    `ValidationError`, and nothing is written."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    new_settings = None if settings is UNSET else _settings(settings)
    new_metadata = None if metadata is UNSET else shape.metadata("metadata", metadata)
    replacing = flag("replace_metadata", replace_metadata) or metadata is None
    args = (cid, uid, settings is not UNSET, new_settings, metadata is not UNSET)
    client = current()

    async def update(conn: Connection) -> asyncpg.Record:
        async with client.atomic(conn):
            row = await conn.fetchrow(UPDATE_SQL, *args, replacing, new_metadata)
            if row is not None and row["too_large"]:
                raise ValidationError(
                    "metadata",
                    f"merged into the stored object, is larger than {shape.MAX_METADATA_BYTES} "
                    "bytes as JSON",
                )
        if row is None:
            raise missing("conversation", cid)
        return row

    return _conversations(await run(update, user=uid, conversation=cid))


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
        conversation=cid,
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
    "update_conversation",
]
