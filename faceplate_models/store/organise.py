"""Organising the sidebar: folders and tags (named, per user), and a conversation's archive,
pin, folder and tags. None of it is activity: a conversation keeps its place in the listing.

A conversation's tags are kept twice: as `tag_ids` on the conversation (what a listing shows
with no join) and as rows of `conversation_tags` carrying the conversation's activity (what
`list_conversations(tag_id=)` reads in order); both change in one transaction, under the
conversation's row lock, so that the append's trigger, which copies the activity, never
misses a tag.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Final, Generic, TypeVar

import asyncpg

from faceplate_models.engine import Connection, current, texts
from faceplate_models.errors import Conflict, ValidationError
from faceplate_models.models import LABEL_MAX, Conversation, Folder, Tag
from faceplate_models.store._rows import (
    Builder,
    below_limit,
    builder,
    columns,
    delete_owned,
    fetch,
    insert_owned,
    locking,
    missing,
    now,
    run,
)
from faceplate_models.store.conversations import get_conversation
from faceplate_models.validation import (
    UNSET,
    Unset,
    as_uuid,
    flag,
    json_text,
    new_key,
    required_text,
)

_CONVERSATION_COLUMNS = columns(Conversation)
_conversations = builder(Conversation, _CONVERSATION_COLUMNS)
L = TypeVar("L", Folder, Tag)
#: Most tags on one conversation.
MAX_TAGS_PER_CONVERSATION: Final = 50


class _Labels(Generic[L]):
    """Folders or tags: a user's named labels, each name once per user."""

    def __init__(self, model: type[L], kind: str) -> None:
        self.kind, self.table = kind, model._meta.db_table
        self.columns = columns(model)
        self.build: Builder[L] = builder(model, self.columns)

    async def create(self, uid: uuid.UUID, name: str, key: uuid.UUID) -> L:
        row = await insert_owned(
            self.table,
            self.columns,
            f"""INSERT INTO faceplate.{self.table} (id, user_id, name, created_at, updated_at)
                SELECT $2, $1, $3, $4, $4 WHERE {below_limit(self.table, "$5")}
                ON CONFLICT (id) DO NOTHING RETURNING {self.columns}""",
            uid,
            key,
            name,
            now(),
            limit=self.table,
            duplicate=lambda: self.conflict(name),
        )
        return self.build(row)

    def conflict(self, name: str) -> Conflict:
        return Conflict(f"a {self.kind} named {name!r} exists already: choose another name")

    async def rename(self, uid: uuid.UUID, label: uuid.UUID, name: str) -> L:
        async def rename(conn: Connection) -> asyncpg.Record:
            try:
                row = await conn.fetchrow(
                    f"""UPDATE faceplate.{self.table} SET name = $3, updated_at = $4
                        WHERE id = $1 AND user_id = $2 RETURNING {self.columns}""",
                    label,
                    uid,
                    name,
                    now(),
                )
            except asyncpg.UniqueViolationError:
                raise self.conflict(name) from None
            if row is None:
                raise missing(self.kind, label)
            return row

        return self.build(await run(rename, user=uid))

    async def listed(self, uid: uuid.UUID) -> list[L]:
        rows = await fetch(
            f"SELECT {self.columns} FROM faceplate.{self.table} WHERE user_id = $1 ORDER BY name",
            uid,
            user=uid,
        )
        return self.build.many(rows)


_folders = _Labels[Folder](Folder, "folder")
_tags = _Labels[Tag](Tag, "tag")


def _name(name: object) -> str:
    return required_text("name", name, LABEL_MAX)


async def create_folder(
    *, user_id: uuid.UUID | str, name: str, folder_id: uuid.UUID | str | None = None
) -> Folder:
    """A new folder named `name` (unique among the user's folders: `Conflict`).
    `folder_id`, a uuid7 the caller made, makes the call repeatable."""
    uid = as_uuid("user_id", user_id)
    return await _folders.create(uid, _name(name), new_key("folder_id", folder_id))


async def list_folders(*, user_id: uuid.UUID | str) -> list[Folder]:
    """The user's folders by name (at most FACEPLATE_MAX_FOLDERS: one answer)."""
    return await _folders.listed(as_uuid("user_id", user_id))


async def rename_folder(
    *, user_id: uuid.UUID | str, folder_id: uuid.UUID | str, name: str
) -> Folder:
    """Give the folder a new name (unique among the user's folders: `Conflict`)."""
    uid, fid = as_uuid("user_id", user_id), as_uuid("folder_id", folder_id)
    return await _folders.rename(uid, fid, _name(name))


async def delete_folder(*, user_id: uuid.UUID | str, folder_id: uuid.UUID | str) -> None:
    """Delete the folder; its conversations stay, in no folder."""
    await delete_owned(
        "folders", "folder", as_uuid("folder_id", folder_id), as_uuid("user_id", user_id)
    )


async def create_tag(
    *, user_id: uuid.UUID | str, name: str, tag_id: uuid.UUID | str | None = None
) -> Tag:
    """A new tag named `name` (unique among the user's tags: `Conflict`). `tag_id`, a uuid7
    the caller made, makes the call repeatable."""
    uid = as_uuid("user_id", user_id)
    return await _tags.create(uid, _name(name), new_key("tag_id", tag_id))


async def list_tags(*, user_id: uuid.UUID | str) -> list[Tag]:
    """The user's tags by name (at most FACEPLATE_MAX_TAGS: one answer)."""
    return await _tags.listed(as_uuid("user_id", user_id))


async def rename_tag(*, user_id: uuid.UUID | str, tag_id: uuid.UUID | str, name: str) -> Tag:
    """Give the tag a new name (unique among the user's tags: `Conflict`)."""
    uid, tid = as_uuid("user_id", user_id), as_uuid("tag_id", tag_id)
    return await _tags.rename(uid, tid, _name(name))


#: A deleted tag leaves its conversations' `tag_ids` (NULL when none is left).
UNTAG_ALL_SQL: Final = """UPDATE faceplate.conversations
    SET tag_ids = nullif(tag_ids - $1::text, '[]'::jsonb)
    WHERE user_id = $2 AND id IN (
        SELECT conversation_id FROM faceplate.conversation_tags WHERE tag_id = $1
    )"""


async def delete_tag(*, user_id: uuid.UUID | str, tag_id: uuid.UUID | str) -> None:
    """Delete the tag and take it off every conversation that has it (under the long
    statement timeout: a tag may be on many)."""
    uid, tid = as_uuid("user_id", user_id), as_uuid("tag_id", tag_id)
    client = current()

    async def delete(conn: Connection) -> None:
        async with client.atomic(conn, long=True):
            await conn.execute(UNTAG_ALL_SQL, str(tid), uid)
            status = await conn.execute(
                "DELETE FROM faceplate.tags WHERE id = $1 AND user_id = $2", tid, uid
            )
            if status == "DELETE 0":
                raise missing("tag", tid)

    await run(delete, user=uid, long=True)


LOCK_SQL: Final = """SELECT id FROM faceplate.conversations
    WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE"""
ORGANISE_SQL: Final = f"""UPDATE faceplate.conversations SET
        archived_at = CASE WHEN NOT $3 THEN archived_at WHEN $4 THEN coalesce(archived_at, $11)
                      END,
        pinned_at = CASE WHEN NOT $5 THEN pinned_at WHEN $6 THEN coalesce(pinned_at, $11) END,
        folder_id = CASE WHEN $7 THEN $8 ELSE folder_id END,
        tag_ids = CASE WHEN $9 THEN $10::jsonb ELSE tag_ids END
    WHERE id = $1 AND user_id = $2
      AND ($8::uuid IS NULL OR EXISTS (
          SELECT 1 FROM faceplate.folders WHERE id = $8 AND user_id = $2))
    RETURNING {_CONVERSATION_COLUMNS}"""
#: The conversation's tag rows made to match its new tags, with its activity.
RETAG_SQL: Final = """WITH gone AS (
        DELETE FROM faceplate.conversation_tags
        WHERE conversation_id = $1 AND NOT tag_id = ANY($3::text[]::uuid[])
    )
    INSERT INTO faceplate.conversation_tags
        (id, user_id, conversation_id, tag_id, updated_at, created_at)
    SELECT ($5::text[]::uuid[])[i], $2, $1, ($3::text[]::uuid[])[i], $4, now()
    FROM generate_subscripts($3::text[], 1) AS i
    ON CONFLICT (conversation_id, tag_id) DO NOTHING"""
OWNED_SQL: Final = {
    kind: f"SELECT count(*) FROM faceplate.{table} "
    "WHERE id = ANY($1::text[]::uuid[]) AND user_id = $2"
    for kind, table in (("folder", "folders"), ("tag", "tags"))
}


def _tag_ids(tag_ids: object) -> list[uuid.UUID]:
    if not isinstance(tag_ids, list | tuple) or len(tag_ids) > MAX_TAGS_PER_CONVERSATION:
        raise ValidationError(
            "tag_ids", f"must be a list of at most {MAX_TAGS_PER_CONVERSATION} tag ids"
        )
    return list(dict.fromkeys(as_uuid("tag_ids", tag) for tag in tag_ids))


async def organise_conversation(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    archived: bool | Unset = UNSET,
    pinned: bool | Unset = UNSET,
    folder_id: uuid.UUID | str | Unset | None = UNSET,
    tag_ids: Sequence[uuid.UUID | str] | Unset = UNSET,
) -> Conversation:
    """Archive or unarchive, pin or unpin, put in a folder (None: in none) and give tags
    (the whole set; [] for none) to a conversation; what is not passed stays. The folder and
    the tags must be the user's (`NotFound`). Not activity: the conversation keeps its place
    in the listing, and `archived_at` and `pinned_at` keep their first moment."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    archive = None if archived is UNSET else flag("archived", archived)
    pin = None if pinned is UNSET else flag("pinned", pinned)
    folder = None if folder_id is UNSET or folder_id is None else as_uuid("folder_id", folder_id)
    tags = None if isinstance(tag_ids, Unset) else _tag_ids(tag_ids)
    client = current()

    async def owned(conn: Connection, kind: str, ids: list[uuid.UUID]) -> None:
        if await conn.fetchval(OWNED_SQL[kind], texts(ids), uid) != len(ids):
            gone = ", ".join(map(str, ids))
            raise missing(kind, gone if len(ids) == 1 else f"among {gone}")

    values = (
        cid,
        uid,
        archive is not None,
        archive,
        pin is not None,
        pin,
        folder_id is not UNSET,
        folder,
        tags is not None,
        json_text("tag_ids", [str(tag) for tag in tags]) if tags else None,
        now(),
    )

    async def organise(conn: Connection) -> asyncpg.Record:
        """Without tags, one statement: the UPDATE locks the row and sets absolute values,
        the folder checked in it. New tags rewrite the conversation's tag rows, which must
        see what an organise it waited for wrote: a transaction, after the row's lock."""
        if tags is None:
            row = await conn.fetchrow(ORGANISE_SQL, *values)
            if row is None:  # which of the two is not the user's
                if folder is not None:
                    await owned(conn, "folder", [folder])
                raise missing("conversation", cid)
            return row
        async with client.atomic(conn):
            if await locking(conn, LOCK_SQL, cid, uid) is None:
                raise missing("conversation", cid)
            if folder is not None:
                await owned(conn, "folder", [folder])
            if tags:
                await owned(conn, "tag", tags)
            row = await conn.fetchrow(ORGANISE_SQL, *values)
            if row is None:
                raise missing("conversation", cid)
            keys = [new_key("tag_ids", None) for _ in tags]
            await conn.execute(RETAG_SQL, cid, uid, texts(tags), row["updated_at"], texts(keys))
        return row

    if archive is None and pin is None and folder_id is UNSET and tags is None:
        return await get_conversation(user_id=uid, conversation_id=cid)
    return _conversations(await run(organise, user=uid, conversation=cid))


__all__ = [
    "MAX_TAGS_PER_CONVERSATION",
    "ORGANISE_SQL",
    "create_folder",
    "create_tag",
    "delete_folder",
    "delete_tag",
    "list_folders",
    "list_tags",
    "organise_conversation",
    "rename_folder",
    "rename_tag",
]
