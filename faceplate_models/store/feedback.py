"""Feedback: a user's rating of a message (up, down, reasons, a comment), one per message and
replaceable, shown with the message in its history (`Message.feedback`), and listed across
users for the people who review answers. A rating points at the message; nothing is copied.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from faceplate_models.errors import ValidationError
from faceplate_models.models import Feedback, MessageFeedback
from faceplate_models.store import _cursors as cursors
from faceplate_models.store._rows import (
    Page,
    builder,
    columns,
    cut,
    fetch,
    missing,
    now,
    run,
    within_budget,
)
from faceplate_models.validation import (
    MAX_PAGE_BYTES,
    MAX_TEXT_CHARS,
    as_uuid,
    json_text,
    new_key,
    optional_text,
    page_size,
    required_text,
)

_COLUMNS = columns(Feedback)
_feedback = builder(Feedback, _COLUMNS)
#: Most reasons on a rating, and the longest reason, in characters.
MAX_REASONS: Final = 16
MAX_REASON: Final = 100
RATINGS: Final = (1, -1, None)

#: A message's feedback as one JSON object (for a history page): `message` is its id's SQL.
FEEDBACK_OF_SQL: Final = """SELECT jsonb_build_object(
        'rating', f.rating, 'reasons', f.reasons, 'comment', f.comment)::text
    FROM faceplate.feedback f WHERE f.message_id = {message}"""


def feedback_of(value: str | None) -> MessageFeedback | None:
    """A history row's feedback column as the message shows it."""
    if value is None:
        return None
    data = json.loads(value)
    return MessageFeedback(data["rating"], data["reasons"], data["comment"])


def _rating(value: object) -> int | None:
    if value is None or (type(value) is int and value in RATINGS):
        return value
    raise ValidationError("rating", "must be 1 (up), -1 (down) or None")


def _reasons(value: object) -> list[str]:
    if not isinstance(value, list | tuple) or len(value) > MAX_REASONS:
        raise ValidationError("reasons", f"must be a list of at most {MAX_REASONS} labels")
    return list(dict.fromkeys(required_text("reasons", reason, MAX_REASON) for reason in value))


#: Stores (or replaces) the rating of a message of user $1: $2 message, $3 new key, $4
#: rating, $5 reasons, $6 comment, $7 the time.
RATE_SQL: Final = f"""INSERT INTO faceplate.feedback ({_COLUMNS})
    SELECT $3, m.user_id, m.id, m.conversation_id, $4, $5::jsonb, $6, $7, $7
    FROM faceplate.messages m WHERE m.id = $2 AND m.user_id = $1
    ON CONFLICT (message_id) DO UPDATE SET rating = EXCLUDED.rating,
        reasons = EXCLUDED.reasons, comment = EXCLUDED.comment, updated_at = EXCLUDED.updated_at
    RETURNING {_COLUMNS}"""
UNRATE_SQL: Final = """WITH gone AS (
        DELETE FROM faceplate.feedback WHERE message_id = $2 AND user_id = $1
    )
    SELECT EXISTS (SELECT 1 FROM faceplate.messages WHERE id = $2 AND user_id = $1)"""


async def rate_message(
    *,
    user_id: uuid.UUID | str,
    message_id: uuid.UUID | str,
    rating: int | None,
    reasons: Sequence[str] = (),
    comment: str | None = None,
) -> Feedback | None:
    """Rate one of the user's messages: `rating` 1 (up), -1 (down) or None, with `reasons`
    (short labels) and a `comment`; a second call replaces the first. With no rating, no
    reason and no comment, the feedback is removed (None is returned)."""
    uid = as_uuid("user_id", user_id)
    mid = as_uuid("message_id", message_id)
    score = _rating(rating)
    labels = _reasons(reasons)
    remark = optional_text("comment", comment, MAX_TEXT_CHARS)
    if score is None and not labels and not remark:
        found = await run(lambda conn: conn.fetchval(UNRATE_SQL, uid, mid), user=uid)
        if not found:
            raise missing("message", mid)
        return None
    args = (uid, mid, new_key("feedback", None), score, json_text("reasons", labels), remark)
    row = await run(lambda conn: conn.fetchrow(RATE_SQL, *args, now()), user=uid)
    if row is None:
        raise missing("message", mid)
    return _feedback(row)


@dataclass(frozen=True)
class RatedMessage:
    """A rating and the message it rates, for reviewers."""

    feedback: Feedback
    role: str
    content: str | None
    model: str | None
    provider: str | None
    message_created_at: datetime


_f = ", ".join(f"f.{column}" for column in _COLUMNS.split(", "))
_RATED: Final = "role, content, model, provider, message_created_at"


def feedback_sql(*, by_rating: bool, after: bool) -> str:
    """Ratings changed since a moment, oldest first, with their messages: $1 since, $2
    limit, then the rating, then the cursor, then the page's byte budget."""
    where = ["f.updated_at >= $1"]
    if by_rating:
        where.append("f.rating = $3")
    if after:
        first = 3 + by_rating
        where.append(f"(f.updated_at, f.id) > (${first}, ${first + 1})")
    return within_budget(
        f"""SELECT {_f}, m.role, m.content, m.model, m.provider,
            m.created_at AS message_created_at,
            coalesce(octet_length(m.content), 0) + coalesce(octet_length(f.comment), 0) AS size
        FROM faceplate.feedback f JOIN faceplate.messages m ON m.id = f.message_id
        WHERE {" AND ".join(where)} ORDER BY f.updated_at, f.id LIMIT $2""",
        columns=f"{_COLUMNS}, {_RATED}",
        order="updated_at, id",
        budget=f"${3 + by_rating + 2 * after}",
    )


async def list_feedback(
    *,
    since: datetime,
    rating: int | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[RatedMessage]:
    """Every user's ratings given or changed since `since` (only up or only down with
    `rating`), oldest first, each with its message: for the people who review answers,
    not for users (it is not scoped to one; keep it behind your reviewers' door)."""
    if not isinstance(since, datetime) or since.tzinfo is None:
        raise ValidationError("since", "must be an aware datetime")
    if not cursors.EARLIEST <= since < cursors.LATEST:
        raise ValidationError("since", "must be a moment of this era")
    score = _rating(rating)
    size = page_size(limit)
    scope = (since.isoformat(), score)
    position: Any = ()
    if cursor is not None:
        position = cursors.decode("cursor", cursor, cursors.FEEDBACK, uuid.UUID(int=0), scope)
    sql = feedback_sql(by_rating=score is not None, after=bool(position))
    filters = () if score is None else (score,)
    rows = await fetch(sql, since, size + 1, *filters, *position, MAX_PAGE_BYTES, user=None)
    items = [
        RatedMessage(_feedback(row), *(row[name] for name in _RATED.split(", ")))
        for row in rows[:size]
    ]
    if len(rows) <= size and not cut(rows):
        return Page(items, None)
    last = rows[:size][-1]
    return Page(
        items,
        cursors.encode(cursors.FEEDBACK, uuid.UUID(int=0), scope, last["updated_at"], last["id"]),
    )


__all__ = [
    "FEEDBACK_OF_SQL",
    "MAX_REASONS",
    "RatedMessage",
    "feedback_of",
    "feedback_sql",
    "list_feedback",
    "rate_message",
]
