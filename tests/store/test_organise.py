"""Folders, tags, archive and pin: named and owned per user, filtered listings that page like
the plain one, and none of it activity (a conversation keeps its place)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import pytest
from tortoise import connections

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget, Limits, load_settings
from faceplate_models.errors import Conflict, NotFound, QuotaExceeded, ValidationError

pytestmark = pytest.mark.usefixtures("faceplate_db")


async def user(n: int) -> fm.User:
    return await fm.get_or_create_user(subject_id=f"organise|{n}", email=f"o{n}@example.com")


async def titles(user_id: uuid.UUID, limit: int = 3, **filters: Any) -> list[str | None]:
    """Every conversation a listing shows, paged `limit` at a time."""
    shown: list[str | None] = []
    cursor = None
    while True:
        page = await fm.list_conversations(user_id=user_id, limit=limit, cursor=cursor, **filters)
        shown += [c.title for c in page.items]
        if (cursor := page.next_cursor) is None:
            return shown


async def chats(user_id: uuid.UUID, count: int) -> list[fm.Conversation]:
    """`count` conversations, each with a message: "c0" is the least recently active."""
    made = []
    for n in range(count):
        chat = await fm.create_conversation(user_id=user_id, title=f"c{n}")
        await fm.append_message(user_id=user_id, conversation_id=chat.id, role="user", content="x")
        made.append(chat)
    return made


async def test_folders_and_tags_are_named_listed_renamed_and_deleted() -> None:
    ada, bob = await user(1), await user(2)
    work = await fm.create_folder(user_id=ada.id, name="Work")
    await fm.create_folder(user_id=ada.id, name="Home")
    await fm.create_folder(user_id=bob.id, name="Work")  # names are per user
    assert [f.name for f in await fm.list_folders(user_id=ada.id)] == ["Home", "Work"]
    with pytest.raises(Conflict, match="a folder named 'Home'"):
        await fm.create_folder(user_id=ada.id, name="Home")
    with pytest.raises(Conflict):
        await fm.rename_folder(user_id=ada.id, folder_id=work.id, name="Home")
    renamed = await fm.rename_folder(user_id=ada.id, folder_id=work.id, name="Office")
    assert renamed.id == work.id and renamed.name == "Office"
    with pytest.raises(NotFound):
        await fm.rename_folder(user_id=bob.id, folder_id=work.id, name="Mine")
    # A repeated create with the caller's key finds the first.
    key = fm.Folder._meta.fields_map["id"].default()
    again = [await fm.create_folder(user_id=ada.id, name="Trips", folder_id=key) for _ in "ab"]
    assert again[0].id == again[1].id == key
    tag = await fm.create_tag(user_id=ada.id, name="urgent")
    assert [t.name for t in await fm.list_tags(user_id=ada.id)] == ["urgent"]
    assert (await fm.rename_tag(user_id=ada.id, tag_id=tag.id, name="later")).name == "later"
    await fm.delete_tag(user_id=ada.id, tag_id=tag.id)
    await fm.delete_folder(user_id=ada.id, folder_id=work.id)
    with pytest.raises(NotFound):
        await fm.delete_folder(user_id=ada.id, folder_id=work.id)
    with pytest.raises(NotFound):
        await fm.delete_tag(user_id=ada.id, tag_id=tag.id)
    with pytest.raises(ValidationError, match="name"):
        await fm.create_tag(user_id=ada.id, name=" ")


async def test_organising_is_not_activity_and_each_filter_lists_its_own() -> None:
    ada = await user(1)
    c0, c1, c2, c3, c4 = await chats(ada.id, 5)
    folder = await fm.create_folder(user_id=ada.id, name="Work")
    red, blue = [await fm.create_tag(user_id=ada.id, name=n) for n in ("red", "blue")]
    before = await titles(ada.id)
    assert before == ["c4", "c3", "c2", "c1", "c0"]
    at: dict[str, Any] = {"user_id": ada.id}
    done = await fm.organise_conversation(**at, conversation_id=c1.id, archived=True)
    assert done.archived_at is not None
    await fm.organise_conversation(**at, conversation_id=c0.id, pinned=True, folder_id=folder.id)
    await fm.organise_conversation(**at, conversation_id=c3.id, pinned=True, tag_ids=[red.id])
    await fm.organise_conversation(**at, conversation_id=c2.id, tag_ids=[red.id, blue.id])
    await fm.organise_conversation(**at, conversation_id=c4.id, folder_id=folder.id)
    # Not activity: every conversation kept its time, and the listing its order.
    assert await titles(ada.id, archived=None) == before
    assert await titles(ada.id) == ["c4", "c3", "c2", "c0"]
    assert await titles(ada.id, archived=True) == ["c1"]
    assert await titles(ada.id, folder_id=folder.id) == ["c4", "c0"]
    assert await titles(ada.id, tag_id=red.id) == ["c3", "c2"]
    assert await titles(ada.id, tag_id=blue.id) == ["c2"]
    for size in (1, 2, 3, 10):  # the pinned ones first, across any page boundary
        assert await titles(ada.id, size, pinned_first=True) == ["c3", "c0", "c4", "c2"]
    assert await titles(ada.id, 1, pinned_first=True, tag_id=red.id) == ["c3", "c2"]
    shown = await fm.get_conversation(user_id=ada.id, conversation_id=c2.id)
    assert shown.tag_ids == [str(red.id), str(blue.id)]
    # Activity moves a tagged conversation to the front of its tag's listing too.
    await fm.append_message(user_id=ada.id, conversation_id=c2.id, role="user", content="y")
    assert await titles(ada.id, tag_id=red.id) == ["c2", "c3"]
    # Undone: unarchived, unpinned, out of the folder, untagged.
    await fm.organise_conversation(
        **at, conversation_id=c0.id, pinned=False, folder_id=None, archived=False
    )
    await fm.organise_conversation(**at, conversation_id=c2.id, tag_ids=[blue.id])
    assert await titles(ada.id, tag_id=red.id) == ["c3"]
    assert await titles(ada.id, folder_id=folder.id) == ["c4"]
    # A deleted tag leaves its conversations; a deleted folder too.
    await fm.delete_tag(user_id=ada.id, tag_id=blue.id)
    assert (await fm.get_conversation(user_id=ada.id, conversation_id=c2.id)).tag_ids is None
    await fm.delete_folder(user_id=ada.id, folder_id=folder.id)
    assert (await fm.get_conversation(user_id=ada.id, conversation_id=c4.id)).folder_id is None


async def test_another_users_folder_tag_or_conversation_is_not_found_and_nothing_changes() -> None:
    ada, bob = await user(1), await user(2)
    (mine,) = await chats(ada.id, 1)
    folder = await fm.create_folder(user_id=bob.id, name="Bob's")
    tag = await fm.create_tag(user_id=bob.id, name="bob")
    own = await fm.create_tag(user_id=ada.id, name="ada")
    at: dict[str, Any] = {"user_id": ada.id, "conversation_id": mine.id}
    with pytest.raises(NotFound, match="folder"):
        await fm.organise_conversation(**at, folder_id=folder.id, archived=True)
    with pytest.raises(NotFound, match="tag"):
        await fm.organise_conversation(**at, tag_ids=[own.id, tag.id])
    with pytest.raises(NotFound, match="conversation"):
        await fm.organise_conversation(user_id=bob.id, conversation_id=mine.id, pinned=True)
    unchanged = await fm.get_conversation(**at)
    assert (unchanged.archived_at, unchanged.tag_ids, unchanged.folder_id) == (None, None, None)
    assert await titles(bob.id, tag_id=own.id) == []
    with pytest.raises(ValidationError, match="tag_ids"):
        await fm.organise_conversation(**at, tag_ids=[own.id] * 51 + [uuid.uuid4()])
    with pytest.raises(ValidationError, match="tag_id"):
        await fm.list_conversations(user_id=ada.id, folder_id=folder.id, tag_id=tag.id)


async def test_a_tags_listing_keeps_the_activity_under_racing_appends() -> None:
    """Tags given while appends run: each tag row ends with its conversation's activity (the
    organise holds the conversation's lock; the append's trigger copies the rest)."""
    ada = await user(1)
    conversations = await chats(ada.id, 4)
    tag = await fm.create_tag(user_id=ada.id, name="hot")

    async def appends(chat: fm.Conversation) -> None:
        for _ in range(10):
            await fm.append_message(
                user_id=ada.id, conversation_id=chat.id, role="user", content="z"
            )

    async def tags(chat: fm.Conversation) -> None:
        for tagged in ([tag.id], [], [tag.id]):
            await fm.organise_conversation(user_id=ada.id, conversation_id=chat.id, tag_ids=tagged)

    await asyncio.gather(*(f(c) for c in conversations for f in (appends, tags)))
    rows = await connections.get("default").execute_query_dict(
        """SELECT count(*) AS stale FROM faceplate.conversation_tags t
           JOIN faceplate.conversations c ON c.id = t.conversation_id
           WHERE t.updated_at <> c.updated_at"""
    )
    assert rows[0]["stale"] == 0
    assert await titles(ada.id, tag_id=tag.id) == await titles(ada.id)


@pytest.fixture
async def few_labels(faceplate_db: DatabaseTarget, restore_db: DatabaseTarget) -> None:
    limits = Limits(folders=3, tags=3)
    await fm.init_db(
        faceplate_db.url(), settings=dataclasses.replace(load_settings(), limits=limits)
    )


@pytest.mark.usefixtures("few_labels")
async def test_racing_creates_stop_at_the_limit_of_folders_and_tags() -> None:
    ada = await user(1)
    for create in (fm.create_folder, fm.create_tag):
        results = await asyncio.gather(
            *(create(user_id=ada.id, name=f"n{n}") for n in range(10)), return_exceptions=True
        )
        assert sum(isinstance(r, QuotaExceeded) for r in results) == 7, results
    assert (
        len(await fm.list_folders(user_id=ada.id)) == len(await fm.list_tags(user_id=ada.id)) == 3
    )
