"""Search by words: what matches, in what order, across pages and all three of the search's
steps (a frequent word, a rare one, many old matches), and never anything of another user."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tortoise import connections

import faceplate_models as fm
from faceplate_models.errors import ValidationError
from faceplate_models.ids import uuid7
from faceplate_models.store import search

pytestmark = pytest.mark.usefixtures("faceplate_db")


async def user(n: int) -> fm.User:
    return await fm.get_or_create_user(subject_id=f"search|{n}", email=f"s{n}@example.com")


async def every_hit(user_id: uuid.UUID, query: str, **kwargs: Any) -> list[fm.SearchHit]:
    hits: list[fm.SearchHit] = []
    cursor = None
    while True:
        page = await fm.search_messages(
            user_id=user_id, query=query, limit=20, cursor=cursor, **kwargs
        )
        assert len(page.items) <= 20
        hits += page.items
        if (cursor := page.next_cursor) is None:
            return hits


async def test_words_phrases_exclusions_and_or_with_highlighted_excerpts() -> None:
    ada = await user(1)
    chat = await fm.create_conversation(user_id=ada.id, title="Lisbon trip")
    at: dict[str, Any] = {"user_id": ada.id, "conversation_id": chat.id}
    first = await fm.append_message(**at, role="user", content="Where is the best pastel de nata?")
    second = await fm.append_message(
        **at, role="assistant", content="Manteigaria makes the best pastel, near the river."
    )
    await fm.append_message(**at, role="tool", content="pastel de nata: 4.5 stars")

    hits = (await fm.search_messages(user_id=ada.id, query="PASTEL")).items
    # Newest first; the tool's output is not searched, the user's and the assistant's are.
    assert [h.message_id for h in hits] == [second.id, first.id]
    assert hits[0].role == "assistant" and hits[0].conversation_title == "Lisbon trip"
    assert hits[0].marked("[", "]") == "Manteigaria makes the best [pastel], near the river"
    phrase = (await fm.search_messages(user_id=ada.id, query='"de nata"')).items
    assert [h.message_id for h in phrase] == [first.id]
    excluded = (await fm.search_messages(user_id=ada.id, query="pastel -river")).items
    assert [h.message_id for h in excluded] == [first.id]
    either = (await fm.search_messages(user_id=ada.id, query="river or where")).items
    assert [h.message_id for h in either] == [second.id, first.id]
    # A title matches as a hit of its own, with no message.
    titled = (await fm.search_messages(user_id=ada.id, query="lisbon")).items
    assert [(h.message_id, h.conversation_id, h.excerpt) for h in titled] == [
        (None, chat.id, "Lisbon trip")
    ]
    assert titled[0].highlights == [(0, 6)]
    # No stemming: "run" does not find "running".
    await fm.append_message(**at, role="user", content="I am running late")
    assert (await fm.search_messages(user_id=ada.id, query="run")).items == []


async def test_text_without_spaces_is_found_only_by_a_whole_run() -> None:
    ada = await user(1)
    chat = await fm.create_conversation(user_id=ada.id)
    message = await fm.append_message(
        user_id=ada.id, conversation_id=chat.id, role="user", content="東京の天気 は"
    )
    whole = await fm.search_messages(user_id=ada.id, query="東京の天気")
    assert [h.message_id for h in whole.items] == [message.id]
    assert (await fm.search_messages(user_id=ada.id, query="東京")).items == []


async def test_another_users_rows_the_trash_and_another_conversation_are_not_searched() -> None:
    ada, bob = await user(1), await user(2)
    mine = await fm.create_conversation(user_id=ada.id, title="secret plans")
    other = await fm.create_conversation(user_id=ada.id)
    theirs = await fm.create_conversation(user_id=bob.id, title="secret plans")
    for owner, chat in ((ada, mine), (ada, other), (bob, theirs)):
        await fm.append_message(
            user_id=owner.id, conversation_id=chat.id, role="user", content="the secret"
        )
    hits = await every_hit(ada.id, "secret")
    assert {h.conversation_id for h in hits} == {mine.id, other.id}
    scoped = await every_hit(ada.id, "secret", conversation_id=other.id)
    assert {h.conversation_id for h in scoped} == {other.id}
    await fm.delete_conversation(user_id=ada.id, conversation_id=mine.id, permanently=False)
    assert {h.conversation_id for h in await every_hit(ada.id, "secret")} == {other.id}
    await fm.restore_conversation(user_id=ada.id, conversation_id=mine.id)
    assert len(await every_hit(ada.id, "secret")) == 3


async def test_every_step_finds_exactly_the_matches_newest_first() -> None:
    """1,200 messages over 400 days: a word in all of them (the newest buckets fill the
    page), one in every 30th (few: sorted at once), one in 300 old ones only (many and old:
    bucket by bucket), and one in none; each paged to the end against the expected list."""
    ada, bob = await user(1), await user(2)
    chat = await fm.create_conversation(user_id=ada.id)
    bobs = await fm.create_conversation(user_id=bob.id)
    end = datetime.now(UTC)
    rows = []
    for n in range(1200):
        words = ["common"]
        if n % 30 == 0:
            words.append("monthly")
        if 500 <= n < 800:
            words.append("oldbulk")
        at = end - timedelta(hours=8 * (1200 - n))
        rows.append((uuid7(), chat.id, ada.id, " ".join(words), at))
        rows.append((uuid7(), bobs.id, bob.id, " ".join(words), at))
    async with connections.get("default").acquire_connection() as conn:
        await conn.executemany(
            """INSERT INTO faceplate.messages (id, conversation_id, user_id, role, content,
                   created_at) VALUES ($1, $2, $3, 'user', $4, $5)""",
            rows,
        )
    mine = sorted((r for r in rows if r[2] == ada.id), key=lambda r: (r[4], r[0]), reverse=True)
    for word in ("common", "monthly", "oldbulk", "nowhere", "oldbulk -monthly"):
        wanted, *unwanted = word.split(" -")
        expected = [
            r[0]
            for r in mine
            if wanted in r[3].split() and not any(u in r[3].split() for u in unwanted)
        ]
        found = [h.message_id for h in await every_hit(ada.id, word)]
        assert found == expected, word
    # The three steps were each taken: the word of old matches sits beyond the window.
    assert search.bucket(end) - search.bucket(end - timedelta(hours=8 * 400)) > 8


async def test_bad_queries_and_cursors_are_refused_before_any_sql() -> None:
    ada = await user(1)
    for query, problem in (("", "a word"), ("  ?! ", "a word"), ("x" * 501, "characters")):
        with pytest.raises(ValidationError, match=f"query: .*{problem}"):
            await fm.search_messages(user_id=ada.id, query=query)
    with pytest.raises(ValidationError, match="limit"):
        await fm.search_messages(user_id=ada.id, query="a", limit=101)
    chat = await fm.create_conversation(user_id=ada.id)
    for _ in range(3):
        await fm.append_message(user_id=ada.id, conversation_id=chat.id, role="user", content="a")
    page = await fm.search_messages(user_id=ada.id, query="a", limit=1)
    assert page.next_cursor is not None
    with pytest.raises(ValidationError, match="another query"):
        await fm.search_messages(user_id=ada.id, query="b", cursor=page.next_cursor)
    await fm.create_conversation(user_id=ada.id)
    listing = await fm.list_conversations(user_id=ada.id, limit=1)
    assert listing.next_cursor is not None
    with pytest.raises(ValidationError, match="cursor of conversations"):
        await fm.search_messages(user_id=ada.id, query="a", cursor=listing.next_cursor)


async def test_a_long_message_gives_a_short_excerpt_around_its_match() -> None:
    ada = await user(1)
    chat = await fm.create_conversation(user_id=ada.id)
    text = " ".join(["filler"] * 2000 + ["needle"] + ["filler"] * 3000)
    await fm.append_message(user_id=ada.id, conversation_id=chat.id, role="user", content=text)
    (hit,) = (await fm.search_messages(user_id=ada.id, query="needle")).items
    assert len(hit.excerpt) <= search.MAX_EXCERPT
    (start, stop) = hit.highlights[0]
    assert hit.excerpt[start:stop] == "needle"
