"""Keyset cursors that name what they page.

A cursor is a position (a timestamp and a row id) plus the listing it belongs to: its kind
(a conversation's history, a user's conversations, a user's tasks) and a short digest of
its scope (the user, and the conversation or the task filter). A cursor used on another
listing, another conversation or by another user is a `ValidationError`, never a page of
something else. Cursors are not secret and need not be: every query still checks
ownership; the digest only stops a cursor from being used where it means nothing.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Final

from faceplate_models.errors import ValidationError
from faceplate_models.validation import parsed

HISTORY: Final = "history"
TREE: Final = "tree"
CONVERSATIONS: Final = "conversations"
PINNED: Final = "pinned"
TASKS: Final = "tasks"
SEARCH: Final = "search"
SHARES: Final = "shares"
FEEDBACK: Final = "feedback"
_KINDS: Final = {
    HISTORY: "a conversation's history",
    TREE: "a conversation's tree",
    CONVERSATIONS: "conversations",
    PINNED: "conversations",
    TASKS: "tasks",
    SEARCH: "search results",
    SHARES: "shares",
    FEEDBACK: "feedback",
}
_WHAT: Final = {
    HISTORY: "another conversation, or another user",
    TREE: "another conversation, or another user",
    CONVERSATIONS: "another user, or other filters",
    PINNED: "another user, or other filters",
    TASKS: "another user, or another completed= filter",
    SEARCH: "another user, another query or another conversation",
    SHARES: "another user",
    FEEDBACK: "other filters",
}
# Real rows are written now; anything far from now was not issued by this package, and
# PostgreSQL and asyncpg cannot both take every datetime Python can.
EARLIEST: Final = datetime(1900, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(9999, 1, 1, tzinfo=UTC)
_MAX_LENGTH: Final = 200


def _scope(kind: str, user_id: uuid.UUID, scope: object) -> str:
    raw = f"{kind}|{user_id}|{scope}".encode()
    return hashlib.blake2b(raw, digest_size=6).hexdigest()


def encode(kind: str, user_id: uuid.UUID, scope: object, at: datetime, row_id: uuid.UUID) -> str:
    """The cursor of the row at (`at`, `row_id`) in the listing `kind` of `scope`."""
    raw = f"{kind}|{_scope(kind, user_id, scope)}|{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(
    field: str, cursor: object, kind: str, user_id: uuid.UUID, scope: object
) -> tuple[datetime, uuid.UUID]:
    """The position a cursor names, if it belongs to this listing; else `ValidationError`."""
    return decode_any(field, cursor, (kind,), user_id, scope)[1:]


def decode_any(
    field: str, cursor: object, kinds: tuple[str, ...], user_id: uuid.UUID, scope: object
) -> tuple[str, datetime, uuid.UUID]:
    """The kind and position a cursor names, if it belongs to a listing of one of `kinds`
    (the parts of one listing, as pinned conversations first and then the others)."""
    if not isinstance(cursor, str) or len(cursor) > _MAX_LENGTH:
        raise ValidationError(field, "must be a cursor string from a previous page")

    def read() -> tuple[str, str, datetime, uuid.UUID]:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        issued_kind, digest, at, row_id = raw.split("|")
        return issued_kind, digest, datetime.fromisoformat(at), uuid.UUID(row_id)

    problem = "is not a cursor this API issued"
    issued_kind, digest, moment, row_id = parsed(field, read, (ValueError,), problem)
    if issued_kind not in kinds:
        listing = _KINDS.get(issued_kind, "something else")
        raise ValidationError(field, f"is a cursor of {listing}, not of {_KINDS[kinds[0]]}")
    if digest != _scope(issued_kind, user_id, scope):
        raise ValidationError(field, f"is a cursor of {_WHAT[issued_kind]}")
    if moment.tzinfo is None or not EARLIEST <= moment < LATEST:
        raise ValidationError(field, "names a time outside the range of stored rows")
    return issued_kind, moment, row_id


__all__ = [
    "CONVERSATIONS",
    "EARLIEST",
    "FEEDBACK",
    "HISTORY",
    "LATEST",
    "PINNED",
    "SEARCH",
    "SHARES",
    "TASKS",
    "TREE",
    "decode",
    "decode_any",
    "encode",
]
