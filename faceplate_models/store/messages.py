"""Messages: appending to a conversation's tree, editing a message, checking a turn.

A turn (one message or several) is stored in one transaction: the conversation's row is
locked first (which proves ownership and orders the conversation's appends), then one
statement writes the messages, records their tool calls, marks the calls their results
answer, and moves the conversation's activity time and active leaf. Messages take their times
from the locked row, strictly after the previous activity, so the newest message of a
conversation is the one written last.

A turn goes after the active leaf (the default), or after a given message (`after=`: a new
branch when that message has a reply already), or, to edit a first message, at the root.
Either way the last message stored becomes the active leaf. Tool calls pair along the path:
a result answers a call open on it (made above and not answered there yet), and a call may
not reuse the id of one still open there; another branch may use the same ids.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import asyncpg
from uuid6 import uuid7

from faceplate_models.engine import Connection, current
from faceplate_models.errors import Conflict, MigrationError, ValidationError
from faceplate_models.models import TOOL_CALL_ID_MAX, Message, Role
from faceplate_models.store import paths
from faceplate_models.store.rows import builder, columns, fetchrow, missing, now, run
from faceplate_models.store.validation import (
    MAX_JSON_BYTES,
    MAX_TEXT_CHARS,
    as_uuid,
    json_text,
    optional_text,
    role,
    text,
)

#: Most messages in one turn.
MAX_TURN_MESSAGES: Final = 64
#: Largest turn: its texts (in characters) and JSON values (in bytes) together.
MAX_TURN_SIZE: Final = 4 * MAX_JSON_BYTES

COLUMNS: Final = columns(Message)
messages_of = builder(Message, COLUMNS)
_KEYS: Final = frozenset({"role", "content", "tool_calls", "tool_results"})


def _parent_sql(place: str, *, lock: bool) -> str:
    # $1 conversation, $2 user, $3 the turn's first message and $4 its turn id (a repeat, if
    # either is stored), and for `after` $5, the message to follow.
    #
    # A row lock that had to wait returns the row's newest version, but the rest of the
    # statement still reads the snapshot taken before the wait, which lacks what the append
    # it waited for wrote: `stale` says so, and the caller reads again in a new statement.
    follows = {
        LEAF: f"LEFT JOIN LATERAL {paths.leaf('owned', '$2')} p ON true",
        AFTER: f"LEFT JOIN LATERAL {paths.leaf('owned', '$2', '$5')} p ON true",
        ROOT: "LEFT JOIN (SELECT NULL::uuid AS id, NULL::int AS depth, NULL::uuid AS "
        "segment_id, NULL::jsonb AS open_calls) p ON true",
    }[place]
    return f"""WITH owned AS (
        SELECT id, updated_at, active_leaf_id, xmin FROM faceplate.conversations
        WHERE id = $1 AND user_id = $2{" FOR NO KEY UPDATE" if lock else ""}
    )
    SELECT owned.updated_at, p.id, p.depth, p.segment_id, p.open_calls,
        owned.xmin::text <> (SELECT xmin::text FROM faceplate.conversations WHERE id = $1)
            AS stale,
        EXISTS (SELECT 1 FROM faceplate.messages n WHERE n.segment_id = p.segment_id
                AND n.depth = p.depth + 1 AND n.user_id = $2) AS continued,
        EXISTS (SELECT 1 FROM faceplate.messages WHERE id = $3 AND user_id = $2)
        OR EXISTS (SELECT 1 FROM faceplate.messages
                   WHERE conversation_id = $1 AND turn_id = $4 AND user_id = $2) AS repeated
    FROM owned {follows}"""


#: Where a turn goes: after the active leaf, after a given message, or at the root.
LEAF: Final = "leaf"
AFTER: Final = "after"
ROOT: Final = "root"
#: Ownership, the lock that orders the conversation's appends, and where the turn goes.
LOCK_CONVERSATION_SQL: Final = {
    place: _parent_sql(place, lock=True) for place in (LEAF, AFTER, ROOT)
}
PARENT_SQL: Final = {place: _parent_sql(place, lock=False) for place in (LEAF, AFTER, ROOT)}
# $1 conversation, $2 user, $3 the time of the last message, $4 the ids, $5 the turn, then the
# columns of each message ($6-$14), the calls made ($15-$18), the calls of earlier messages
# answered ($19-$21), and the calls left open on the new active path ($22).
APPEND_SQL: Final = f"""WITH new_messages AS (
        INSERT INTO faceplate.messages ({COLUMNS})
        SELECT m.id, $1, m.parent_id, $2, m.role, m.content, m.tool_calls, m.tool_results,
               m.depth, m.segment_id, m.fork_segment_id, m.open_calls,
               $3::timestamptz - (cardinality($4::uuid[]) - m.n) * interval '1 microsecond', $5
        FROM unnest($4::uuid[], $6::uuid[], $7::text[], $8::text[], $9::jsonb[],
                    $10::jsonb[], $11::int[], $12::uuid[], $13::uuid[], $14::jsonb[])
             WITH ORDINALITY AS m(id, parent_id, role, content, tool_calls, tool_results, depth,
                                  segment_id, fork_segment_id, open_calls, n)
        RETURNING {COLUMNS}
    ), new_calls AS (
        INSERT INTO faceplate.tool_calls
            (id, conversation_id, user_id, call_id, message_id, result_message_id, created_at)
        SELECT c.id, $1, $2, c.call_id, c.message_id, c.result_message_id, $3
        FROM unnest($15::uuid[], $16::text[], $17::uuid[], $18::uuid[])
             AS c(id, call_id, message_id, result_message_id)
        WHERE EXISTS (SELECT 1 FROM new_messages)
    ), answered AS (
        UPDATE faceplate.tool_calls AS t SET result_message_id = a.result_message_id
        FROM unnest($19::uuid[], $20::text[], $21::uuid[])
             AS a(message_id, call_id, result_message_id)
        WHERE t.message_id = a.message_id AND t.call_id = a.call_id AND t.user_id = $2
          AND t.result_message_id IS NULL AND EXISTS (SELECT 1 FROM new_messages)
    ), touched AS (
        UPDATE faceplate.conversations
        SET updated_at = $3, active_leaf_id = $4[cardinality($4)], open_calls = $22
        WHERE id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM new_messages)
    )
    SELECT {COLUMNS} FROM new_messages"""
STORED_SQL: Final = f"""SELECT {COLUMNS} FROM faceplate.messages
    WHERE conversation_id = $1 AND user_id = $2 AND (id = ANY($3::uuid[]) OR turn_id = $4)
    ORDER BY created_at, id"""
_EDITED_SQL: Final = """SELECT role, parent_id FROM faceplate.messages
    WHERE id = $1 AND conversation_id = $2 AND user_id = $3"""


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


@dataclass
class _Plan:
    """Where a turn's messages go on the tree, and what they do to the tool calls."""

    parents: list[uuid.UUID | None] = field(default_factory=list)
    depths: list[int] = field(default_factory=list)
    segments: list[uuid.UUID] = field(default_factory=list)
    forks: list[uuid.UUID | None] = field(default_factory=list)
    opens: list[str | None] = field(default_factory=list)  # open after each message, as JSON
    calls: list[tuple[str, uuid.UUID, uuid.UUID | None]] = field(default_factory=list)
    answers: list[tuple[uuid.UUID, str, uuid.UUID]] = field(default_factory=list)
    left_open: int = 0


def _plan(drafts: Sequence[_Draft], parent: asyncpg.Record | None) -> _Plan:
    """Place `drafts` after `parent` (None: at the root) and pair their tool calls along the
    path; `ValidationError` for a result that answers nothing open there, or a call id that
    one still open there has."""
    opens: dict[str, str] = dict(json.loads(parent["open_calls"] or "{}")) if parent else {}
    made: dict[str, uuid.UUID] = {}  # calls of this turn, by id
    answered_here: dict[str, uuid.UUID] = {}  # ... and the messages of it answering them
    plan = _Plan()
    above = parent
    for number, draft in enumerate(drafts):
        for call in draft.results:
            maker = opens.pop(call, None)
            if maker is None:
                raise ValidationError(
                    "tool_results",
                    f"{call!r} answers no tool call open on this branch (no message above it "
                    "made that call, or a result above it answered it already)",
                )
            if call in made:
                answered_here[call] = draft.id
            else:
                plan.answers.append((uuid.UUID(maker), call, draft.id))
        for call in draft.calls:
            if call in opens:
                raise ValidationError(
                    "tool_calls",
                    f"call id {call!r} is still open on this branch: a call may not reuse the "
                    "id of one that has no result yet",
                )
            opens[call] = str(draft.id)
            made[call] = draft.id
        if number:  # the turn goes on in the segment its first message chose
            plan.parents.append(drafts[number - 1].id)
            plan.depths.append(plan.depths[-1] + 1)
            plan.segments.append(plan.segments[-1])
            plan.forks.append(None)
        elif above is None:  # a root
            plan.parents.append(None)
            plan.depths.append(0)
            plan.segments.append(draft.id)
            plan.forks.append(None)
        else:
            plan.parents.append(above["id"])
            plan.depths.append(above["depth"] + 1)
            branching = above["continued"]  # its reply so far keeps the segment
            plan.segments.append(draft.id if branching else above["segment_id"])
            plan.forks.append(above["segment_id"] if branching else None)
        plan.opens.append(json.dumps(opens) if opens else None)
    plan.calls.extend((call, message, answered_here.get(call)) for call, message in made.items())
    plan.left_open = len(opens)
    return plan


def _same_turn(drafts: Sequence[_Draft], rows: Sequence[asyncpg.Record]) -> bool:
    """Whether stored `rows` are the messages `drafts` describe (JSON compared as values)."""

    def decoded(value: str | None) -> Any:
        return None if value is None else json.loads(value)

    return len(drafts) == len(rows) and all(
        (d.role.value, d.content, decoded(d.tool_calls), decoded(d.tool_results))
        == (r["role"], r["content"], decoded(r["tool_calls"]), decoded(r["tool_results"]))
        for d, r in zip(drafts, rows, strict=True)
    )


def _where(after: uuid.UUID | None, root: bool) -> tuple[str, tuple[uuid.UUID, ...]]:
    """The shape of `_parent_sql` for a turn's place, and its extra parameter."""
    if root:
        return ROOT, ()
    return (LEAF, ()) if after is None else (AFTER, (after,))


def _placed(row: asyncpg.Record, after: uuid.UUID | None) -> asyncpg.Record | None:
    """The message a turn follows, from the row of `_parent_sql` (None: at the root)."""
    if row["id"] is None:
        if after is not None:
            raise missing("message", after)
        return None
    if row["depth"] is None:
        raise MigrationError(
            "this conversation's history is not placed on its tree yet: the migration that "
            "does it has not finished; run `faceplate-db upgrade`"
        )
    return row


async def _append(
    uid: uuid.UUID,
    cid: uuid.UUID,
    drafts: list[_Draft],
    turn: uuid.UUID | None,
    *,
    after: uuid.UUID | None = None,
    root: bool = False,
) -> list[Message]:
    """Store `drafts` as one turn; a repeat (same turn, or a retry) returns the first's."""
    client = current()
    ids = [d.id for d in drafts]
    at = now()
    place, extra = _where(after, root)
    args = (cid, uid, ids[0], turn, *extra)

    async def append(conn: Connection) -> list[asyncpg.Record]:
        async with client.atomic(conn):
            try:
                row = await conn.fetchrow(
                    LOCK_CONVERSATION_SQL[place], *args, timeout=client.lock_wait
                )
            except TimeoutError:  # asyncpg has asked the server to cancel the wait
                raise client.waited_too_long() from None
            if row is None:
                raise missing("conversation", cid)
            if row["stale"]:  # the lock waited for another append: see it
                row = await conn.fetchrow(PARENT_SQL[place], *args)
                assert row is not None  # noqa: S101 - the conversation is locked, not gone
            if row["repeated"]:  # what the first call stored
                stored = list(await conn.fetch(STORED_SQL, cid, uid, ids, turn))
                if turn is not None and not _same_turn(drafts, stored):
                    raise Conflict(
                        f"turn {turn} is already stored with other messages: a turn_id names "
                        "one request, so a retry must repeat its messages and a new request "
                        "needs a new turn_id (get_turn reads what is stored)"
                    )
                return stored
            plan = _plan(drafts, _placed(row, after))
            # After the previous activity, one microsecond apart, the last one now.
            last = max(at, row["updated_at"] + timedelta(microseconds=len(drafts)))
            made = plan.calls
            return list(
                await conn.fetch(
                    APPEND_SQL,
                    cid,
                    uid,
                    last,
                    ids,
                    turn,
                    plan.parents,
                    [d.role.value for d in drafts],
                    [d.content for d in drafts],
                    [d.tool_calls for d in drafts],
                    [d.tool_results for d in drafts],
                    plan.depths,
                    plan.segments,
                    plan.forks,
                    plan.opens,
                    [uuid7() for _ in made],
                    [call for call, _, _ in made],
                    [message for _, message, _ in made],
                    [answer for _, _, answer in made],
                    [message for message, _, _ in plan.answers],
                    [call for _, call, _ in plan.answers],
                    [answer for _, _, answer in plan.answers],
                    plan.left_open,
                )
            )

    rows = await run(append, user=uid)
    return sorted(messages_of.many(rows), key=lambda m: (m.created_at, m.id))


def _after(after: object) -> uuid.UUID | None:
    return None if after is None else as_uuid("after", after)


async def append_message(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    role: Role | str,
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_results: list[dict[str, Any]] | None = None,
    after: uuid.UUID | str | None = None,
) -> Message:
    """Add a message after the active leaf (or after message `after`, which starts a branch
    when that message has a reply already); it becomes the active leaf, and the
    conversation's activity time moves.

    `content` may be None only for an assistant message that calls tools or a tool message
    that carries results. `tool_calls` (assistant messages only) are OpenAI-shaped;
    `tool_results` (tool messages only) answer calls open on the path:
    `[{"tool_call_id", "content", "is_error"?}]`.
    """
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    draft = _Draft(
        {"role": role, "content": content, "tool_calls": tool_calls, "tool_results": tool_results},
        "",
    )
    [message] = await _append(uid, cid, [draft], None, after=_after(after))
    return message


async def append_turn(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    messages: Sequence[Mapping[str, Any]],
    turn_id: uuid.UUID | str | None = None,
    after: uuid.UUID | str | None = None,
) -> list[Message]:
    """Store one chat turn (each message a dict of `append_message`'s keywords) atomically,
    after the active leaf or after message `after`; its last message becomes the active leaf.

    The messages are stored in order, in one transaction with one activity-time update:
    all or none. A result may answer a call made earlier in the same turn. `turn_id` (a
    UUID the client chooses, such as its request id) makes the call idempotent: repeating
    it, even racing, returns the first call's messages and writes nothing; repeating it with
    other messages is a `Conflict`.
    """
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    # Without a turn id, a retry still finds the turn by its first message's id.
    turn = as_uuid("turn_id", turn_id) if turn_id is not None else None
    return await _append(uid, cid, _drafts(messages), turn, after=_after(after))


async def check_turn(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    messages: Sequence[Mapping[str, Any]],
    after: uuid.UUID | str | None = None,
) -> None:
    """Validate a turn exactly as `append_turn` would, writing nothing: a backend checks a
    model's tool calls before it runs the tools. Raises what `append_turn` would raise
    (`ValidationError`, `NotFound`); returns None when the turn would be stored."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    where = _after(after)
    drafts = _drafts(messages)
    place, extra = _where(where, False)
    row = await fetchrow(PARENT_SQL[place], cid, uid, drafts[0].id, None, *extra, user=uid)
    if row is None:
        raise missing("conversation", cid)
    _plan(drafts, _placed(row, where))


async def edit_message(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    message_id: uuid.UUID | str,
    content: str,
    turn_id: uuid.UUID | str | None = None,
) -> Message:
    """Store `content` as a new version of a user's message: a sibling of it (the same
    parent), which becomes the active leaf. The old version and its answers stay, one
    `switch_branch` away. `turn_id` makes it idempotent, as in `append_turn`."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    mid = as_uuid("message_id", message_id)
    turn = as_uuid("turn_id", turn_id) if turn_id is not None else None
    draft = _Draft({"role": Role.USER, "content": content}, "")
    row = await fetchrow(_EDITED_SQL, mid, cid, uid, user=uid)
    if row is None:
        raise missing("message", mid)
    if row["role"] != Role.USER:
        raise ValidationError(
            "message_id",
            f"is {row['role']} message; only a user's message is edited (an answer is "
            "regenerated: see regenerate)",
        )
    parent = row["parent_id"]
    [message] = await _append(uid, cid, [draft], turn, after=parent, root=parent is None)
    return message


__all__ = [
    "AFTER",
    "APPEND_SQL",
    "COLUMNS",
    "LEAF",
    "LOCK_CONVERSATION_SQL",
    "MAX_TURN_MESSAGES",
    "MAX_TURN_SIZE",
    "PARENT_SQL",
    "ROOT",
    "append_message",
    "append_turn",
    "check_turn",
    "edit_message",
    "messages_of",
]
