"""Feedback: one rating per message, replaceable, shown with the message in its history,
and listed across users for reviewers, without copying anything."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise import connections

import faceplate_models as fm
from faceplate_models.errors import NotFound, ValidationError

pytestmark = pytest.mark.usefixtures("faceplate_db")


async def answered(n: int) -> tuple[fm.User, fm.Conversation, fm.Message]:
    person = await fm.get_or_create_user(subject_id=f"rate|{n}", email=f"f{n}@example.com")
    chat = await fm.create_conversation(user_id=person.id)
    at: dict[str, Any] = {"user_id": person.id, "conversation_id": chat.id}
    await fm.append_message(**at, role="user", content="Capital of Australia?")
    answer = await fm.append_message(**at, role="assistant", content="Sydney.", model="m-1")
    return person, chat, answer


async def test_a_rating_is_replaced_shown_in_the_history_and_removed() -> None:
    ada, chat, answer = await answered(1)
    at: dict[str, Any] = {"user_id": ada.id, "message_id": answer.id}
    first = await fm.rate_message(**at, rating=1)
    assert first is not None and first.rating == 1
    second = await fm.rate_message(**at, rating=-1, reasons=["wrong", "wrong"], comment="Canberra")
    assert second is not None and second.id == first.id and second.reasons == ["wrong"]
    page = await fm.get_history(user_id=ada.id, conversation_id=chat.id)
    assert [m.feedback for m in page.items] == [
        None,
        fm.MessageFeedback(rating=-1, reasons=["wrong"], comment="Canberra"),
    ]
    assert await fm.rate_message(**at, rating=None) is None
    page = await fm.get_history(user_id=ada.id, conversation_id=chat.id)
    assert [m.feedback for m in page.items] == [None, None]


async def test_only_the_owner_rates_and_bad_ratings_are_refused() -> None:
    ada, _, answer = await answered(1)
    bob, _, _ = await answered(2)
    with pytest.raises(NotFound, match="message"):
        await fm.rate_message(user_id=bob.id, message_id=answer.id, rating=1)
    with pytest.raises(NotFound, match="message"):
        await fm.rate_message(user_id=bob.id, message_id=answer.id, rating=None)
    for bad in (2, 0, True, 1.0, "1"):
        with pytest.raises(ValidationError, match="rating"):
            await fm.rate_message(user_id=ada.id, message_id=answer.id, rating=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="reasons"):
        await fm.rate_message(user_id=ada.id, message_id=answer.id, rating=1, reasons=["x"] * 17)
    rows = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM faceplate.feedback"
    )
    assert rows == [{"n": 0}]


async def test_reviewers_list_every_users_ratings_since_a_moment_with_the_answers() -> None:
    start = datetime.now(UTC) - timedelta(seconds=1)
    rated = []
    for n in range(5):
        person, _, answer = await answered(n)
        await fm.rate_message(user_id=person.id, message_id=answer.id, rating=1 if n % 2 else -1)
        rated.append(answer.id)
    pages, cursor = [], None
    while True:
        page = await fm.list_feedback(since=start, limit=2, cursor=cursor)
        pages.append(page.items)
        if (cursor := page.next_cursor) is None:
            break
    seen = [item.feedback.message_id for items in pages for item in items]
    assert seen == rated and [len(items) for items in pages] == [2, 2, 1]
    first = pages[0][0]
    assert (first.content, first.model, first.role) == ("Sydney.", "m-1", "assistant")
    down = await fm.list_feedback(since=start, rating=-1)
    assert [i.feedback.message_id for i in down.items] == rated[::2]
    assert (await fm.list_feedback(since=datetime.now(UTC) + timedelta(hours=1))).items == []
    # A deleted conversation takes its ratings with it.
    ada = await fm.get_user_by_subject(subject_id="rate|0")
    (chat,) = (await fm.list_conversations(user_id=ada.id)).items
    await fm.delete_conversation(user_id=ada.id, conversation_id=chat.id)
    assert len((await fm.list_feedback(since=start)).items) == 4
    with pytest.raises(ValidationError, match="since"):
        await fm.list_feedback(since=datetime(2026, 1, 1))
