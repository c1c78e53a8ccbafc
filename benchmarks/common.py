"""What every implementation of the suite shares: the pool size, cursors, the turn written."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg

from faceplate_models.store import _cursors as cursors

#: Pooled connections of every implementation, as the store's default maximum.
POOL = 20


def next_cursor(
    rows: Sequence[Any], limit: int, kind: str, user: uuid.UUID, scope: object, at: str
) -> str | None:
    """The store's own cursor after the first `limit` of `rows` (fetched `limit + 1`), None
    when nothing lies beyond: every implementation returns the same, and takes it back.
    A row is a mapping (asyncpg, Piccolo) or a model (SQLAlchemy, Tortoise)."""
    if len(rows) <= limit:
        return None
    last = rows[limit - 1]
    if isinstance(last, Mapping | asyncpg.Record):
        return cursors.encode(kind, user, scope, last[at], last["id"])
    return cursors.encode(kind, user, scope, getattr(last, at), last.id)


def position(
    given: str | None, kind: str, user: uuid.UUID, scope: object
) -> tuple[datetime, uuid.UUID] | None:
    return None if given is None else cursors.decode("cursor", given, kind, user, scope)


def placed(leaf: Any, ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID | None, int, uuid.UUID]]:
    """Where a linear append's messages go on the tree: (parent, depth, segment) of each,
    after `leaf` (its id, depth and segment), whose segment they continue since a leaf has
    no reply yet; or, in an empty conversation, from the root. The peers write these
    columns as the store does (not its open-call bookkeeping, which no benchmark reads)."""
    parent, depth, segment = leaf if leaf is not None else (None, -1, ids[0])
    places = []
    for message_id in ids:
        depth += 1
        places.append((parent, depth, segment))
        parent = message_id
    return places


def turn(call_id: str) -> list[dict[str, Any]]:
    """One chat turn of four messages: the question, a tool call, its result, the answer."""
    return [
        {"role": "user", "content": "What is still open on my list?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": "todo_list", "arguments": json.dumps({"open": True})},
                }
            ],
        },
        {
            "role": "tool",
            "tool_results": [
                {"tool_call_id": call_id, "content": [{"type": "text", "text": "Renew passport"}]}
            ],
        },
        {"role": "assistant", "content": "One thing: renew the passport."},
    ]
