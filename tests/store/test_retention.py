"""The trash, temporary conversations and retention: what `purge` deletes, what it keeps,
in bounded batches, and what it says it did."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import connections

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget, Retention
from faceplate_models.errors import NotFound, ValidationError
from faceplate_models.testing import connect

pytestmark = pytest.mark.usefixtures("faceplate_db")


async def user(n: int) -> fm.User:
    return await fm.get_or_create_user(subject_id=f"retention|{n}", email=f"r{n}@example.com")


async def count(table: str) -> int:
    rows = await connections.get("default").execute_query_dict(
        f"SELECT count(*) AS n FROM faceplate.{table}"
    )
    return int(rows[0]["n"])


async def test_the_trash_hides_a_conversation_until_it_is_restored_or_purged() -> None:
    ada, bob = await user(1), await user(2)
    chat = await fm.create_conversation(user_id=ada.id, title="old")
    await fm.append_message(user_id=ada.id, conversation_id=chat.id, role="user", content="x")
    kept = await fm.get_conversation(user_id=ada.id, conversation_id=chat.id)
    await fm.delete_conversation(user_id=ada.id, conversation_id=chat.id, permanently=False)
    trashed = await fm.get_conversation(user_id=ada.id, conversation_id=chat.id)
    assert trashed.trashed_at is not None and trashed.updated_at == kept.updated_at
    # Trashing again keeps the first moment, from which the trash period runs.
    await fm.delete_conversation(user_id=ada.id, conversation_id=chat.id, permanently=False)
    again = await fm.get_conversation(user_id=ada.id, conversation_id=chat.id)
    assert again.trashed_at == trashed.trashed_at
    assert (await fm.list_conversations(user_id=ada.id)).items == []
    assert (await fm.list_conversations(user_id=ada.id, archived=None)).items == []
    assert [c.id for c in (await fm.list_conversations(user_id=ada.id, trashed=True)).items] == [
        chat.id
    ]
    with pytest.raises(NotFound):
        await fm.restore_conversation(user_id=bob.id, conversation_id=chat.id)
    restored = await fm.restore_conversation(user_id=ada.id, conversation_id=chat.id)
    assert restored.trashed_at is None and restored.updated_at == kept.updated_at
    assert [c.id for c in (await fm.list_conversations(user_id=ada.id)).items] == [chat.id]
    with pytest.raises(ValidationError, match="trashed"):
        await fm.list_conversations(user_id=ada.id, trashed=True, pinned_first=True)


async def test_purge_deletes_what_expired_in_batches_and_keeps_the_rest() -> None:
    ada = await user(1)
    now = datetime.now(UTC)
    trashed = [await fm.create_conversation(user_id=ada.id) for _ in range(7)]
    for chat in trashed:
        await fm.append_message(user_id=ada.id, conversation_id=chat.id, role="user", content="x")
        await fm.delete_conversation(user_id=ada.id, conversation_id=chat.id, permanently=False)
    temporary = [await fm.create_conversation(user_id=ada.id, temporary=True) for _ in range(5)]
    assert all(c.temporary for c in temporary)
    idle = [await fm.create_conversation(user_id=ada.id) for _ in range(4)]
    pinned = await fm.create_conversation(user_id=ada.id)
    await fm.organise_conversation(user_id=ada.id, conversation_id=pinned.id, pinned=True)
    rules = Retention(trash_days=30, temporary_days=1, inactive_days=90)
    # Nothing has expired yet.
    assert (await fm.purge_expired(retention=rules, batch=2, at=now)).total == 0
    # Two days on: the temporary ones have; the trash and the idle ones have not.
    purged = await fm.purge_expired(retention=rules, batch=2, at=now + timedelta(days=2))
    assert (purged.trashed, purged.temporary, purged.inactive) == (0, 5, 0)
    # A trashed conversation restored in time stays.
    await fm.restore_conversation(user_id=ada.id, conversation_id=trashed[0].id)
    later = await fm.purge_expired(retention=rules, batch=2, at=now + timedelta(days=31))
    assert (later.trashed, later.temporary, later.inactive) == (6, 0, 0)
    assert await count("messages") == 1
    # Inactivity: all but the pinned one, with retention off by default.
    off = dataclasses.replace(rules, inactive_days=None)
    assert (await fm.purge_expired(retention=off, at=now + timedelta(days=365))).total == 0
    idle_purge = await fm.purge_expired(retention=rules, batch=2, at=now + timedelta(days=91))
    assert idle_purge.inactive == len(idle) + 1  # and the restored one, idle as long
    left = await fm.list_conversations(user_id=ada.id)
    assert [c.id for c in left.items] == [pinned.id]


async def test_bad_purge_arguments_are_refused() -> None:
    with pytest.raises(ValidationError, match="batch"):
        await fm.purge_expired(batch=0)
    with pytest.raises(ValidationError, match="at"):
        await fm.purge_expired(at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="retention"):
        await fm.purge_expired(retention={"trash_days": 1})  # type: ignore[arg-type]


async def test_a_restore_racing_the_purge_wins_and_nothing_else_waits(
    faceplate_db: DatabaseTarget,
) -> None:
    """A restore whose transaction holds the row when the purge reaches it: the purge waits
    for that row only, sees it restored, and leaves it."""
    ada = await user(1)
    racing, other = [await fm.create_conversation(user_id=ada.id) for _ in "ab"]
    for chat in (racing, other):
        await fm.delete_conversation(user_id=ada.id, conversation_id=chat.id, permanently=False)
    restorer = await connect(faceplate_db)
    try:
        restoring = restorer.transaction()
        await restoring.start()
        await restorer.execute(
            "UPDATE faceplate.conversations SET trashed_at = NULL WHERE id = $1", racing.id
        )
        rules = Retention(trash_days=1)
        purge = asyncio.create_task(
            fm.purge_expired(retention=rules, at=datetime.now(UTC) + timedelta(days=2))
        )
        await asyncio.sleep(0.5)
        assert not purge.done()  # waiting for the restore's row, and only for it
        listed = await fm.list_conversations(user_id=ada.id, trashed=True)
        assert {c.id for c in listed.items} == {racing.id, other.id}
        await restoring.commit()
        purged = await purge
    finally:
        await restorer.close()
    assert purged.trashed == 1
    kept = await fm.get_conversation(user_id=ada.id, conversation_id=racing.id)
    assert kept.trashed_at is None
    with pytest.raises(NotFound):
        await fm.get_conversation(user_id=ada.id, conversation_id=other.id)
