"""Reading a conversation's tree: the path to a leaf, page by page; siblings, branches, the
tree view; switching and deleting branches; what to resend for a regenerated answer.

A page of history costs a few index range scans whatever the size of the tree: the path is
a chain of segments (see `paths`), walked from the page's last message up only as far as
the page reaches. Each message of a page says how many siblings it has and its place among
them, counted from the segments branching along the page (and, for the first message of a
segment, from its parent's replies), never from the whole path.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Final

import asyncpg
from tortoise import fields

from faceplate_models.engine import Connection, current
from faceplate_models.errors import ValidationError
from faceplate_models.models import Message, Role, ToolCall
from faceplate_models.store import _cursors as cursors, _paths as paths
from faceplate_models.store._rows import (
    HistoryPage,
    Page,
    builder,
    columns,
    cut,
    fetch,
    fetchrow,
    locking,
    missing,
    not_theirs,
    run,
    within_budget,
)
from faceplate_models.store.feedback import FEEDBACK_OF_SQL, feedback_of
from faceplate_models.store.messages import COLUMNS, messages_of
from faceplate_models.store.replies import LIVE_CONTENT, LIVE_STATUS
from faceplate_models.validation import MAX_PAGE_BYTES, as_uuid, page_size

#: Most messages between an answer and the user message it responds to.
MAX_ANSWER_LENGTH: Final = 10_000

# A page's messages leave out the tree's bookkeeping (a partial instance, as `.only()`
# makes), and take the conversation and its owner from the call: half the columns, and
# measured, about a third more pages a second under load.
_BOOKKEEPING: Final = ("segment_id", "fork_segment_id", "open_calls")
_GIVEN: Final = ("conversation_id", "user_id")
PAGE_COLUMNS: Final = ", ".join(
    column for column in COLUMNS.split(", ") if column not in (*_BOOKKEEPING, *_GIVEN)
)
_page_messages = builder(
    Message,
    PAGE_COLUMNS,
    extra=("sibling_count", "sibling_index", "feedback"),
    given=_GIVEN,
    convert={"feedback": feedback_of},
)
# A reply being written shows its text so far and whether its writer is still alive.
_LIVE: Final = {"content": f"{LIVE_CONTENT} AS content", "status": f"{LIVE_STATUS} AS status"}
_m = ", ".join(_LIVE.get(column, f"m.{column}") for column in PAGE_COLUMNS.split(", "))
_PAGE_OUT: Final = f"{PAGE_COLUMNS}, sibling_count, sibling_index, feedback"
# What a message weighs against a page's byte budget: its text as stored (octet_length reads
# a TOASTed value's header, not the value) and its JSON as text.
_SIZE: Final = " + ".join(
    f"coalesce(octet_length(m.{name}{'::text' if isinstance(field, fields.JSONField) else ''}), 0)"
    for name, field in Message._meta.fields_map.items()
    if isinstance(field, fields.TextField | fields.JSONField) and name in PAGE_COLUMNS.split(", ")
)


NEWEST: Final = "newest"
BEFORE: Final = "before"
AFTER: Final = "after"
_BOUNDS: Final = {
    # The segment of the path's last message to read, and the depths: (segment_id, hi, lo).
    NEWEST: "SELECT segment_id, depth AS hi, greatest(depth - $3 + 1, 0) AS lo FROM leaf",
    BEFORE: "SELECT segment_id, depth - 1, greatest(depth - $3, 0) FROM anchor",
    # The cursor's message is read too, to check that it is on this path.
    AFTER: """SELECT leaf.segment_id, least(leaf.depth, anchor.depth + $3), anchor.depth
        FROM leaf, anchor""",
}


# A page's rows, with their siblings and their weight against the byte budget.
_PAGE_SELECT: Final = f"""SELECT {_m},
        CASE WHEN m.depth > c.first AND cardinality(c.fork_depths) = 0 THEN 1
             WHEN m.depth > c.first
             THEN 1 + (SELECT count(*) FROM unnest(c.fork_depths) d WHERE d = m.depth)
             WHEN m.parent_id IS NULL
             THEN (SELECT count(*) FROM faceplate.messages s WHERE s.conversation_id = $1
                   AND s.parent_id IS NULL AND s.user_id = $2)
             ELSE (SELECT count(*) FROM faceplate.messages s
                   WHERE s.parent_id = m.parent_id AND s.user_id = $2)
        END AS sibling_count,
        CASE WHEN m.depth > c.first AND cardinality(c.fork_depths) = 0 THEN 1
             WHEN m.depth > c.first
             THEN 1 + (SELECT count(*) FROM unnest(c.fork_ids, c.fork_depths) AS f(id, depth)
                       WHERE f.depth = m.depth AND f.id < m.id)
             WHEN m.parent_id IS NULL
             THEN (SELECT count(*) FROM faceplate.messages s WHERE s.conversation_id = $1
                   AND s.parent_id IS NULL AND s.user_id = $2 AND s.id <= m.id)
             ELSE (SELECT count(*) FROM faceplate.messages s
                   WHERE s.parent_id = m.parent_id AND s.user_id = $2 AND s.id <= m.id)
        END AS sibling_index,
        ({FEEDBACK_OF_SQL.format(message="m.id")}) AS feedback,
        {_SIZE} AS size
    FROM forks c, LATERAL (  -- one range scan per segment (OFFSET 0: never a hash join)
        SELECT * FROM faceplate.messages
        WHERE segment_id = c.segment_id AND depth BETWEEN c.low AND c.top AND user_id = $2
        OFFSET 0
    ) m"""
# The system prompt, on the row the page starts at only (a long prompt sent once).
_SYSTEM_PROMPT: Final = """, CASE WHEN place = 1
    THEN (SELECT settings->>'system_prompt' FROM faceplate.conversations
          WHERE id = $1 AND user_id = $2)
    END AS system_prompt"""


def _path_sql(direction: str, *, chosen_leaf: bool) -> str:
    """Messages of one path with depths in a range, with their siblings: $1 conversation, $2
    user, $3 the rows wanted, then the cursor's message (`before`, `after`), then the path's
    last message when it is not the active leaf, then the page's byte budget.

    The page ends early once its messages pass the budget, counted from the end the page
    starts at (the newest message, or the cursor's going forward): each row says how many
    rows there were before the cut (`available`), so the caller knows a cut page continues.
    A message is measured by its text's length as stored, without reading it (a TOASTed
    value's header says), and its JSON's length as text; the first is always returned."""
    ctes = []
    if direction != BEFORE:
        chosen = f"${5 if direction == AFTER else 4}" if chosen_leaf else None
        ctes += [
            """owned AS (SELECT id, active_leaf_id FROM faceplate.conversations
            WHERE id = $1 AND user_id = $2)""",
            f"leaf AS (SELECT p.* FROM owned, LATERAL {paths.leaf('owned', '$2', chosen)} p)",
        ]
    if direction != NEWEST:
        ctes.append(
            """anchor AS (SELECT id, depth, segment_id FROM faceplate.messages
            WHERE id = $4 AND conversation_id = $1 AND user_id = $2)"""
        )
    ctes.append(f"bounds(segment_id, hi, lo) AS ({_BOUNDS[direction]})")
    budget = f"${3 + (direction != NEWEST) + chosen_leaf + 1}"
    start = "ASC" if direction == AFTER else "DESC"
    keep = 2 if direction == AFTER else 1  # the cursor's message, and one more
    return f"""WITH RECURSIVE {", ".join(ctes)}, chain(segment_id, top, first, fork) AS (
        SELECT h.id, b.hi, h.depth, h.fork_segment_id
        FROM bounds b JOIN faceplate.messages h ON h.id = b.segment_id AND h.user_id = $2
      UNION ALL
        SELECT h.id, c.first - 1, h.depth, h.fork_segment_id
        FROM chain c JOIN faceplate.messages h ON h.id = c.fork AND h.user_id = $2
        WHERE c.first > (SELECT lo FROM bounds)
    ), forks AS MATERIALIZED (  -- once per segment, not once per message of the page
        SELECT c.*, greatest(c.first, (SELECT lo FROM bounds)) AS low,
            ARRAY(SELECT f.id FROM faceplate.messages f
                  WHERE f.fork_segment_id = c.segment_id AND f.user_id = $2
                    AND f.depth BETWEEN greatest(c.first, (SELECT lo FROM bounds)) + 1 AND c.top
                  ) AS fork_ids,
            ARRAY(SELECT f.depth FROM faceplate.messages f
                  WHERE f.fork_segment_id = c.segment_id AND f.user_id = $2
                    AND f.depth BETWEEN greatest(c.first, (SELECT lo FROM bounds)) + 1 AND c.top
                  ) AS fork_depths
        FROM chain c
    )
    {
        within_budget(
            _PAGE_SELECT,
            columns=_PAGE_OUT,
            order=f"depth {start}",
            budget=budget,
            keep=keep,
            first=_SYSTEM_PROMPT,
        )
    }"""


#: A page of a path, by direction and whether its last message was chosen (`leaf=`).
PATH_SQL: Final = {
    (direction, chosen): _path_sql(direction, chosen_leaf=chosen)
    for direction in (NEWEST, BEFORE, AFTER)
    for chosen in (False, True)
    if not (direction == BEFORE and chosen)  # the path above a message is the only one
}
_OWNS_SQL: Final = (
    "SELECT EXISTS (SELECT 1 FROM faceplate.conversations WHERE id = $1 AND user_id = $2)"
)
_SYSTEM_SQL: Final = """SELECT settings->>'system_prompt' AS system
    FROM faceplate.conversations WHERE id = $1 AND user_id = $2"""
TURN_SQL: Final = f"""SELECT {COLUMNS} FROM faceplate.messages
    WHERE conversation_id = $1 AND turn_id = $3 AND user_id = $2"""
SIBLINGS_SQL: Final = """WITH target AS (
        SELECT parent_id FROM faceplate.messages
        WHERE id = $3 AND conversation_id = $1 AND user_id = $2
    )
    (SELECT id FROM faceplate.messages
     WHERE parent_id = (SELECT parent_id FROM target) AND user_id = $2 ORDER BY id)
    UNION ALL
    (SELECT id FROM faceplate.messages
     WHERE (SELECT parent_id IS NULL FROM target) AND conversation_id = $1 AND parent_id IS NULL
       AND user_id = $2
     ORDER BY id)"""
#: The last message of each segment under a message: the newest of them is the newest leaf.
TIPS_SQL: Final = f"""WITH RECURSIVE {paths.subtree("$3", "$1", "$2")}
    SELECT t.id, t.created_at, t.open_calls FROM subtree, LATERAL (
        SELECT id, created_at, open_calls FROM faceplate.messages
        WHERE segment_id = subtree.segment_id AND user_id = $2 ORDER BY depth DESC LIMIT 1
    ) t"""
SET_LEAF_SQL: Final = """UPDATE faceplate.conversations SET active_leaf_id = $3, open_calls = $4
    WHERE id = $1 AND user_id = $2"""
# The conversation's row locked, then the newest of TIPS_SQL made the active leaf: one round
# trip (migration 15's function runs TIPS_SQL's text, which a test compares).
SWITCH_SQL: Final = "SELECT faceplate.switch_branch($1, $2, $3)"
LOCK_SQL: Final = """SELECT id FROM faceplate.conversations
    WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE"""
# Read after the lock, in a statement of its own: the lock's statement reads a snapshot
# taken before it waited.
LEAF_SQL: Final = f"""SELECT p.id FROM faceplate.conversations c,
    LATERAL {paths.leaf("c", "$2")} p WHERE c.id = $1 AND c.user_id = $2"""
_TARGET_SQL: Final = """SELECT id, parent_id, depth, segment_id FROM faceplate.messages
    WHERE id = $3 AND conversation_id = $1 AND user_id = $2"""
#: One statement for the whole subtree: the foreign key from each message to its parent
#: is checked once the statement is done, when the replies are gone too.
DELETE_BRANCH_SQL: Final = f"""WITH RECURSIVE {paths.subtree("$3", "$1", "$2")}
    DELETE FROM faceplate.messages WHERE user_id = $2 AND id = ANY(ARRAY(
        SELECT m.id FROM subtree, LATERAL (
            SELECT id FROM faceplate.messages
            WHERE segment_id = subtree.segment_id AND depth >= subtree.from_depth
              AND user_id = $2
            OFFSET 0
        ) m))"""
_NEWEST_SQL: Final = """SELECT id, created_at, open_calls FROM faceplate.messages
    WHERE conversation_id = $1 AND user_id = $2 ORDER BY created_at DESC, id DESC LIMIT 1"""
TREE_SQL: Final = """SELECT id, parent_id, role, created_at FROM faceplate.messages
    WHERE conversation_id = $1 AND user_id = $2
      AND (created_at, id) > ($3::timestamptz, $4::uuid)
    ORDER BY created_at, id LIMIT $5"""
ANSWERED_SQL: Final = """WITH RECURSIVE up(id, parent_id, role, steps) AS (
        SELECT id, parent_id, role, 0 FROM faceplate.messages
        WHERE id = $3 AND conversation_id = $1 AND user_id = $2
      UNION ALL
        SELECT m.id, m.parent_id, m.role, up.steps + 1
        FROM up JOIN faceplate.messages m ON m.id = up.parent_id AND m.user_id = $2
        WHERE up.role <> 'user' AND up.steps < $4
    )
    SELECT (SELECT role FROM up WHERE steps = 0) AS role,
           (SELECT id FROM up WHERE role = 'user' AND steps > 0) AS asked"""
_TOOL_CALL_COLUMNS: Final = columns(ToolCall)
_tool_calls = builder(ToolCall, _TOOL_CALL_COLUMNS)
# Each open call of a path is one probe of the (message_id, call_id) index; the estimate of
# a JSON object's keys (a hundred) would otherwise make the planner hash the whole table.
_OPEN_CALLS_OF = """jsonb_each_text(p.open_calls) AS o(call_id, message_id), LATERAL (
        SELECT * FROM faceplate.tool_calls
        WHERE message_id = o.message_id::uuid AND call_id = o.call_id AND user_id = {user}
        OFFSET 0
    ) t"""
_t = ", ".join(f"t.{column}" for column in _TOOL_CALL_COLUMNS.split(", "))
#: The calls open on one path: the active one, or the one to message $3.
OPEN_CALLS_SQL: Final = {
    chosen: f"""WITH owned AS (
        SELECT id, active_leaf_id FROM faceplate.conversations WHERE id = $1 AND user_id = $2
    )
    SELECT {_t} FROM owned, LATERAL {paths.leaf("owned", "$2", "$3" if chosen else None)} p,
        {_OPEN_CALLS_OF.format(user="$2")}"""
    for chosen in (False, True)
}
#: The calls open on the active paths of the user's conversations that have some.
ALL_OPEN_CALLS_SQL: Final = f"""SELECT {_t}
    FROM faceplate.conversations c, LATERAL {paths.leaf("c", "$1")} p,
        {_OPEN_CALLS_OF.format(user="$1")}
    WHERE c.user_id = $1 AND c.open_calls > 0
    LIMIT $2"""


@dataclass(frozen=True)
class TreeNode:
    """A message as a tree view needs it: what it follows, and who wrote it."""

    id: uuid.UUID
    parent_id: uuid.UUID | None
    role: Role


def _cursor(uid: uuid.UUID, cid: uuid.UUID, message: Message) -> str:
    return cursors.encode(cursors.HISTORY, uid, cid, message.created_at, message.id)


async def get_history(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    limit: int = 100,
    before: str | None = None,
    after: str | None = None,
    leaf: uuid.UUID | str | None = None,
) -> HistoryPage[Message]:
    """Up to `limit` messages, oldest first, of the path that ends at the active leaf (or at
    message `leaf`): the newest ones, those above a cursor (`before=`), or, with `after=`,
    those below it toward the leaf, for catching up after a reconnect.

    Each message says how many siblings it has, itself included (`sibling_count`), and its
    place among them in creation order, from 1 (`sibling_index`): a client shows "< 2/3 >".
    `next_cursor` continues in the same direction (None at the start, or, going forward,
    at the leaf); `after_cursor` marks the newest message of the page, to pass as `after=`.
    A forward cursor whose message is no longer on the path (the active branch changed) is
    a `ValidationError`: read the history again.
    """
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    size = page_size(limit)
    if before is not None and after is not None:
        raise ValidationError("after", "cannot be combined with before=; page one way at a time")
    end = None if leaf is None else as_uuid("leaf", leaf)
    field = BEFORE if before is not None else AFTER
    direction, args = NEWEST, [cid, uid, size + 1]
    anchor = None
    if before is not None or after is not None:
        direction = field
        anchor = cursors.decode(field, before or after, cursors.HISTORY, uid, cid)[1]
        args.append(anchor)
    if end is not None and direction != BEFORE:
        args.append(end)
    args.append(MAX_PAGE_BYTES)
    sql = PATH_SQL[direction, end is not None and direction != BEFORE]

    async def read(conn: Connection) -> tuple[list[asyncpg.Record], str | None]:
        rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
        if rows:
            system = next((r["system_prompt"] for r in rows if r["system_prompt"]), None)
            return rows, system
        owned = await conn.fetchrow(_SYSTEM_SQL, cid, uid)
        if owned is None:
            raise missing("conversation", cid)
            if end is not None and not await conn.fetchval(_TARGET_EXISTS_SQL, cid, uid, end):
                raise missing("message", end)
            if anchor is not None and not await conn.fetchval(_TARGET_EXISTS_SQL, cid, uid, anchor):
                raise ValidationError(field, "names a message that was deleted with its branch")
        return rows, owned["system"]

    rows, system = await run(read, user=uid, read=True)
    items = sorted(_page_messages.many(rows, cid, uid), key=_depth)
    # Rows past the byte budget were left at the server: the page continues after them.
    budget_cut = cut(rows)
    if after is not None:
        if not items or items[0].id != anchor:
            raise ValidationError(
                "after",
                "names a message that is not on this path (the active branch changed, or it "
                "was deleted); read the history again",
            )
        items = items[1:]
        more = budget_cut or len(items) > size
        items = items[:size]
        next_cursor = _cursor(uid, cid, items[-1]) if more and items else None
    else:
        more = budget_cut or len(items) > size
        items = items[-size:]
        next_cursor = _cursor(uid, cid, items[0]) if more else None
    if not items:
        return HistoryPage(items, next_cursor, system, lambda: after)
    newest = items[-1]
    return HistoryPage(items, next_cursor, system, lambda: _cursor(uid, cid, newest))


def _depth(message: Message) -> int:
    return message.depth or 0


_TARGET_EXISTS_SQL: Final = """SELECT EXISTS (SELECT 1 FROM faceplate.messages
    WHERE id = $3 AND conversation_id = $1 AND user_id = $2)"""


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
    return sorted(messages_of.many(rows), key=lambda m: (m.created_at, m.id))


async def get_siblings(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str, message_id: uuid.UUID | str
) -> list[uuid.UUID]:
    """The ids of the messages that share this one's parent (the versions of an edited
    message, the answers to one question), itself included, in creation order. Not a page:
    a client shows them all, as "< 2/3 >"."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    mid = as_uuid("message_id", message_id)
    rows = await fetch(SIBLINGS_SQL, cid, uid, mid, user=uid)
    if not rows:
        raise missing("message", mid)
    return [row["id"] for row in rows]


def _newest(tips: list[asyncpg.Record]) -> asyncpg.Record:
    return max(tips, key=lambda tip: (tip["created_at"], tip["id"]))


def _open_count(open_calls: str | None) -> int:
    return len(json.loads(open_calls)) if open_calls else 0


async def switch_branch(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str, message_id: uuid.UUID | str
) -> uuid.UUID:
    """Make the newest leaf under a message (the message itself, if it has no reply) the
    conversation's active leaf, as a client's "<" and ">" between versions do; returns it.
    Not activity: the conversation keeps its place in the listing."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    mid = as_uuid("message_id", message_id)

    async def switch(conn: Connection) -> uuid.UUID:
        try:
            leaf: uuid.UUID = await conn.fetchval(SWITCH_SQL, cid, uid, mid)
        except asyncpg.PostgresError as exc:
            if (refused := not_theirs(exc)) is None:
                raise
            raise refused from None
        return leaf

    return await run(switch, user=uid, conversation=cid)


async def _lock(conn: Connection, cid: uuid.UUID, uid: uuid.UUID) -> None:
    """Lock the conversation's row, as appends do; NotFound if it is not the user's."""
    if await locking(conn, LOCK_SQL, cid, uid) is None:
        raise missing("conversation", cid)


async def delete_branch(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str, message_id: uuid.UUID | str
) -> int:
    """Delete a message and everything below it, with their tool calls; returns how many
    messages went. When the active leaf was among them, the newest leaf left under the
    message's parent (or, for a first message, in the conversation) becomes the active leaf.
    Under the long statement timeout, since a branch can be long."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    mid = as_uuid("message_id", message_id)
    client = current()

    async def delete(conn: Connection) -> int:
        async with client.atomic(conn, long=True):
            await _lock(conn, cid, uid)
            target = await conn.fetchrow(_TARGET_SQL, cid, uid, mid)
            if target is None:
                raise missing("message", mid)
            leaf = await conn.fetchval(LEAF_SQL, cid, uid)
            inside = await conn.fetchval(_INSIDE_SQL, cid, uid, mid, leaf)
            status = await conn.execute(DELETE_BRANCH_SQL, cid, uid, mid)
            deleted = int(status.split()[-1])
            await conn.execute(_UNCOUNT_SQL, cid, uid, deleted)
            if inside:
                parent = target["parent_id"]
                tips = await conn.fetch(TIPS_SQL, cid, uid, parent) if parent else []
                tip = _newest(tips) if tips else await conn.fetchrow(_NEWEST_SQL, cid, uid)
                new_leaf, opens = (tip["id"], tip["open_calls"]) if tip else (None, None)
                await conn.execute(SET_LEAF_SQL, cid, uid, new_leaf, _open_count(opens))
            elif leaf is not None:  # the newest message may have gone: say which is the leaf
                await conn.execute(_KEEP_LEAF_SQL, cid, uid, leaf)
            return deleted

    return await run(delete, user=uid, long=True, conversation=cid)


#: Whether message $4 (a leaf) lies under message $3.
_INSIDE_SQL: Final = f"""WITH RECURSIVE {paths.subtree("$3", "$1", "$2")}
    SELECT EXISTS (SELECT 1 FROM subtree JOIN faceplate.messages l
                   ON l.id = $4::uuid AND l.segment_id = subtree.segment_id
                  AND l.depth >= subtree.from_depth)"""
_KEEP_LEAF_SQL: Final = """UPDATE faceplate.conversations SET active_leaf_id = $3
    WHERE id = $1 AND user_id = $2"""
# A count not taken yet stays NULL: the next append counts what is left.
_UNCOUNT_SQL: Final = """UPDATE faceplate.conversations SET message_count = message_count - $3
    WHERE id = $1 AND user_id = $2"""


async def get_tree(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    limit: int = 1000,
    cursor: str | None = None,
) -> Page[TreeNode]:
    """The conversation's messages as a tree view needs them (id, parent, role), in the
    order they were written, `limit` at a time."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    size = page_size(limit)
    at, after_id = (
        cursors.decode("cursor", cursor, cursors.TREE, uid, cid)
        if cursor is not None
        else (cursors.EARLIEST, uuid.UUID(int=0))
    )

    async def read(conn: Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await conn.fetch(TREE_SQL, cid, uid, at, after_id, size + 1)
        if not rows and not await conn.fetchval(_OWNS_SQL, cid, uid):
            raise missing("conversation", cid)
        return rows

    rows = await run(read, user=uid, read=True)
    nodes = [TreeNode(row["id"], row["parent_id"], Role(row["role"])) for row in rows[:size]]
    if len(rows) <= size:
        return Page(nodes, None)
    last = rows[size - 1]
    return Page(nodes, cursors.encode(cursors.TREE, uid, cid, last["created_at"], last["id"]))


async def regenerate(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    message_id: uuid.UUID | str,
    limit: int = 100,
) -> tuple[Message, HistoryPage[Message]]:
    """For any message of an assistant's answer (its text, its tool calls, their results):
    the user message that answer responds to, and the history to give the model to answer
    again (the last `limit` messages of the path up to and including that user message, so
    the old answer is never resent). Store the new answer with `append_turn(...,
    after=asked.id)`: a sibling of the old one, which stays one `switch_branch` away."""
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    mid = as_uuid("message_id", message_id)
    page_size(limit)
    row = await fetchrow(ANSWERED_SQL, cid, uid, mid, MAX_ANSWER_LENGTH, user=uid)
    if row is None or row["role"] is None:
        raise missing("message", mid)
    if row["role"] not in (Role.ASSISTANT, Role.TOOL):
        raise ValidationError(
            "message_id",
            f"is {row['role']} message, not part of an answer; a user's message is edited "
            "(edit_message)",
        )
    if row["asked"] is None:
        raise ValidationError("message_id", "answers no user message above it on its path")
    page = await get_history(user_id=uid, conversation_id=cid, leaf=row["asked"], limit=limit)
    return page.items[-1], page


async def list_open_tool_calls(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str | None = None,
    leaf: uuid.UUID | str | None = None,
    limit: int = 100,
) -> list[ToolCall]:
    """Tool calls still waiting for a result on the active path of a conversation (or on the
    path to message `leaf`), or, without a conversation, on the active paths of all the
    user's conversations; oldest first. A backend that crashed mid-turn answers them (for
    example with `is_error: True` results), so that the history is one the model APIs accept
    again. Not a page: a path holds few open calls, and every one of them needs an answer."""
    uid = as_uuid("user_id", user_id)
    size = page_size(limit)
    if conversation_id is None:
        if leaf is not None:
            raise ValidationError("leaf", "needs the conversation_id it belongs to")
        rows = await fetch(ALL_OPEN_CALLS_SQL, uid, size, user=uid)
    else:
        cid = as_uuid("conversation_id", conversation_id)
        if leaf is None:
            rows = await fetch(OPEN_CALLS_SQL[False], cid, uid, user=uid)
        else:
            rows = await fetch(OPEN_CALLS_SQL[True], cid, uid, as_uuid("leaf", leaf), user=uid)
    calls = _tool_calls.many(rows)
    return sorted(calls, key=lambda call: (call.created_at, call.id))[:size]


__all__ = [
    "AFTER",
    "ALL_OPEN_CALLS_SQL",
    "ANSWERED_SQL",
    "BEFORE",
    "DELETE_BRANCH_SQL",
    "LOCK_SQL",
    "NEWEST",
    "OPEN_CALLS_SQL",
    "PAGE_COLUMNS",
    "PATH_SQL",
    "SET_LEAF_SQL",
    "SIBLINGS_SQL",
    "SWITCH_SQL",
    "TIPS_SQL",
    "TREE_SQL",
    "TURN_SQL",
    "TreeNode",
    "delete_branch",
    "get_history",
    "get_siblings",
    "get_tree",
    "get_turn",
    "list_open_tool_calls",
    "regenerate",
    "switch_branch",
]
