"""Messages: appending a turn, reading the history, and the tool calls a turn leaves open.

A turn (one message or several) is stored in one transaction: the conversation's row is
locked first (which proves ownership), then one statement writes the messages, records
their tool calls and marks the calls their results answer, and moves the conversation's
activity time. Messages take their times from the locked row, strictly after the previous
activity, so a conversation's messages sort in the order they were committed: paging
forward from a cursor never skips one that committed late.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

import asyncpg
from uuid6 import uuid7

from faceplate_models.engine import Connection, current
from faceplate_models.errors import Conflict, ValidationError
from faceplate_models.models import TOOL_CALL_ID_MAX, Message, Role, ToolCall
from faceplate_models.store import cursors
from faceplate_models.store.rows import Page, builder, fetch, missing, now, page, run
from faceplate_models.store.validation import (
    MAX_JSON_BYTES,
    MAX_TEXT_CHARS,
    as_uuid,
    json_text,
    optional_text,
    page_size,
    role,
    text,
)

#: Most messages in one turn.
MAX_TURN_MESSAGES: Final = 64
#: Largest turn: its texts (in characters) and JSON values (in bytes) together.
MAX_TURN_SIZE: Final = 4 * MAX_JSON_BYTES

_COLUMNS = "id, conversation_id, role, content, tool_calls, tool_results, created_at, turn_id"
_messages = builder(Message, _COLUMNS)
_KEYS: Final = frozenset({"role", "content", "tool_calls", "tool_results"})
_CALL_UNIQUE = "uid_tool_calls_convers_"  # Aerich's name for unique (conversation_id, call_id)

# Ownership, and the lock that orders the conversation's appends.
LOCK_CONVERSATION_SQL = """SELECT updated_at FROM faceplate.conversations
    WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE"""
# $1 conversation, $2 time of the last message, $3-$7 the messages' columns in order, $8 the
# turn; $9-$12 the calls made; $13-$14 the calls answered by earlier messages' results.
# Nothing is written when the first message exists (a retry whose first attempt committed)
# or the turn does (a repeated append_turn).
APPEND_SQL = f"""WITH new_messages AS (
        INSERT INTO faceplate.messages ({_COLUMNS})
        SELECT m.id, $1, m.role, m.content, m.tool_calls, m.tool_results,
               $2::timestamptz - (cardinality($3::uuid[]) - m.n) * interval '1 microsecond', $8
        FROM unnest($3::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[])
             WITH ORDINALITY AS m(id, role, content, tool_calls, tool_results, n)
        WHERE NOT EXISTS (SELECT 1 FROM faceplate.messages WHERE id = $3[1])
          AND NOT EXISTS (SELECT 1 FROM faceplate.messages
                          WHERE conversation_id = $1 AND turn_id = $8)
        RETURNING {_COLUMNS}
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
    SELECT {_COLUMNS}, (SELECT array_agg(call_id) FROM answered) AS answered
    FROM new_messages ORDER BY created_at"""
STORED_SQL = f"""SELECT {_COLUMNS} FROM faceplate.messages
    WHERE conversation_id = $1 AND (id = ANY($2::uuid[]) OR turn_id = $3)
    ORDER BY created_at, id"""

# Ownership is part of the reads: another user's conversation yields no rows, exactly like a
# missing one.
_OWNED = "conversation_id = (SELECT id FROM faceplate.conversations WHERE id = $1 AND user_id = $2)"
HISTORY_SQL = f"""SELECT {_COLUMNS} FROM faceplate.messages WHERE {_OWNED}
    ORDER BY created_at DESC, id DESC LIMIT $3"""
HISTORY_BEFORE_SQL = f"""SELECT {_COLUMNS} FROM faceplate.messages WHERE {_OWNED}
      AND (created_at, id) < ($4, $5)
    ORDER BY created_at DESC, id DESC LIMIT $3"""
HISTORY_AFTER_SQL = f"""SELECT {_COLUMNS} FROM faceplate.messages WHERE {_OWNED}
      AND (created_at, id) > ($4, $5)
    ORDER BY created_at, id LIMIT $3"""
TURN_SQL = f"""SELECT {_COLUMNS} FROM faceplate.messages WHERE {_OWNED} AND turn_id = $3
    ORDER BY created_at, id"""
_OWNS_SQL = "SELECT EXISTS (SELECT 1 FROM faceplate.conversations WHERE id = $1 AND user_id = $2)"
_TOOL_CALL_COLUMNS = "id, conversation_id, call_id, message_id, result_message_id, created_at"
_tool_calls = builder(ToolCall, _TOOL_CALL_COLUMNS)
OPEN_TOOL_CALLS_SQL = f"""SELECT {", ".join("t." + c for c in _TOOL_CALL_COLUMNS.split(", "))}
    FROM faceplate.tool_calls t JOIN faceplate.conversations c ON c.id = t.conversation_id
    WHERE c.user_id = $1 AND t.result_message_id IS NULL
      AND ($2::uuid IS NULL OR t.conversation_id = $2)
    ORDER BY t.created_at, t.id LIMIT $3"""


class _Draft:
    """One message of a turn, validated and encoded, with the calls it makes and answers."""

    __slots__ = ("calls", "content", "id", "results", "role", "size", "tool_calls", "tool_results")

    def __init__(self, message: Mapping[str, Any], where: str) -> None:
        self.id = uuid7()
        self.role = role(message.get("role"))
        self.content = optional_text(f"{where}content", message.get("content"), MAX_TEXT_CHARS)
        self.calls: list[str] = []
        self.results: list[str] = []
        self.tool_calls = _tool_calls_json(f"{where}tool_calls", message.get("tool_calls"), self)
        self.tool_results = _results_json(f"{where}tool_results", message.get("tool_results"), self)
        if self.calls and self.role is not Role.ASSISTANT:
            raise ValidationError(
                f"{where}tool_calls", f"only assistant messages call tools, not {self.role}"
            )
        if self.results and self.role is not Role.TOOL:
            raise ValidationError(
                f"{where}tool_results", f"only tool messages carry results, not {self.role}"
            )
        if self.content is None and not self.calls and not self.results:
            raise ValidationError(
                f"{where}content", "is required unless the message has tool calls or results"
            )
        self.size = (
            len(self.content or "") + len(self.tool_calls or "") + len(self.tool_results or "")
        )


def _identifier(field: str, value: object, what: str) -> str:
    ident = text(field, value, TOOL_CALL_ID_MAX) if isinstance(value, str) else None
    if not ident:
        raise ValidationError(field, f"{what} must be a non-empty string")
    return ident


def _tool_calls_json(field: str, value: object, draft: _Draft) -> str | None:
    """OpenAI-shaped tool calls: `{"id", "type": "function", "function": {"name",
    "arguments"}}`, where `arguments` is the JSON text of an object."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError(field, "must be a non-empty list of tool calls")
    if len(value) > MAX_TURN_MESSAGES * 4:
        raise ValidationError(field, f"has more than {MAX_TURN_MESSAGES * 4} calls")
    for index, call in enumerate(value):
        where = f"entry {index}"
        if not isinstance(call, dict) or set(call) - {"id", "type", "function"}:
            raise ValidationError(field, f"{where} must be a dict of id, type and function")
        draft.calls.append(_identifier(field, call.get("id"), f"{where}'s 'id'"))
        if call.get("type") != "function":
            raise ValidationError(field, f"{where}'s 'type' must be 'function'")
        function = call.get("function")
        if not isinstance(function, dict) or set(function) != {"name", "arguments"}:
            raise ValidationError(field, f"{where}'s 'function' must have name and arguments")
        _identifier(field, function["name"], f"{where}'s function name")
        if not isinstance(function["arguments"], str):
            raise ValidationError(
                field, f"{where}'s arguments must be the JSON text of an object (a str)"
            )
    encoded = json_text(field, value)
    for index, call in enumerate(value):
        if not _is_json_object(call["function"]["arguments"]):
            raise ValidationError(field, f"entry {index}'s arguments are not a JSON object")
    if len(set(draft.calls)) != len(draft.calls):
        raise ValidationError(field, "repeats a call id")
    return encoded


def _is_json_object(arguments: str) -> bool:
    try:
        return isinstance(json.loads(arguments), dict)
    except ValueError:
        return False


def _results_json(field: str, value: object, draft: _Draft) -> str | None:
    """Results: `{"tool_call_id", "content", "is_error"?}`; `content` is any JSON value, such
    as the content blocks of an MCP `CallToolResult` (pydantic blocks are dumped as JSON)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError(field, "must be a non-empty list of tool results")
    if len(value) > MAX_TURN_MESSAGES * 4:
        raise ValidationError(field, f"has more than {MAX_TURN_MESSAGES * 4} results")
    results = []
    for index, result in enumerate(value):
        where = f"entry {index}"
        if (
            not isinstance(result, dict)
            or "tool_call_id" not in result
            or "content" not in result
            or set(result) - {"tool_call_id", "content", "is_error"}
        ):
            raise ValidationError(
                field, f"{where} must be a dict of tool_call_id, content and is_error (optional)"
            )
        draft.results.append(_identifier(field, result["tool_call_id"], f"{where}'s tool_call_id"))
        if not isinstance(result.get("is_error", False), bool):
            raise ValidationError(field, f"{where}'s is_error must be True or False")
        results.append({**result, "content": _dumped(field, result["content"])})
    if len(set(draft.results)) != len(draft.results):
        raise ValidationError(field, "answers a call twice")
    return json_text(field, results)


def _dumped(field: str, content: object) -> object:
    """MCP clients hand out content blocks as pydantic models; stored, they are their JSON."""
    if callable(getattr(type(content), "model_dump", None)):
        try:
            return content.model_dump(  # type: ignore[attr-defined]
                mode="json", by_alias=True, exclude_none=True
            )
        except Exception as exc:
            raise ValidationError(field, f"holds a model that cannot be dumped: {exc}") from None
    if isinstance(content, list | tuple):
        return [_dumped(field, item) for item in content]
    return content


def _drafts(messages: object) -> list[_Draft]:
    if not isinstance(messages, list | tuple) or not messages:
        raise ValidationError("messages", "must be a non-empty list of messages")
    if len(messages) > MAX_TURN_MESSAGES:
        raise ValidationError("messages", f"has more than {MAX_TURN_MESSAGES} messages")
    drafts: list[_Draft] = []
    size = 0
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or set(message) - _KEYS:
            raise ValidationError(
                "messages", f"entry {index} must be a dict of {', '.join(sorted(_KEYS))}"
            )
        drafts.append(_Draft(message, f"messages[{index}]."))
        size += drafts[-1].size
        if size > MAX_TURN_SIZE:
            raise ValidationError("messages", f"are larger than {MAX_TURN_SIZE} together")
    return drafts


async def _append(
    uid: uuid.UUID, cid: uuid.UUID, drafts: list[_Draft], turn: uuid.UUID | None
) -> list[Message]:
    """Store `drafts` as one turn; a repeat (same turn, or a retry) returns the first's."""
    made: dict[str, uuid.UUID] = {}  # call id -> the draft that made it
    answered_here: dict[str, uuid.UUID] = {}  # calls of this turn answered in this turn
    answer_earlier: dict[str, uuid.UUID] = {}  # calls of earlier turns answered now
    for draft in drafts:
        for call in draft.calls:
            if call in made:
                raise ValidationError("tool_calls", f"call id {call!r} repeats within the turn")
            made[call] = draft.id
        for call in draft.results:
            if call in answered_here or call in answer_earlier:
                raise ValidationError("tool_results", f"call {call!r} is answered twice")
            (answered_here if call in made else answer_earlier)[call] = draft.id
    client = current()
    ids = [d.id for d in drafts]
    at = now()

    async def append(conn: Connection) -> list[asyncpg.Record]:
        async with client.atomic(conn):
            try:
                previous = await conn.fetchval(
                    LOCK_CONVERSATION_SQL, cid, uid, timeout=client.lock_wait
                )
            except TimeoutError:  # asyncpg has asked the server to cancel the wait
                raise client.waited_too_long() from None
            if previous is None:
                raise missing("conversation", cid)
            # After the previous activity, one microsecond apart, the last one now.
            last = max(at, previous + timedelta(microseconds=len(drafts)))
            try:
                rows = await conn.fetch(
                    APPEND_SQL,
                    cid,
                    last,
                    ids,
                    [d.role.value for d in drafts],
                    [d.content for d in drafts],
                    [d.tool_calls for d in drafts],
                    [d.tool_results for d in drafts],
                    turn,
                    [uuid7() for _ in made],
                    list(made),
                    list(made.values()),
                    [answered_here.get(call) for call in made],
                    list(answer_earlier),
                    list(answer_earlier.values()),
                )
            except asyncpg.UniqueViolationError as exc:
                if not (exc.constraint_name or "").startswith(_CALL_UNIQUE):
                    raise
                raise ValidationError(
                    "tool_calls",
                    f"a call id of this turn ({', '.join(made)}) is already used in this "
                    "conversation",
                ) from None
            if not rows:  # a repeat: what the first call stored
                stored = list(await conn.fetch(STORED_SQL, cid, ids, turn))
                if turn is not None and not _same_turn(drafts, stored):
                    raise Conflict(
                        f"turn {turn} is already stored with other messages: a turn_id names "
                        "one request, so a retry must repeat its messages and a new request "
                        "needs a new turn_id (get_turn reads what is stored)"
                    )
                return stored
            unanswered = set(answer_earlier) - set(rows[0]["answered"] or ())
            if unanswered:
                raise ValidationError(
                    "tool_results",
                    f"{', '.join(sorted(unanswered))} answer no open tool call of this "
                    "conversation (no earlier assistant message made them, or they were "
                    "answered already)",
                )
            return list(rows)

    return _messages.many(await run(append, user=uid))


def _same_turn(drafts: Sequence[_Draft], rows: Sequence[asyncpg.Record]) -> bool:
    """Whether stored `rows` are the messages `drafts` describe (JSON compared as values)."""

    def decoded(value: str | None) -> Any:
        return None if value is None else json.loads(value)

    return len(drafts) == len(rows) and all(
        (d.role.value, d.content, decoded(d.tool_calls), decoded(d.tool_results))
        == (r["role"], r["content"], decoded(r["tool_calls"]), decoded(r["tool_results"]))
        for d, r in zip(drafts, rows, strict=True)
    )


async def append_message(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    role: Role | str,
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_results: list[dict[str, Any]] | None = None,
) -> Message:
    """Add a message to the conversation and move the conversation's activity time.

    `content` may be None only for an assistant message that calls tools or a tool message
    that carries results. `tool_calls` (assistant messages only) are OpenAI-shaped, with ids
    unique in the conversation; `tool_results` (tool messages only) answer open calls of
    earlier assistant messages: `[{"tool_call_id", "content", "is_error"?}]`.
    """
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    draft = _Draft(
        {"role": role, "content": content, "tool_calls": tool_calls, "tool_results": tool_results},
        "",
    )
    [message] = await _append(uid, cid, [draft], None)
    return message


async def append_turn(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    messages: Sequence[Mapping[str, Any]],
    turn_id: uuid.UUID | str | None = None,
) -> list[Message]:
    """Store one chat turn (each message a dict of `append_message`'s keywords) atomically.

    The messages are stored in order, in one transaction with one activity-time update:
    all or none. A result may answer a call made earlier in the same turn. `turn_id` (a
    UUID the client chooses, such as its request id) makes the call idempotent: repeating
    it, even racing, returns the first call's messages and writes nothing.
    """
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    # Without a turn id, a retry still finds the turn by its first message's id.
    turn = as_uuid("turn_id", turn_id) if turn_id is not None else None
    return await _append(uid, cid, _drafts(messages), turn)


async def get_turn(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str, turn_id: uuid.UUID | str
) -> list[Message]:
    """The messages `append_turn(..., turn_id=turn_id)` stored, in order; `NotFound` when no
    such turn is stored. A backend retrying a request reads the stored turn here instead of
    running the model and the tools again."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    turn = as_uuid("turn_id", turn_id)
    rows = await fetch(TURN_SQL, cid, uid, turn, user=uid)
    if not rows:
        raise missing("turn", turn)
    return _messages.many(rows)


def _history_cursor(uid: uuid.UUID, cid: uuid.UUID) -> Any:
    return lambda at, row_id: cursors.encode(cursors.HISTORY, uid, cid, at, row_id)


async def get_history(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    limit: int = 100,
    before: str | None = None,
    after: str | None = None,
) -> Page[Message]:
    """Up to `limit` messages, oldest first: the newest ones, those before a cursor, or (with
    `after=`) those after it, for catching up after a reconnect.

    `next_cursor` continues in the same direction (as `before=`, or as `after=`); it is
    None at the start (or, going forward, at the end) of the conversation. `after_cursor`
    marks the newest message of the page: pass it as `after=` to fetch what came since.
    """
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    size = page_size(limit)
    if before is not None and after is not None:
        raise ValidationError("after", "cannot be combined with before=; page one way at a time")
    sql, args = HISTORY_SQL, [cid, uid, size + 1]
    if before is not None:
        sql = HISTORY_BEFORE_SQL
        args += cursors.decode("before", before, cursors.HISTORY, uid, cid)
    elif after is not None:
        sql = HISTORY_AFTER_SQL
        args += cursors.decode("after", after, cursors.HISTORY, uid, cid)

    async def read(conn: Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        if not rows and not await conn.fetchval(_OWNS_SQL, cid, uid):
            raise missing("conversation", cid)
        return rows

    cursor = _history_cursor(uid, cid)
    found = page(await run(read, user=uid, read=True), size, _messages, cursor, "created_at")
    if after is None:
        found.items.reverse()
    newest = found.items[-1] if found.items else None
    if newest is None:
        return Page(found.items, found.next_cursor, lambda: after)
    return Page(found.items, found.next_cursor, lambda: cursor(newest.created_at, newest.id))


async def list_open_tool_calls(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str | None = None, limit: int = 100
) -> list[ToolCall]:
    """Tool calls no result has answered yet, oldest first: in one conversation, or in all
    of the user's. A backend that crashed mid-turn answers them (for example with
    `is_error: True` results) so that the history is one the model APIs accept again."""
    uid = as_uuid("user_id", user_id)
    cid = None if conversation_id is None else as_uuid("conversation_id", conversation_id)
    rows = await fetch(OPEN_TOOL_CALLS_SQL, uid, cid, page_size(limit), user=uid)
    return _tool_calls.many(rows)


__all__ = [
    "APPEND_SQL",
    "HISTORY_AFTER_SQL",
    "HISTORY_BEFORE_SQL",
    "HISTORY_SQL",
    "LOCK_CONVERSATION_SQL",
    "MAX_TURN_MESSAGES",
    "MAX_TURN_SIZE",
    "TURN_SQL",
    "append_message",
    "append_turn",
    "get_history",
    "get_turn",
    "list_open_tool_calls",
]
