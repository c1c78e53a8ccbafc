"""Messages: appending to a conversation's tree, editing a message, checking a turn.

A turn (one message or several) is stored by one call of `faceplate.append_turn`, a function
of the schema (migration 15): outside the caller's transaction that is one round trip, which
commits by itself. It locks the conversation's row first (which proves ownership and orders
the conversation's appends), then, in statements that see what the lock waited for, finds
where the turn goes, pairs its tool calls, writes the messages, records their tool calls,
marks the calls their results answer, and moves the conversation's activity time and active
leaf. Messages take their times from the locked row, strictly after the previous activity,
so the newest message of a conversation is the one written last.

A turn goes after the active leaf (the default), or after a given message (`after=`: a new
branch when that message has a reply already), or, to edit a first message, at the root.
Either way the last message stored becomes the active leaf. Tool calls pair along the path:
a result answers a call open on it (made above and not answered there yet), and a call may
not reuse the id of one still open there; another branch may use the same ids.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import asyncpg

from faceplate_models.engine import Connection, current, texts
from faceplate_models.errors import Conflict, FaceplateError, MigrationError, ValidationError
from faceplate_models.formats.shape import KEYS, Draft, drafts
from faceplate_models.ids import uuid7
from faceplate_models.models import Message, ReplyStatus, Role
from faceplate_models.store import _quotas as quotas
from faceplate_models.store._rows import (
    alone,
    builder,
    columns,
    locking,
    not_theirs,
    now,
    run,
)
from faceplate_models.validation import as_uuid, new_key

COLUMNS: Final = columns(Message)
messages_of = builder(Message, COLUMNS)


def cost_sql(at: str) -> str:
    """A message's cost, in micro-units: its usage (of `m`) at the price in force for its
    model at time `at` (per million tokens), rounded to the nearest micro-unit; NULL without
    a price."""
    return f"""(SELECT round((
        (m.usage->>'input_tokens')::numeric * p.input
        + (m.usage->>'cached_input_tokens')::numeric * p.cached_input
        + (m.usage->>'cache_write_tokens')::numeric * p.cache_write
        + (m.usage->>'output_tokens')::numeric * p.output) / 1000000)::bigint
    FROM faceplate.model_prices p
    WHERE p.provider = coalesce(m.provider, '') AND p.model = m.model AND p.starts_at <= {at}
    ORDER BY p.starts_at DESC LIMIT 1)"""


_TOKENS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens")


def _rollup(table: str, ids: str, models: tuple[str, str], conversation: str, value: str) -> str:
    """The answers of `new_messages` summed into a rollup `table`, one row per model (ids in
    `ids`, providers and models in `models`), upserted: the same sums for the rollup by
    conversation and the one by day. $1 is the conversation, $2 the user, $3 the time."""
    keys = f"user_id, day, {conversation}provider, model"
    return f"""
        INSERT INTO faceplate.{table} AS r (id, {keys}, answers, {", ".join(_TOKENS)},
            reasoning_tokens, cost, unpriced)
        SELECT g.id, $2, ($3 AT TIME ZONE 'UTC')::date, {value}g.provider, g.model, count(*),
               {", ".join(f"sum((n.usage->>'{t}')::bigint)" for t in _TOKENS)},
               sum((n.usage->>'reasoning_tokens')::bigint), coalesce(sum(n.cost), 0),
               count(*) FILTER (WHERE n.cost IS NULL)
        FROM unnest({ids}::text[]::uuid[], {models[0]}::text[], {models[1]}::text[])
             AS g(id, provider, model)
        JOIN new_messages n ON coalesce(n.provider, '') = g.provider AND n.model = g.model
        WHERE n.usage IS NOT NULL
        GROUP BY g.id, g.provider, g.model
        ON CONFLICT ({keys}) DO UPDATE SET answers = r.answers + EXCLUDED.answers,
            {", ".join(f"{t} = r.{t} + EXCLUDED.{t}" for t in (*_TOKENS, "reasoning_tokens"))},
            cost = r.cost + EXCLUDED.cost, unpriced = r.unpriced + EXCLUDED.unpriced"""


def money_sql(first: int) -> str:
    """What a turn with usage or a hold adds to its statement (CTEs after `new_messages`):
    the hold settled, the usage rolled up by conversation and by day. Its parameters start
    at `first`: the hold, then the usage rows, one per model: ids by conversation, the
    providers and models, ids by day."""
    hold, by_conversation, providers, models, by_day = (f"${first + n}" for n in range(5))
    return f"""
    ), settled AS (
        DELETE FROM faceplate.holds WHERE id = {hold} AND user_id = $2
    ), by_conversation AS ({
        _rollup("usage_rollups", by_conversation, (providers, models), "conversation_id, ", "$1, ")
    }
    ), by_day AS ({_rollup("usage_days", by_day, (providers, models), "", "")}"""


#: The fields a Draft holds as JSON text, as their columns come back: compared as values.
_ENCODED: Final = frozenset({"tool_calls", "tool_results", "thinking", "metadata"})


def _same_turn(drafts: Sequence[Draft], rows: Sequence[asyncpg.Record]) -> bool:
    """Whether stored `rows` are the messages `drafts` describe, field by field."""

    def decoded(value: str | None) -> Any:
        return None if value is None else json.loads(value)

    def same(draft: Draft, row: asyncpg.Record, name: str) -> bool:
        if name == "role":
            return bool(draft.role.value == row[name])
        if name == "usage":
            return bool(draft.usage == decoded(row[name]))
        if name in _ENCODED:
            return bool(decoded(getattr(draft, name)) == decoded(row[name]))
        return bool(getattr(draft, name) == row[name])

    return len(drafts) == len(rows) and all(
        same(draft, row, name) for draft, row in zip(drafts, rows, strict=True) for name in KEYS
    )


#: Where a turn goes: after the active leaf, after a given message, at the root, or beside
#: an edited message (with its parent).
LEAF: Final = "leaf"
AFTER: Final = "after"
ROOT: Final = "root"
EDIT: Final = "edit"
#: A turn, stored (or, with $28, checked) by the schema's function. $1 conversation, $2 user,
#: $3 the place and $4 its message, $5 the turn, $6 the conversation's message limit, $7 the
#: time, $8 the ids, then each message's columns ($9-$19), the call ids each answers and
#: makes ($20, $21), a key for each call made ($22), the hold the turn settles ($23) and its
#: usage rows, one per model: ids by conversation ($24), the models ($25, $26), ids by day
#: ($27).
APPEND_SQL: Final = f"""SELECT {COLUMNS} FROM faceplate.append_turn(
    $1, $2, $3, $4, $5, $6, $7, $8::text[]::uuid[], $9::text[], $10::text[],
    $11::text[]::jsonb[], $12::text[]::jsonb[], $13::text[], $14::text[], $15::text[],
    $16::text[]::jsonb[], $17::text[]::jsonb[], $18::text[]::jsonb[], $19::text[],
    $20::text[]::jsonb[], $21::text[]::jsonb[], $22::text[]::uuid[], $23,
    $24::text[]::uuid[], $25::text[], $26::text[], $27::text[]::uuid[], $28)"""


def _refused(exc: asyncpg.PostgresError, cid: uuid.UUID) -> FaceplateError | None:
    """The store's error for a problem `faceplate.append_turn` raised (its SQLSTATEs of
    class FP), or None for any other."""
    if (gone := not_theirs(exc)) is not None:
        return gone
    what, key = exc.args[0] if exc.args else "", getattr(exc, "detail", None)
    match getattr(exc, "sqlstate", None):
        case "FP422" if what == "tool_results":
            return ValidationError(
                what,
                f"{key!r} answers no tool call open on this branch (no message above it made "
                "that call, or a result above it answered it already)",
            )
        case "FP422" if what == "tool_calls":
            return ValidationError(
                what,
                f"call id {key!r} is still open on this branch: a call may not reuse the id "
                "of one that has no result yet",
            )
        case "FP422":
            return ValidationError(
                what,
                f"is {key} message; only a user's message is edited (an answer is "
                "regenerated: see regenerate)",
            )
        case "FP429":
            return quotas.exceeded("messages_per_conversation", f"conversation {cid}")
        case "FP503":
            return MigrationError(
                "this conversation's history is not placed on its tree yet: the migration "
                "that does it has not finished; run `faceplate-db upgrade`"
            )
    return None


def _arguments(
    uid: uuid.UUID,
    cid: uuid.UUID,
    drafts: Sequence[Draft],
    turn: uuid.UUID | None,
    place: str,
    anchor: uuid.UUID | None,
    *,
    hold: uuid.UUID | None = None,
    status: str | None = None,
    check: bool = False,
) -> tuple[object, ...]:
    """The parameters of `APPEND_SQL`."""
    # A usage row per model the turn's answers name, with an id made here.
    answered_by = list(dict.fromkeys((d.provider or "", d.model) for d in drafts if d.usage))
    return (
        cid,
        uid,
        place,
        anchor,
        turn,
        quotas.limits().messages_per_conversation,
        now(),
        texts(d.id for d in drafts),
        [d.role.value for d in drafts],
        [d.content for d in drafts],
        [d.tool_calls for d in drafts],
        [d.tool_results for d in drafts],
        [d.model for d in drafts],
        [d.provider for d in drafts],
        [d.finish_reason for d in drafts],
        [d.usage_json for d in drafts],
        [d.thinking for d in drafts],
        [d.metadata for d in drafts],
        [status for _ in drafts],
        [json.dumps(d.results) for d in drafts],
        [json.dumps(d.calls) for d in drafts],
        texts(uuid7() for d in drafts for _ in d.calls),
        hold,
        texts(uuid7() for _ in answered_by),
        [provider for provider, _ in answered_by],
        [model for _, model in answered_by],
        texts(uuid7() for _ in answered_by),
        check,
    )


async def _call(
    conn: Connection, cid: uuid.UUID, args: tuple[object, ...], *, alone: bool
) -> list[asyncpg.Record]:
    """`APPEND_SQL` with `args`; its problems as the store's errors.

    Called `alone`, it commits by itself: its lock wait is bounded by the server's lock
    timeout and the client's deadline, never ended at the client, which would leave its
    outcome unknown. In a transaction the client ends the wait (`locking`)."""
    try:
        if alone:
            return await conn.fetch(APPEND_SQL, *args)
        return await locking(conn, APPEND_SQL, *args, rows=True)
    except asyncpg.PostgresError as exc:
        if (refused := _refused(exc, cid)) is None:
            raise
        raise refused from None


async def _append(
    uid: uuid.UUID,
    cid: uuid.UUID,
    drafts: list[Draft],
    turn: uuid.UUID | None,
    *,
    after: uuid.UUID | None = None,
    root: bool = False,
    edited: uuid.UUID | None = None,
    hold: uuid.UUID | None = None,
    live: Callable[[Connection, list[asyncpg.Record]], Awaitable[None]] | None = None,
) -> list[Message]:
    """Store `drafts` as one turn after the active leaf, after message `after`, at the root,
    or beside message `edited`; a repeat (same turn, or a retry) returns the first's.

    With `live`, the turn is one reply being streamed ('streaming'), and `live(conn, rows)`
    runs in the turn's transaction once it is stored (a repeat included)."""
    client = current()
    status = ReplyStatus.STREAMING.value if live else None
    place, anchor = _place(after, root=root, edited=edited)
    args = _arguments(uid, cid, drafts, turn, place, anchor, hold=hold, status=status)

    async def append(conn: Connection) -> list[asyncpg.Record]:
        if live is None and alone(client):  # one round trip, committed by the server
            rows = await _call(conn, cid, args, alone=True)
        else:  # in the caller's transaction, a savepoint: a refused turn leaves it usable
            async with client.atomic(conn):
                rows = await _call(conn, cid, args, alone=False)
                if live is not None:
                    await live(conn, rows)
        if not _same_turn(drafts, rows):  # a repeat with other messages
            key = f"turn_id {turn}" if turn is not None else f"message_id {drafts[0].id}"
            raise Conflict(
                f"{key} is already stored with other messages (or elsewhere): it names one "
                "request, so a retry must repeat its messages and a new request needs a new "
                "id (get_turn reads a stored turn)"
            )
        return rows

    rows = await run(append, user=uid, conversation=cid)
    return sorted(messages_of.many(rows), key=lambda m: (m.created_at, m.id))


def _place(
    after: uuid.UUID | None, *, root: bool = False, edited: uuid.UUID | None = None
) -> tuple[str, uuid.UUID | None]:
    """Where a turn goes, for `APPEND_SQL`: the place and the message it names."""
    if edited is not None:
        return EDIT, edited
    if root:
        return ROOT, None
    return (LEAF, None) if after is None else (AFTER, after)


def _after(after: object) -> uuid.UUID | None:
    return None if after is None else as_uuid("after", after)


def _hold(hold: object) -> uuid.UUID | None:
    """A hold's id, from the `Hold` that `reserve` returned or the id itself."""
    if hold is None:
        return None
    return as_uuid("hold", getattr(hold, "id", hold))


async def append_message(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    role: Role | str,
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_results: list[dict[str, Any]] | None = None,
    after: uuid.UUID | str | None = None,
    model: str | None = None,
    provider: str | None = None,
    finish_reason: str | None = None,
    usage: Mapping[str, int] | None = None,
    thinking: list[dict[str, Any]] | None = None,
    metadata: dict[str, Any] | None = None,
    hold: Any = None,
    message_id: uuid.UUID | str | None = None,
) -> Message:
    """Add a message after the active leaf (or after message `after`, which starts a branch
    when that message has a reply already); it becomes the active leaf, and the
    conversation's activity time moves.

    `content` may be None only for an assistant message that calls tools or a tool message
    that carries results. `tool_calls` (assistant messages only) are OpenAI-shaped;
    `tool_results` (tool messages only) answer calls open on the path:
    `[{"tool_call_id", "content", "is_error"?}]`. An assistant's answer may say what it
    was: `model`, `provider`, `finish_reason`, `usage` (token counts, priced when stored)
    and `thinking` blocks; any message may carry the application's `metadata`. `hold`
    settles a budget's hold (see `reserve`) in the same transaction.

    `message_id`, a uuid7 the caller made, makes the call repeatable: a retry with the same
    id and message returns the one stored (after `OutcomeUnknown`, say); the same id with
    another message is a `Conflict`.
    """
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    fields = {
        "role": role,
        "content": content,
        "tool_calls": tool_calls,
        "tool_results": tool_results,
        "model": model,
        "provider": provider,
        "finish_reason": finish_reason,
        "usage": usage,
        "thinking": thinking,
        "metadata": metadata,
    }
    draft = Draft(fields)
    draft.id = new_key("message_id", message_id)
    settled = _hold(hold)
    [message] = await _append(uid, cid, [draft], None, after=_after(after), hold=settled)
    return message


async def append_turn(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    messages: Sequence[Mapping[str, Any]],
    turn_id: uuid.UUID | str | None = None,
    after: uuid.UUID | str | None = None,
    hold: Any = None,
) -> list[Message]:
    """Store one chat turn (each message a dict of `append_message`'s keywords) atomically,
    after the active leaf or after message `after`; its last message becomes the active leaf.

    The messages are stored in order, in one transaction with one activity-time update:
    all or none. A result may answer a call made earlier in the same turn. `turn_id` (a
    UUID the client chooses, such as its request id) makes the call idempotent: repeating
    it, even racing, returns the first call's messages and writes nothing; repeating it with
    other messages is a `Conflict`. `hold` (a `Hold` from `reserve`, or its id) is settled
    in the same transaction: the answers' costs replace the estimate it held.
    """
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    # Without a turn id, a retry still finds the turn by its first message's id.
    turn = as_uuid("turn_id", turn_id) if turn_id is not None else None
    turn_drafts = drafts(messages)
    return await _append(uid, cid, turn_drafts, turn, after=_after(after), hold=_hold(hold))


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
    turn = drafts(messages)
    place, anchor = _place(_after(after))
    args = _arguments(uid, cid, turn, None, place, anchor, check=True)
    await run(lambda conn: _call(conn, cid, args, alone=True), user=uid, read=True)


async def edit_message(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    message_id: uuid.UUID | str,
    content: str,
    turn_id: uuid.UUID | str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Message:
    """Store `content` as a new version of a user's message: a sibling of it (the same
    parent), which becomes the active leaf. The old version and its answers stay, one
    `switch_branch` away. `turn_id` makes it idempotent, as in `append_turn`."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    mid = as_uuid("message_id", message_id)
    turn = as_uuid("turn_id", turn_id) if turn_id is not None else None
    draft = Draft({"role": Role.USER, "content": content, "metadata": metadata})
    [message] = await _append(uid, cid, [draft], turn, edited=mid)
    return message


__all__ = [
    "AFTER",
    "APPEND_SQL",
    "COLUMNS",
    "EDIT",
    "LEAF",
    "ROOT",
    "append_message",
    "append_turn",
    "check_turn",
    "edit_message",
    "messages_of",
]
