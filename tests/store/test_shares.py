"""Share links: a snapshot shows what was there when it was made, a live one what is there
now; the token is stored only as a hash; revoked, unknown or trashed is NotFound."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from tortoise import connections

import faceplate_models as fm
from faceplate_models.errors import NotFound, ValidationError

pytestmark = pytest.mark.usefixtures("faceplate_db")


async def user(n: int) -> fm.User:
    return await fm.get_or_create_user(subject_id=f"share|{n}", email=f"sh{n}@example.com")


async def shown(token: str) -> list[str | None]:
    return [m.content for m in (await fm.get_shared(token=token)).history.items]


async def test_a_snapshot_a_live_share_and_moving_a_snapshot_forward() -> None:
    ada = await user(1)
    chat = await fm.create_conversation(user_id=ada.id, title="Recipe")
    at: dict[str, Any] = {"user_id": ada.id, "conversation_id": chat.id}
    question = await fm.append_message(**at, role="user", content="How long for rice?")
    await fm.append_message(**at, role="assistant", content="18 minutes.")
    snapshot = await fm.share_conversation(**at)
    live = await fm.share_conversation(**at, live=True)
    early = await fm.share_conversation(**at, leaf=question.id)
    await fm.append_message(**at, role="user", content="And quinoa?")
    assert await shown(snapshot.token) == ["How long for rice?", "18 minutes."]
    assert await shown(live.token) == ["How long for rice?", "18 minutes.", "And quinoa?"]
    assert await shown(early.token) == ["How long for rice?"]
    shared = await fm.get_shared(token=snapshot.token)
    assert shared.title == "Recipe" and shared.share.id == snapshot.share.id
    # Moved forward, the token stays the same.
    moved = await fm.update_share(user_id=ada.id, share_id=snapshot.share.id)
    assert moved.leaf_id != snapshot.share.leaf_id
    assert await shown(snapshot.token) == ["How long for rice?", "18 minutes.", "And quinoa?"]
    # An edit on another branch does not change what the snapshot shows.
    await fm.edit_message(**at, message_id=question.id, content="How long for pasta?")
    assert (await shown(snapshot.token))[0] == "How long for rice?"
    listed = await fm.list_shares(user_id=ada.id, limit=2)
    assert len(listed.items) == 2 and listed.next_cursor is not None
    rest = await fm.list_shares(user_id=ada.id, cursor=listed.next_cursor)
    assert {s.id for s in listed.items + rest.items} == {
        s.share.id for s in (snapshot, live, early)
    }


async def test_tokens_are_random_stored_hashed_and_revocable() -> None:
    ada, bob = await user(1), await user(2)
    chat = await fm.create_conversation(user_id=ada.id)
    await fm.append_message(user_id=ada.id, conversation_id=chat.id, role="user", content="hi")
    links = [await fm.share_conversation(user_id=ada.id, conversation_id=chat.id) for _ in "ab"]
    assert links[0].token != links[1].token and len(links[0].token) == 32
    rows = await connections.get("default").execute_query_dict(
        "SELECT token_hash FROM faceplate.shares ORDER BY created_at"
    )
    stored = [bytes(r["token_hash"]) for r in rows]
    assert stored == [hashlib.sha256(link.token.encode()).digest() for link in links]
    assert not any(link.token.encode() in row for link in links for row in stored)
    with pytest.raises(NotFound):
        await fm.revoke_share(user_id=bob.id, share_id=links[0].share.id)
    await fm.revoke_share(user_id=ada.id, share_id=links[0].share.id)
    with pytest.raises(NotFound, match="share"):
        await fm.get_shared(token=links[0].token)
    assert await shown(links[1].token) == ["hi"]
    with pytest.raises(NotFound):
        await fm.get_shared(token="A" * 32)
    for bad in ("short", "A" * 31 + "!", 42):
        with pytest.raises(ValidationError, match="token"):
            await fm.get_shared(token=bad)  # type: ignore[arg-type]
    # In the trash, a conversation's links open nothing; restored, they do again.
    await fm.delete_conversation(user_id=ada.id, conversation_id=chat.id, permanently=False)
    with pytest.raises(NotFound):
        await fm.get_shared(token=links[1].token)
    await fm.restore_conversation(user_id=ada.id, conversation_id=chat.id)
    assert await shown(links[1].token) == ["hi"]


async def test_only_the_owner_shares_and_only_messages_of_the_conversation() -> None:
    ada, bob = await user(1), await user(2)
    chat = await fm.create_conversation(user_id=ada.id)
    other = await fm.create_conversation(user_id=ada.id)
    elsewhere = await fm.append_message(
        user_id=ada.id, conversation_id=other.id, role="user", content="x"
    )
    with pytest.raises(NotFound, match="conversation"):
        await fm.share_conversation(user_id=bob.id, conversation_id=chat.id)
    with pytest.raises(NotFound, match="message"):
        await fm.share_conversation(user_id=ada.id, conversation_id=chat.id, leaf=elsewhere.id)
    with pytest.raises(ValidationError, match="leaf"):
        await fm.share_conversation(
            user_id=ada.id, conversation_id=chat.id, leaf=elsewhere.id, live=True
        )
    empty = await fm.share_conversation(user_id=ada.id, conversation_id=chat.id)
    assert await shown(empty.token) == []
    with pytest.raises(NotFound):
        await fm.update_share(user_id=bob.id, share_id=empty.share.id)
    assert await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM faceplate.shares"
    ) == [{"n": 1}]
