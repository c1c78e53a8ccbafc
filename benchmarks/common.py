"""What every implementation of the suite shares: the pool size, cursors, the turn written."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from faceplate_models.store import cursors

#: Pooled connections of every implementation, as the store's default maximum.
POOL = 20


def cursor_of(kind: str, user: uuid.UUID, scope: object, at: datetime, row_id: uuid.UUID) -> str:
    """The store's own cursor: every implementation returns the same, and takes it back."""
    return cursors.encode(kind, user, scope, at, row_id)


def position(
    given: str | None, kind: str, user: uuid.UUID, scope: object
) -> tuple[datetime, uuid.UUID] | None:
    return None if given is None else cursors.decode("cursor", given, kind, user, scope)


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
