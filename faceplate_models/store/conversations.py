"""Conversations: a user's chat threads, listed by latest activity, with their settings (model,
provider, system prompt, enabled MCP servers) and the application's own metadata."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any, Final, cast

import asyncpg

from faceplate_models.engine import Connection
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
    cut,
    execute,
    fetchrow,
    insert_owned,
    missing,
    now,
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

_c = ", ".join(f"c.{column}" for column in _COLUMNS.split(", "))
# A conversation's weight against a page's byte budget: its title, settings (a system prompt
# may be long) and metadata.
_SIZE: Final = (
    "coalesce(octet_length(c.title), 0) + coalesce(octet_length(c.settings::text), 0)"
    " + coalesce(octet_length(c.metadata::text), 0)"
)


def _key(trashed: bool) -> str:
    """What a listing is ordered by: the trash by when each was trashed, others by activity."""
    return "trashed_at" if trashed else "updated_at"


@functools.cache
def listing_sql(
    *,
    archived: bool | None = False,
    pinned: bool | None = None,
    folder: bool = False,
    tag: bool = False,
    trashed: bool = False,
    after: bool = False,
) -> str:
    """A user's conversations, latest activity first, filtered: $1 user, $2 limit, then the
    folder's or the tag's id, then the cursor (two parameters), then the page's byte budget.

    Each filter reads one index in activity order (`Conversation.Meta.indexes`): the
    sidebar's partial indexes, the folder's, or a tag's rows in their order (each carries
    its conversation's activity, which a trigger keeps), each joined to its conversation."""
    where = ["c.user_id = $1", f"c.trashed_at IS {'NOT ' * trashed}NULL"]
    if archived is not None and not trashed:
        where.append(f"c.archived_at IS {'NOT ' * archived}NULL")
    if pinned is not None:
        where.append(f"c.pinned_at IS {'NOT ' * pinned}NULL")
    parameters = 2 + (folder or tag)
    if folder:
        where.append(f"c.folder_id = ${parameters}")
    cursor = f"(${parameters + 1}, ${parameters + 2})" if after else None
    key = _key(trashed)
    parameters += 2 * after
    if tag:
        # The tag's rows in order, each joined to its conversation, until the page is full.
        tagged = [f"t.tag_id = ${parameters - 2 * after}", "t.user_id = $1"]
        if cursor:
            tagged.append(f"(t.updated_at, t.conversation_id) < {cursor}")
        columns = _c.replace("c.id", "t.conversation_id AS id").replace(
            "c.updated_at", "t.updated_at AS updated_at"
        )
        select = f"""SELECT {columns}, size
        FROM faceplate.conversation_tags t, LATERAL (
            SELECT *, {_SIZE} AS size FROM faceplate.conversations c
            WHERE c.id = t.conversation_id AND {" AND ".join(where)} OFFSET 0) c
        WHERE {" AND ".join(tagged)}
        ORDER BY t.updated_at DESC, t.conversation_id DESC LIMIT $2"""
    else:
        if cursor:
            where.append(f"(c.{key}, c.id) < {cursor}")
        select = f"""SELECT {_c}, {_SIZE} AS size FROM faceplate.conversations c
        WHERE {" AND ".join(where)} ORDER BY c.{key} DESC, c.id DESC LIMIT $2"""
    return within_budget(
        select, columns=_COLUMNS, order=f"{key} DESC, id DESC", budget=f"${parameters + 1}"
    )


# The default listing's queries are module constants so that the EXPLAIN tests and the
# benchmarks run these very strings: $1 user, $2 limit, then the page's byte budget ($3),
# or the cursor ($3, $4) and the budget ($5).
CONVERSATIONS_SQL: Final = listing_sql()
CONVERSATIONS_AFTER_SQL: Final = listing_sql(after=True)


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
    temporary: bool = False,
) -> Conversation:
    """Start a new, empty conversation, with its settings (`model`, `provider`,
    `system_prompt`, `mcp_servers`) and the application's `metadata`, if any.

    A `temporary` conversation is deleted by `purge` once FACEPLATE_RETENTION_TEMPORARY_DAYS
    have passed since its creation. `conversation_id`, a uuid7 the caller made, makes the
    call repeatable: a retry with the same id returns the conversation stored the first
    time, as it is now."""
    uid = as_uuid("user_id", user_id)
    key = new_key("conversation_id", conversation_id)
    name = _title(title)
    row = await insert_owned(
        "conversations",
        _COLUMNS,
        f"""INSERT INTO faceplate.conversations ({_COLUMNS})
            SELECT $2, $1, $3, NULL, 0, $4::jsonb, $5::jsonb, 0, NULL, NULL, NULL, NULL, $7,
                NULL, $6::timestamptz, $6
            WHERE {below_limit("conversations", "$8")}
            ON CONFLICT (id) DO NOTHING RETURNING {_COLUMNS}""",
        uid,
        key,
        name,
        _settings(settings),
        shape.metadata("metadata", metadata),
        now(),
        flag("temporary", temporary),
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
    *,
    user_id: uuid.UUID | str,
    limit: int = 50,
    cursor: str | None = None,
    archived: bool | None = False,
    folder_id: uuid.UUID | str | None = None,
    tag_id: uuid.UUID | str | None = None,
    pinned_first: bool = False,
    trashed: bool = False,
) -> Page[Conversation]:
    """The user's conversations, latest activity first, `limit` at a time: by default the
    ones not archived (`archived=True`: the archive; None: both), in one folder or with
    one tag when given, the pinned ones first with `pinned_first=True`. `trashed=True`
    lists the trash instead (archived or not), the latest trashed first. Trashed
    conversations appear nowhere else.

    A conversation that gets a new message while someone pages moves to the front; it is
    not shown again on a later page, nor lost, only the page it was on moves.
    """
    uid = as_uuid("user_id", user_id)
    size = page_size(limit)
    shown = flag("archived", archived, optional=True)
    folder = None if folder_id is None else as_uuid("folder_id", folder_id)
    tag = None if tag_id is None else as_uuid("tag_id", tag_id)
    pinned_first = bool(flag("pinned_first", pinned_first))
    if flag("trashed", trashed) and (folder or tag or pinned_first):
        raise ValidationError("trashed", "lists the trash alone: no folder_id, tag_id or pinned")
    if folder and tag:
        raise ValidationError("tag_id", "filters alone: pass folder_id or tag_id, not both")
    # The default listing's scope is None: its cursors are the ones it always issued.
    filters = (shown, folder, tag, pinned_first, trashed)
    scope = None if filters == (False, None, None, False, False) else filters
    kinds = (cursors.PINNED, cursors.CONVERSATIONS) if pinned_first else (cursors.CONVERSATIONS,)
    kind, position = kinds[0], cast(tuple[object, ...], ())
    if cursor is not None:
        kind, *at = cursors.decode_any("cursor", cursor, kinds, uid, scope)
        position = (*at,)
    filtered = [value for value in (folder, tag) if value]

    async def read(conn: Connection) -> tuple[list[tuple[str, asyncpg.Record]], bool]:
        rows: list[tuple[str, asyncpg.Record]] = []
        after: tuple[object, ...] = position
        for part in kinds[kinds.index(kind) :]:
            sql = listing_sql(
                archived=shown,
                pinned=(part == cursors.PINNED) if pinned_first else None,
                folder=bool(folder),
                tag=bool(tag),
                trashed=trashed,
                after=bool(after),
            )
            found = await conn.fetch(
                sql, uid, size + 1 - len(rows), *filtered, *after, MAX_PAGE_BYTES
            )
            rows += [(part, row) for row in found]
            if cut(found) or len(rows) > size:  # the page goes on after its last row
                return rows[:size], True
            after = ()
        return rows, False

    rows, goes_on = await run(read, user=uid, read=True)
    items = _conversations.many([row for _, row in rows])
    if not goes_on:
        return Page(items, None)
    part, last = rows[-1]
    return Page(items, cursors.encode(part, uid, scope, last[_key(trashed)], last["id"]))


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


def _new_metadata(given: str, replacing: str, value: str) -> str:
    """The metadata an update leaves (parameters: whether it was given, whether it replaces,
    the value), computed on the row as locked: a merge racing another loses neither's keys."""
    return f"""CASE WHEN NOT {given} THEN metadata
        WHEN {replacing} OR metadata IS NULL THEN {value}::jsonb ELSE metadata || {value}::jsonb
        END"""


UPDATE_SQL: Final = f"""UPDATE faceplate.conversations SET
        settings = CASE WHEN $3 THEN $4::jsonb ELSE settings END,
        metadata = {_new_metadata("$5", "$6", "$7")}
    WHERE id = $1 AND user_id = $2 AND coalesce(octet_length(
        ({_new_metadata("$5", "$6", "$7")})::text), 0) <= {shape.MAX_METADATA_BYTES}
    RETURNING {_COLUMNS}"""
# Why nothing was updated: no row is the user's, or the merged metadata is too large.
_TOO_LARGE_SQL: Final = f"""SELECT octet_length(({_new_metadata("$3", "$4", "$5")})::text)
        > {shape.MAX_METADATA_BYTES}
    FROM faceplate.conversations WHERE id = $1 AND user_id = $2"""


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

    async def update(conn: Connection) -> asyncpg.Record:
        row = await conn.fetchrow(UPDATE_SQL, *args, replacing, new_metadata)
        if row is not None:
            return row
        given = metadata is not UNSET
        if await conn.fetchval(_TOO_LARGE_SQL, cid, uid, given, replacing, new_metadata):
            raise ValidationError(
                "metadata",
                f"merged into the stored object, is larger than {shape.MAX_METADATA_BYTES} "
                "bytes as JSON",
            )
        raise missing("conversation", cid)

    return _conversations(await run(update, user=uid, conversation=cid))


async def delete_conversation(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str, permanently: bool = True
) -> None:
    """Delete the conversation and all its messages (under the long statement timeout, since
    a long history takes a while); with `permanently=False`, move it to the trash instead,
    from which `restore_conversation` brings it back until `purge` deletes it. Neither is
    activity."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    if not flag("permanently", permanently):
        await _trash(uid, cid, now())
        return
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


# Trashing again keeps the first moment: the trash period runs from it.
TRASH_SQL: Final = f"""UPDATE faceplate.conversations SET trashed_at = $3
    WHERE id = $1 AND user_id = $2 AND trashed_at IS NULL RETURNING {_COLUMNS}"""
RESTORE_SQL: Final = f"""UPDATE faceplate.conversations SET trashed_at = NULL
    WHERE id = $1 AND user_id = $2 AND trashed_at IS NOT NULL RETURNING {_COLUMNS}"""


async def _trash(uid: uuid.UUID, cid: uuid.UUID, at: datetime | None) -> Conversation:
    if at is None:
        row = await write_row(RESTORE_SQL, cid, uid, user=uid, conversation=cid)
    else:
        row = await write_row(TRASH_SQL, cid, uid, at, user=uid, conversation=cid)
    if row is None:  # already where it was asked to be, or not the user's
        return await get_conversation(user_id=uid, conversation_id=cid)
    return _conversations(row)


async def restore_conversation(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str
) -> Conversation:
    """Bring a conversation back from the trash, where it was; one not in the trash is
    returned as it is. Not activity."""
    return await _trash(
        as_uuid("user_id", user_id), as_uuid("conversation_id", conversation_id), None
    )


__all__ = [
    "CONVERSATIONS_AFTER_SQL",
    "CONVERSATIONS_SQL",
    "create_conversation",
    "delete_conversation",
    "get_conversation",
    "list_conversations",
    "listing_sql",
    "rename_conversation",
    "restore_conversation",
    "update_conversation",
]
