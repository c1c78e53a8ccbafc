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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import asyncpg
from uuid6 import uuid7

from faceplate_models.engine import Connection, current
from faceplate_models.errors import Conflict, MigrationError, ValidationError
from faceplate_models.formats.shape import KEYS, Draft, drafts
from faceplate_models.models import Message, ReplyStatus, Role
from faceplate_models.store import _paths as paths
from faceplate_models.store import _quotas as quotas
from faceplate_models.store._rows import (
    builder,
    columns,
    fetchrow,
    locking,
    missing,
    now,
    run,
)
from faceplate_models.validation import as_uuid, new_key

COLUMNS: Final = columns(Message)
messages_of = builder(Message, COLUMNS)


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
        SELECT id, updated_at, active_leaf_id, message_count, xmin FROM faceplate.conversations
        WHERE id = $1 AND user_id = $2{" FOR NO KEY UPDATE" if lock else ""}
    )
    SELECT owned.updated_at, owned.message_count, p.id, p.depth, p.segment_id, p.open_calls,
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
        FROM unnest({ids}::uuid[], {models[0]}::text[], {models[1]}::text[])
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


#: The parameters of a turn without money: all but the hold ($30) and the usage rows.
UNPRICED_PARAMETERS: Final = 29


def _append_sql(money: bool) -> str:
    """A turn's one statement. Parameters: $1 conversation, $2 user, $3 the time of the last
    message, $4 the ids, $5 the turn, then the columns of each message ($6-$20), the calls
    made ($21-$24), the calls of earlier messages answered ($25-$27), the calls left open on
    the new active path ($28), each message's status ($29: a live reply's 'streaming'); with
    `money`, the hold the turn settles ($30) and the turn's usage rows, one per model: ids by
    conversation ($31), the models ($32, $33), ids by day ($34). A turn without usage or a
    hold leaves that part out, and its cost to plan."""
    cost = f"CASE WHEN m.usage IS NOT NULL THEN {cost_sql('$3')} END" if money else "NULL::bigint"
    settles = money_sql(UNPRICED_PARAMETERS + 1) if money else ""
    return f"""WITH new_messages AS (
        INSERT INTO faceplate.messages ({COLUMNS})
        SELECT m.id, $1, m.parent_id, $2, m.role, m.content, m.tool_calls, m.tool_results,
               m.depth, m.segment_id, m.fork_segment_id, m.open_calls, m.model, m.provider,
               m.finish_reason, m.usage, {cost}, m.thinking, m.metadata,
               $3::timestamptz - (cardinality($4::uuid[]) - m.n) * interval '1 microsecond', $5,
               m.status, NULL
        FROM unnest($4::uuid[], $6::uuid[], $7::text[], $8::text[], $9::jsonb[],
                    $10::jsonb[], $11::int[], $12::uuid[], $13::uuid[], $14::jsonb[],
                    $15::text[], $16::text[], $17::text[], $18::jsonb[], $19::jsonb[],
                    $20::jsonb[], $29::text[])
             WITH ORDINALITY AS m(id, parent_id, role, content, tool_calls, tool_results, depth,
                                  segment_id, fork_segment_id, open_calls, model, provider,
                                  finish_reason, usage, thinking, metadata, status, n)
        RETURNING {COLUMNS}
    ), new_calls AS (
        INSERT INTO faceplate.tool_calls
            (id, conversation_id, user_id, call_id, message_id, result_message_id, created_at)
        SELECT c.id, $1, $2, c.call_id, c.message_id, c.result_message_id, $3
        FROM unnest($21::uuid[], $22::text[], $23::uuid[], $24::uuid[])
             AS c(id, call_id, message_id, result_message_id)
        WHERE EXISTS (SELECT 1 FROM new_messages)
    ), answered AS (
        UPDATE faceplate.tool_calls AS t SET result_message_id = a.result_message_id
        FROM unnest($25::uuid[], $26::text[], $27::uuid[])
             AS a(message_id, call_id, result_message_id)
        WHERE t.message_id = a.message_id AND t.call_id = a.call_id AND t.user_id = $2
          AND t.result_message_id IS NULL AND EXISTS (SELECT 1 FROM new_messages)
    ), touched AS (
        UPDATE faceplate.conversations
        SET updated_at = $3, active_leaf_id = $4[cardinality($4)], open_calls = $28,
            message_count = message_count + cardinality($4)
        WHERE id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM new_messages){settles}
    )
    SELECT {COLUMNS} FROM new_messages"""


#: By whether the turn has usage or settles a hold: `APPEND_SQL[money]`.
APPEND_SQL: Final = {money: _append_sql(money) for money in (False, True)}
STORED_SQL: Final = f"""SELECT {COLUMNS} FROM faceplate.messages
    WHERE conversation_id = $1 AND user_id = $2 AND (id = ANY($3::uuid[]) OR turn_id = $4)
    ORDER BY created_at, id"""
# A conversation not counted yet is counted once, under the append's lock; the append then
# adds its own messages to the count.
_COUNT_SQL: Final = """UPDATE faceplate.conversations SET message_count = (
        SELECT count(*) FROM faceplate.messages WHERE conversation_id = $1 AND user_id = $2)
    WHERE id = $1 AND user_id = $2 RETURNING message_count"""
_EDITED_SQL: Final = """SELECT role, parent_id FROM faceplate.messages
    WHERE id = $1 AND conversation_id = $2 AND user_id = $3"""


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


def _plan(drafts: Sequence[Draft], parent: asyncpg.Record | None) -> _Plan:
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
    drafts: list[Draft],
    turn: uuid.UUID | None,
    *,
    after: uuid.UUID | None = None,
    root: bool = False,
    hold: uuid.UUID | None = None,
    live: Callable[[Connection, list[asyncpg.Record]], Awaitable[None]] | None = None,
) -> list[Message]:
    """Store `drafts` as one turn; a repeat (same turn, or a retry) returns the first's.

    With `live`, the turn is one reply being streamed ('streaming'), and `live(conn, rows)`
    runs in the turn's transaction once it is stored (a repeat included)."""
    client = current()
    ids = [d.id for d in drafts]
    at = now()
    place, extra = _where(after, root)
    args = (cid, uid, ids[0], turn, *extra)
    # A usage row per model the turn's answers name, with an id made here.
    answered_by = list(dict.fromkeys((d.provider or "", d.model) for d in drafts if d.usage))

    async def append(conn: Connection) -> list[asyncpg.Record]:
        async with client.atomic(conn):
            row = await locking(conn, LOCK_CONVERSATION_SQL[place], *args)
            if row is None:
                raise missing("conversation", cid)
            if row["stale"]:  # the lock waited for another append: see it
                row = await conn.fetchrow(PARENT_SQL[place], *args)
                assert row is not None  # noqa: S101 - the conversation is locked, not gone
            if row["repeated"]:  # what the first call stored
                stored = list(await conn.fetch(STORED_SQL, cid, uid, ids, turn))
                if not _same_turn(drafts, stored):
                    key = f"turn_id {turn}" if turn is not None else f"message_id {ids[0]}"
                    raise Conflict(
                        f"{key} is already stored with other messages (or elsewhere): it "
                        "names one request, so a retry must repeat its messages and a new "
                        "request needs a new id (get_turn reads a stored turn)"
                    )
                if live is not None:
                    await live(conn, stored)
                return stored
            count = row["message_count"]
            if count is None:  # not counted yet (a conversation of the previous release)
                count = await conn.fetchval(_COUNT_SQL, cid, uid)
            if count + len(drafts) > quotas.limits().messages_per_conversation:
                raise quotas.exceeded("messages_per_conversation", f"conversation {cid}")
            plan = _plan(drafts, _placed(row, after))
            # After the previous activity, one microsecond apart, the last one now.
            last = max(at, row["updated_at"] + timedelta(microseconds=len(drafts)))
            made = plan.calls
            money = bool(answered_by) or hold is not None
            values = (
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
                [d.model for d in drafts],
                [d.provider for d in drafts],
                [d.finish_reason for d in drafts],
                [d.usage_json for d in drafts],
                [d.thinking for d in drafts],
                [d.metadata for d in drafts],
                [uuid7() for _ in made],
                [call for call, _, _ in made],
                [message for _, message, _ in made],
                [answer for _, _, answer in made],
                [message for message, _, _ in plan.answers],
                [call for _, call, _ in plan.answers],
                [answer for _, _, answer in plan.answers],
                plan.left_open,
                [ReplyStatus.STREAMING.value if live else None for _ in drafts],
                hold,
                [uuid7() for _ in answered_by],
                [provider for provider, _ in answered_by],
                [model for _, model in answered_by],
                [uuid7() for _ in answered_by],
            )
            # A turn with no usage and no hold passes none of the money's parameters.
            rows = await conn.fetch(
                APPEND_SQL[money], *values[: None if money else UNPRICED_PARAMETERS]
            )
            if live is not None:
                await live(conn, rows)
            return list(rows)

    rows = await run(append, user=uid, conversation=cid)
    return sorted(messages_of.many(rows), key=lambda m: (m.created_at, m.id))


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
    where = _after(after)
    turn = drafts(messages)
    place, extra = _where(where, False)
    row = await fetchrow(PARENT_SQL[place], cid, uid, turn[0].id, None, *extra, user=uid)
    if row is None:
        raise missing("conversation", cid)
    _plan(turn, _placed(row, where))


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
    "PARENT_SQL",
    "ROOT",
    "UNPRICED_PARAMETERS",
    "append_message",
    "append_turn",
    "check_turn",
    "edit_message",
    "messages_of",
]
