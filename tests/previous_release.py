"""The previous release's statements, as it runs them: the live-migration tests play that
release writing and reading while the new one migrates (expand, then contract).

Copied from faceplate_models/store/messages.py as it was before conversations became trees;
never edit them to follow the current code.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from faceplate_models.ids import uuid7

LOCK_CONVERSATION_SQL = """SELECT updated_at FROM faceplate.conversations
    WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE"""

# $1 conversation, $2 time of the last message, $3-$7 the messages' columns in order, $8 the
# turn; $9-$12 the calls made; $13-$14 the calls answered by earlier messages' results.
APPEND_SQL = """WITH new_messages AS (
        INSERT INTO faceplate.messages
            (id, conversation_id, role, content, tool_calls, tool_results, created_at, turn_id)
        SELECT m.id, $1, m.role, m.content, m.tool_calls, m.tool_results,
               $2::timestamptz - (cardinality($3::uuid[]) - m.n) * interval '1 microsecond', $8
        FROM unnest($3::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
             WITH ORDINALITY AS m(id, role, content, tool_calls, tool_results, n)
        WHERE NOT EXISTS (SELECT 1 FROM faceplate.messages WHERE id = $3[1])
          AND NOT EXISTS (SELECT 1 FROM faceplate.messages
                          WHERE conversation_id = $1 AND turn_id = $8)
        RETURNING id, conversation_id, role, content, tool_calls, tool_results, created_at, turn_id
    ), new_calls AS (
        INSERT INTO faceplate.tool_calls
            (id, conversation_id, call_id, message_id, result_message_id, created_at)
        SELECT c.id, $1, c.call_id, c.message_id, c.result_message_id, $2
        FROM unnest($9::uuid[], $10::text[], $11::uuid[], $12::uuid[])
             AS c(id, call_id, message_id, result_message_id)
        WHERE EXISTS (SELECT 1 FROM new_messages)
    ), answered AS (
        UPDATE faceplate.tool_calls AS t SET result_message_id = a.message_id
        FROM unnest($13::text[], $14::uuid[]) AS a(call_id, message_id)
        WHERE t.conversation_id = $1 AND t.call_id = a.call_id AND t.result_message_id IS NULL
          AND EXISTS (SELECT 1 FROM new_messages)
        RETURNING t.call_id
    ), touched AS (
        UPDATE faceplate.conversations SET updated_at = $2
        WHERE id = $1 AND EXISTS (SELECT 1 FROM new_messages)
    )
    SELECT id, conversation_id, role, content, tool_calls, tool_results, created_at, turn_id,
        (SELECT array_agg(call_id) FROM answered) AS answered
    FROM new_messages ORDER BY created_at"""

HISTORY_SQL = """SELECT id, conversation_id, role, content, tool_calls, tool_results, created_at,
    turn_id FROM faceplate.messages
    WHERE conversation_id = (SELECT id FROM faceplate.conversations WHERE id = $1 AND user_id = $2)
    ORDER BY created_at DESC, id DESC LIMIT $3"""


async def append(conn: Any, user_id: uuid.UUID, conversation_id: uuid.UUID, n: int) -> list[Any]:
    """The previous release's append of `n` user messages, as its store made it: the
    conversation's lock, then one statement. Returns the ids it acknowledged."""
    ids = [uuid7() for _ in range(n)]
    async with conn.transaction():
        previous = await conn.fetchval(LOCK_CONVERSATION_SQL, conversation_id, user_id)
        last = max(datetime.now(UTC), previous + timedelta(microseconds=n))
        rows = await conn.fetch(
            APPEND_SQL,
            conversation_id,
            last,
            ids,
            ["user"] * n,
            [f"written by the previous release {i}" for i in range(n)],
            [None] * n,
            [None] * n,
            None,
            [],
            [],
            [],
            [],
            [],
            [],
        )
    return [row["id"] for row in rows]
