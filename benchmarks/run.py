"""The store against raw asyncpg (the floor) and three ORMs, on the same data, in one run.

    python -m benchmarks.run            # 1,000 users; the heavy user has 1,000 conversations,
                                        # 10,000 tasks and a 10,000-message conversation
    python -m benchmarks.run --quick    # a small data set and few rounds: CI's smoke run
    python -m benchmarks.run --scale    # 20,000 users; the heavy user has 100,000
                                        # conversations and 1,000,000 tasks and messages
    python -m benchmarks.run --scale --only search   # only the operations named so
    python -m benchmarks.run --latency 1   # 1 ms each way between every client and the server

It builds a fresh database (on the embedded PostgreSQL, or on the server of `--server URL`),
migrates it with the real migrations and loads the data set with COPY. It then checks that
every implementation returns the same rows and cursors as the store, times every operation
with the implementations taking turns each round (so all see the same machine load), and
prints Markdown tables: medians, the store's p95, ratios to raw asyncpg, the round trips
one call makes (counted at the wire, `benchmarks.wire`: the store in session mode and behind
a transaction pooler, and raw asyncpg), 50 concurrent callers, and the store's reads through
a streaming replica against the primary alone. With `--latency MS` every client reaches the
server through the suite's proxy, which delays each byte MS milliseconds each way, and the
chat-history packages users pick instead (`benchmarks.peers`) are timed beside the store.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import functools
import itertools
import json
import os
import platform
import pstats
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faceplate_models as fm
from benchmarks import live, peers, portability
from benchmarks.common import turn
from benchmarks.raw import Raw
from benchmarks.wire import DelayLine, Wire
from benchmarks.with_piccolo import Piccolo
from benchmarks.with_sqlalchemy import SqlAlchemy
from benchmarks.with_tortoise import PlainTortoise
from faceplate_models.config import (
    SESSION,
    TRANSACTION,
    DatabaseTarget,
    Retention,
    load_settings,
    parse_database_url,
)
from faceplate_models.store import _cursors as cursors
from faceplate_models.store.usage import COUNTERS
from faceplate_models.testing import connect, create_database, drop_database

Call = Callable[[], Awaitable[Any]]
PEERS = ("sqlalchemy", "tortoise", "piccolo")
NAMES = {
    "store": "store",
    "raw": "raw asyncpg",
    "sqlalchemy": "SQLAlchemy 2",
    "tortoise": "Tortoise querysets",
    "piccolo": "Piccolo",
}
#: The words of users' questions: 20,000 of them, drawn as Zipf's law has it (the first in
#: nearly every question, the 5,000th in about one in 1,500); what `search_messages` finds.
VOCABULARY = [f"w{n}" for n in range(20_000)]
WEIGHTS = list(itertools.accumulate(1 / (n + 1) for n in range(20_000)))
SEARCHES = {
    "frequent word": "w0",
    "rare word": "w5000",
    "absent word": "nowhere",
    "phrase": '"w0 w1"',
}
#: Seconds between two messages of the heavy conversation: a million span a year.
MESSAGE_STEP = 31.5
READS = (
    *(f"search_messages, {label}" for label in SEARCHES),
    "get_shared(100), live",
    "list_feedback(50)",
    "list_conversations, archived",
    "list_conversations, pinned first",
    "list_conversations, in a folder",
    "list_conversations, with a tag",
    "list_conversations, the trash",
    "get_history(100), newest",
    "get_history(100), deep",
    "get_history(100), branched, newest",
    "get_history(100), branched, deep",
    "switch_branch",
    "get_siblings",
    "list_conversations, first page",
    "list_conversations, later page",
    "list_tasks(completed=False)",
)


@dataclass(frozen=True)
class Size:
    users: int
    conversations: int
    tasks: int
    messages: int
    rounds: int
    concurrent_calls: int
    forks: int = 200  # branches of the branched conversation's active path


QUICK = Size(50, 100, 600, 600, rounds=15, concurrent_calls=2, forks=20)
FULL = Size(1_000, 1_000, 10_000, 10_000, rounds=300, concurrent_calls=20)
SCALE = Size(20_000, 100_000, 1_000_000, 1_000_000, rounds=300, concurrent_calls=20)
#: The branched conversation: between two forks of its active path this many messages, and
#: at each fork the old answer's branch of `DEAD` messages (about 10,000 in all at 200).
#: Replies the live replies' table streams.
LIVE_REPLIES = 50
STRETCH = 39
DEAD = 10
USAGE_COLUMNS = ["id", "user_id", "day", "provider", "model", *COUNTERS]
MESSAGE_COLUMNS = [
    "id",
    "conversation_id",
    "parent_id",
    "user_id",
    "role",
    "content",
    "tool_calls",
    "tool_results",
    "depth",
    "segment_id",
    "fork_segment_id",
    "open_calls",
    "created_at",
]


@dataclass
class DataSet:
    heavy: uuid.UUID
    heavy_subject: str
    heavy_email: str
    chat: uuid.UUID
    deep_cursor: str
    conversations_cursor: str
    branched: uuid.UUID  # a conversation whose active path forks `forks` times
    branched_deep_cursor: str
    fork: uuid.UUID  # a regenerated answer in the middle of the branched active path
    scratch: dict[str, uuid.UUID]  # a conversation per implementation and write
    organiser: uuid.UUID  # a user whose conversations are archived, pinned, filed, tagged
    folder: uuid.UUID
    tag: uuid.UUID
    share_token: str  # a live share of the heavy conversation
    rated: uuid.UUID  # an answer the suite rates again and again


class Store:
    """The store, called as a backend calls it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(fm, name)


async def _copy(conn: Any, table: str, columns: list[str], records: list[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table(
        table, schema_name="faceplate", records=records, columns=columns
    )


def branched_rows(
    chat: uuid.UUID, user: uuid.UUID, start: datetime, forks: int
) -> list[tuple[Any, ...]]:
    """A conversation whose user regenerated an answer `forks` times: at each fork the old
    answer's branch (DEAD messages) stays, and the active path goes on in a new segment.
    Rows in MESSAGE_COLUMNS order, in the order the store would have written them."""
    rows: list[tuple[Any, ...]] = []

    def add(parent: uuid.UUID | None, depth: int, segment: uuid.UUID | None, fork: Any) -> Any:
        message_id = uuid.uuid4()
        role = "user" if depth % 2 == 0 else "assistant"
        at = start + timedelta(milliseconds=len(rows))
        content = f"Message {len(rows)}: " + "words " * 30
        own = segment or message_id
        rows.append(
            (message_id, chat, parent, user, role, content, None, None, depth, own, fork, None, at)
        )
        return message_id, own

    parent, segment, depth = None, None, -1
    for number in range(forks + 1):
        for _ in range(STRETCH):
            depth += 1
            parent, segment = add(parent, depth, segment, None)
        if number == forks:
            break
        dead, dead_depth = parent, depth  # the old answer, continuing the segment
        for _ in range(DEAD):
            dead_depth += 1
            dead, _ = add(dead, dead_depth, segment, None)
        depth += 1  # the regenerated answer heads a segment of its own
        parent, segment = add(parent, depth, None, segment)
    return rows


async def load(target: DatabaseTarget, size: Size) -> DataSet:
    """Fill the migrated database with COPY: the rows the store would have written."""
    rng = random.Random(42)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    conn = await connect(target)
    try:
        users = [
            (uuid.uuid4(), f"user{n}@example.com", f"sub|{n}", start, start)
            for n in range(size.users)
        ]
        await _copy(conn, "users", ["id", "email", "subject_id", "created_at", "updated_at"], users)
        heavy = users[0][0]
        conversations: list[tuple[Any, ...]] = [
            (
                uuid.uuid4(),
                heavy,
                f"Chat {n}",
                start + timedelta(minutes=n),
                start + timedelta(minutes=n, seconds=rng.randint(0, 10_000)),
            )
            for n in range(size.conversations)
        ]
        conversations += [(uuid.uuid4(), u[0], "Hello", start, start) for u in users[1:]]
        chat, branched = conversations[0][0], uuid.uuid4()
        messages: list[tuple[Any, ...]] = []
        calls: list[tuple[Any, ...]] = []
        parent = None
        # The heavy conversation ends a day ago, a message every MESSAGE_STEP seconds.
        first = datetime.now(UTC) - timedelta(days=1, seconds=size.messages * MESSAGE_STEP)
        for n in range(size.messages):
            at = first + timedelta(seconds=n * MESSAGE_STEP)
            kind, message_id = n % 3, uuid.uuid4()
            tree = (parent, heavy)  # a linear history: one segment from its first message
            place = (n, messages[0][0] if messages else message_id, None)
            if kind == 0:
                text = " ".join(rng.choices(VOCABULARY, cum_weights=WEIGHTS, k=30))
                messages.append(
                    (message_id, chat, *tree, "user", text, None, None, *place, None, at)
                )
            elif kind == 1:
                tool_call = turn(f"call_{n}")[1]["tool_calls"]
                opens = json.dumps({f"call_{n}": str(message_id)})
                messages.append(
                    (message_id, chat, *tree, "assistant", None, json.dumps(tool_call), None,
                     *place, opens, at)
                )  # fmt: skip
                calls.append((uuid.uuid4(), chat, heavy, f"call_{n}", message_id, None, at))
            else:
                result = json.dumps(turn(f"call_{n - 1}")[2]["tool_results"])
                messages.append(
                    (message_id, chat, *tree, "tool", None, None, result, *place, None, at)
                )
                calls[-1] = (*calls[-1][:5], message_id, calls[-1][6])
            parent = message_id
        forks = branched_rows(branched, heavy, start, size.forks)
        leaves = {chat: messages[-1][0], branched: forks[-1][0]}
        conversations.append((branched, heavy, "Branched", start, start))
        conversations = [(*c, leaves.get(c[0])) for c in conversations]
        columns = ["id", "user_id", "title", "created_at", "updated_at", "active_leaf_id"]
        await _copy(conn, "conversations", columns, conversations)
        # The search index is built once the messages are in: faster than row by row.
        search_index = await conn.fetchval(
            "SELECT pg_get_indexdef('faceplate.idx_messages_search'::regclass)"
        )
        await conn.execute("DROP INDEX faceplate.idx_messages_search")
        await _copy(conn, "messages", MESSAGE_COLUMNS, messages + forks)
        await conn.execute(search_index)
        columns = [
            "id",
            "conversation_id",
            "user_id",
            "call_id",
            "message_id",
            "result_message_id",
            "created_at",
        ]
        await _copy(conn, "tool_calls", columns, calls)
        tasks = [
            (
                uuid.uuid4(),
                heavy,
                f"Task {n}",
                "Some details " * 5,
                n % 3 == 0,
                start + timedelta(seconds=n),
                start + timedelta(seconds=n),
            )
            for n in range(size.tasks)
        ]
        columns = ["id", "user_id", "title", "description", "completed", "created_at", "updated_at"]
        await _copy(conn, "tasks", columns, tasks)
        # A year of answers: the heavy user's rollups by day and model, and by conversation,
        # and the prices and a budget they are read against.
        models = [("openai", "gpt-bench"), ("anthropic", "claude-bench"), ("openai", "mini")]
        days = [(start + timedelta(days=d)).date() for d in range(365)]
        sums = [7, 1000, 100, 10, 500, 50, 1234, 0]
        await _copy(
            conn,
            "usage_days",
            USAGE_COLUMNS,
            [(uuid.uuid4(), heavy, day, *model, *sums) for day in days for model in models],
        )
        await _copy(
            conn,
            "usage_rollups",
            [*USAGE_COLUMNS, "conversation_id"],
            [
                (uuid.uuid4(), heavy, days[n % 365], *models[n % 3], *sums, c[0])
                for n, c in enumerate(conversations[: size.conversations])
            ],
        )
        for provider, model in models:
            await fm.set_model_price(
                provider=provider, model=model, starts_at=start, input=2_500_000,
                cached_input=1_250_000, cache_write=3_125_000, output=10_000_000,
            )  # fmt: skip
        await fm.set_budget(user_id=heavy, period="month", limit=10**12)
        scratch = {}
        for name, write in itertools.product(NAMES, ("append", "turn", "priced turn")):
            scratch[f"{name} {write}"] = await conn.fetchval(
                """INSERT INTO faceplate.conversations (id, user_id, title, created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $4) RETURNING id""",
                uuid.uuid4(),
                heavy,
                f"{write}s of {name}",
                start,
            )
        organised = await _organise(conn, users[1][0], size.conversations, start)
        await _copy(
            conn,
            "feedback",
            ["id", "user_id", "message_id", "conversation_id", "rating", "reasons", "created_at",
             "updated_at"],
            [(uuid.uuid4(), heavy, m[0], chat, 1 if n % 3 else -1, "[]", m[12], m[12])
             for n, m in enumerate(messages[1::300])],
        )  # fmt: skip
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    share = await fm.share_conversation(user_id=heavy, conversation_id=chat, live=True)
    # Cursors in the middle: the deep history page, and a later page of conversations.
    middle = messages[size.messages // 2]
    on_path = _active_path(forks)
    branched_middle = on_path[len(on_path) // 2]
    heads = [row for row in on_path if row[10] is not None]
    newest_first = sorted(conversations[: size.conversations], key=lambda c: (c[4], c[0]))[::-1]
    later = newest_first[size.conversations // 2]
    return DataSet(
        heavy=heavy,
        heavy_subject=users[0][2],
        heavy_email=users[0][1],
        chat=chat,
        deep_cursor=cursors.encode(cursors.HISTORY, heavy, chat, middle[12], middle[0]),
        conversations_cursor=cursors.encode(cursors.CONVERSATIONS, heavy, None, later[4], later[0]),
        branched=branched,
        branched_deep_cursor=cursors.encode(
            cursors.HISTORY, heavy, branched, branched_middle[12], branched_middle[0]
        ),
        fork=heads[len(heads) // 2][0],
        scratch=scratch,
        **organised,
        share_token=share.token,
        rated=messages[1][0],
    )


async def _organise(
    conn: Any, organiser: uuid.UUID, count: int, start: datetime
) -> dict[str, uuid.UUID]:
    """A user with `count` conversations, organised: a tenth archived, one in 200 pinned,
    a fifth in a folder, a third tagged, one in a hundred in the trash."""
    folder, tag = uuid.uuid4(), uuid.uuid4()
    await _copy(conn, "folders", ["id", "user_id", "name", "created_at", "updated_at"],
                [(folder, organiser, "Work", start, start)])  # fmt: skip
    await _copy(conn, "tags", ["id", "user_id", "name", "created_at", "updated_at"],
                [(tag, organiser, "later", start, start)])  # fmt: skip
    rows = []
    for n in range(count):
        at = start + timedelta(minutes=n)
        rows.append((
            uuid.uuid4(), organiser, f"Organised {n}", at, at,
            at if n % 10 == 0 else None, at if n % 200 == 1 else None,
            folder if n % 5 == 2 else None, json.dumps([str(tag)]) if n % 3 == 0 else None,
            at if n % 100 == 3 else None,
        ))  # fmt: skip
    columns = ["id", "user_id", "title", "created_at", "updated_at", "archived_at", "pinned_at",
               "folder_id", "tag_ids", "trashed_at"]  # fmt: skip
    await _copy(conn, "conversations", columns, rows)
    await _copy(
        conn,
        "conversation_tags",
        ["id", "user_id", "conversation_id", "tag_id", "updated_at", "created_at"],
        [(uuid.uuid4(), organiser, r[0], tag, r[4], r[3]) for r in rows if r[8] is not None],
    )
    return {"organiser": organiser, "folder": folder, "tag": tag}


def _active_path(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows on the path to the last one, from the first."""
    by_id = {row[0]: row for row in rows}
    path, row = [], rows[-1]
    while True:
        path.append(row)
        if row[2] is None:
            return path[::-1]
        row = by_id[row[2]]


def operations(data: DataSet, implementations: dict[str, Any]) -> dict[str, dict[str, Call]]:
    """Each operation in every implementation, with the same arguments."""
    h, c = data.heavy, data.chat
    numbers = itertools.count()

    def each(make: Callable[[Any], Awaitable[Any]]) -> dict[str, Call]:
        return {name: functools.partial(make, impl) for name, impl in implementations.items()}

    def both(make: Callable[[Any], Awaitable[Any]]) -> dict[str, Call]:
        """Only the store and raw asyncpg: the ORM peers have no tree."""
        return {name: functools.partial(make, implementations[name]) for name in ("store", "raw")}

    b, o = data.branched, data.organiser
    month_ago = datetime.now(UTC).date() - timedelta(days=30)

    def turns(name: str, impl: Any, priced: bool = False) -> Awaitable[Any]:
        messages = turn(f"call_bench_{next(numbers)}")
        if priced:  # what the model said it was, and used: priced and rolled up
            usage = {
                "input_tokens": 1200,
                "cached_input_tokens": 800,
                "cache_write_tokens": 0,
                "output_tokens": 90,
                "reasoning_tokens": 0,
            }
            messages[-1] = {**messages[-1], "model": "gpt-bench", "provider": "openai"}
            messages[-1]["usage"] = usage
        written: Awaitable[Any] = impl.append_turn(
            user_id=h,
            conversation_id=data.scratch[f"{name} {'priced turn' if priced else 'turn'}"],
            messages=messages,
        )
        return written

    return {
        "append_message": {
            name: functools.partial(
                impl.append_message,
                user_id=h,
                conversation_id=data.scratch[f"{name} append"],
                role="user",
                content="benchmark turn",
            )
            for name, impl in implementations.items()
        },
        "append_turn, 4 messages": {
            name: functools.partial(turns, name, impl) for name, impl in implementations.items()
        },
        "append_turn, 4 messages, priced": {
            name: functools.partial(turns, name, implementations[name], True)
            for name in ("store", "raw")
        },
        "get_history(100), newest": each(
            lambda i: i.get_history(user_id=h, conversation_id=c, limit=100)
        ),
        "get_history(100), deep": each(
            lambda i: i.get_history(
                user_id=h, conversation_id=c, limit=100, before=data.deep_cursor
            )
        ),
        "get_history(100), branched, newest": both(
            lambda i: i.get_history(user_id=h, conversation_id=b, limit=100)
        ),
        "get_history(100), branched, deep": both(
            lambda i: i.get_history(
                user_id=h, conversation_id=b, limit=100, before=data.branched_deep_cursor
            )
        ),
        # The newest leaf under a regenerated answer halfway up: the active leaf again, found
        # among the hundred segments below it.
        "switch_branch": both(
            lambda i: i.switch_branch(user_id=h, conversation_id=b, message_id=data.fork)
        ),
        "get_siblings": both(
            lambda i: i.get_siblings(user_id=h, conversation_id=b, message_id=data.fork)
        ),
        "usage_summary(by=model), 30 days": both(
            lambda i: i.usage_summary(user_id=h, since=month_ago, by="model")
        ),
        # A hold that lapses at once, so that the holds of the rounds do not add up.
        "reserve": both(lambda i: i.reserve(user_id=h, estimate=1000, ttl=0.001)),
        "list_conversations, first page": each(lambda i: i.list_conversations(user_id=h)),
        "list_conversations, later page": each(
            lambda i: i.list_conversations(user_id=h, cursor=data.conversations_cursor)
        ),
        "list_tasks(completed=False)": each(lambda i: i.list_tasks(user_id=h, completed=False)),
        **{
            f"search_messages, {label}": both(functools.partial(_search, words=words, user=h))
            for label, words in SEARCHES.items()
        },
        **{
            f"list_conversations, {label}": both(functools.partial(_listing, user=o, **filters))
            for label, filters in (
                ("archived", {"archived": True}),
                ("pinned first", {"pinned_first": True}),
                ("in a folder", {"folder_id": data.folder}),
                ("with a tag", {"tag_id": data.tag}),
                ("the trash", {"trashed": True}),
            )
        },
        "organise_conversation(pinned)": both(
            lambda i: i.organise_conversation(
                user_id=h, conversation_id=data.scratch[f"{_name(i)} append"], pinned=True
            )
        ),
        "get_shared(100), live": both(lambda i: i.get_shared(token=data.share_token)),
        "rate_message": both(
            lambda i: i.rate_message(user_id=h, message_id=data.rated, rating=-1, reasons=["x"])
        ),
        "list_feedback(50)": both(lambda i: i.list_feedback(since=EPOCH)),
        "purge_expired, nothing expired": both(
            lambda i: i.purge_expired(retention=RETENTION, at=EPOCH)
        ),
        "get_or_create_user, existing": each(
            lambda i: i.get_or_create_user(subject_id=data.heavy_subject, email=data.heavy_email)
        ),
    }


def _search(implementation: Any, *, user: uuid.UUID, words: str) -> Awaitable[Any]:
    found: Awaitable[Any] = implementation.search_messages(user_id=user, query=words)
    return found


def _listing(implementation: Any, *, user: uuid.UUID, **filters: Any) -> Awaitable[Any]:
    listed: Awaitable[Any] = implementation.list_conversations(user_id=user, **filters)
    return listed


def _name(implementation: Any) -> str:
    return "raw" if isinstance(implementation, Raw) else "store"


#: Before every row of the suite, and the retention the purge is timed with.
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
RETENTION = Retention()


def _id(item: Any) -> str:
    if isinstance(item, fm.SearchHit):
        return str(item.message_id or item.conversation_id)
    if isinstance(item, fm.RatedMessage):
        return str(item.feedback.id)
    if isinstance(item, fm.Purged):
        return str(item.total)
    if isinstance(item, uuid.UUID):
        return str(item)
    if isinstance(item, fm.Usage):  # a summary's row: its model, and what it sums
        return str((*item.key, item.cost))  # type: ignore[misc]
    if isinstance(item, dict) and "provider" in item and "id" not in item:
        return str((item["provider"], item["model"], int(item["cost"])))
    return str(item["id"] if isinstance(item, dict) else item.id)


def _shape(result: Any) -> tuple[list[str], str | None]:
    """What a result says, comparable across implementations: the ids, and the cursor."""
    if isinstance(result, fm.SharedConversation):
        result = result.history
    if isinstance(result, fm.Page):
        return [_id(i) for i in result.items], result.next_cursor
    if isinstance(result, tuple):
        items, next_cursor = result
        return [_id(i) for i in items], next_cursor
    if isinstance(result, list):
        return [_id(i) for i in result], None
    return [_id(result)], None


async def check(calls: dict[str, dict[str, Call]], target: DatabaseTarget) -> None:
    """Every implementation returns the store's rows and cursors, and writes what it writes."""
    for operation, by_implementation in calls.items():
        results = {name: _shape(await call()) for name, call in by_implementation.items()}
        if operation.startswith(("append", "organise")) or operation == "reserve":
            sizes = {name: len(ids) for name, (ids, _) in results.items()}
            assert set(sizes.values()) == {4 if "turn" in operation else 1}, (operation, sizes)
            continue
        for name, result in results.items():
            assert result == results["store"], f"{operation}: {name} differs from the store"
    conn = await connect(target)
    try:
        unanswered = await conn.fetchval(
            """SELECT count(*) FROM faceplate.tool_calls t JOIN faceplate.conversations c
               ON c.id = t.conversation_id WHERE c.title LIKE 'turns of %'
               AND t.result_message_id IS NULL"""
        )
    finally:
        await conn.close()
    assert unanswered == 0, "an implementation's turn left its tool call unanswered"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(calls: dict[str, Call], rounds: int) -> dict[str, list[float]]:
    """Time `rounds` sequential calls of each implementation, taking turns each round.

    The order is shuffled every round: a call right after a slow peer's (a scan of a
    hundred thousand rows) finds the caches cold, and a fixed order would always hand that
    cost to the same implementation.
    """
    # Warm up beyond PostgreSQL's five custom plans per prepared statement.
    for call in calls.values():
        for _ in range(20):
            await call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    order = list(calls.items())
    shuffle = random.Random(7).shuffle
    for _ in range(rounds):
        shuffle(order)
        for name, call in order:
            started = time.perf_counter()
            await call()
            samples[name].append(time.perf_counter() - started)
    return samples


async def concurrently(
    calls: dict[str, Call], callers: int, each: int, rounds: int = 5
) -> dict[str, tuple[float, list[float]]]:
    """`callers` tasks making `each` calls at once, per implementation, the implementations
    taking turns over `rounds` rounds: (calls per second, latencies) of each."""
    busy: dict[str, float] = dict.fromkeys(calls, 0.0)
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # every pooled connection warm
        await asyncio.gather(*(call() for _ in range(callers)))
    for _ in range(rounds):
        for name, call in calls.items():

            async def caller(call: Call = call, name: str = name) -> None:
                for _ in range(max(1, each // rounds)):
                    started = time.perf_counter()
                    await call()
                    latencies[name].append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(callers)))
            busy[name] += time.perf_counter() - started
    return {name: (len(latencies[name]) / busy[name], latencies[name]) for name in calls}


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


async def replica_rows(size: Size, rounds: int) -> list[str]:
    """The store's reads on a primary alone, and through a streaming replica of it."""
    from tests import servers  # a cluster and a standby of its own, from the same binaries

    root = Path(tempfile.mkdtemp(prefix="faceplate-bench-replica-"))
    primary = servers.Cluster(root / "primary").init()
    primary.allow("host all all 127.0.0.1/32 trust", "host replication all 127.0.0.1/32 trust")
    primary.start()
    standby = servers.standby_of(primary, root / "standby")
    standby.start()
    try:
        target = await create_database(primary.target())
        await fm.init_db(target.url(), migrate=True)
        data = await load(target, dataclasses.replace(size, users=10, tasks=10))
        await fm.close_db()
        await asyncio.sleep(1)  # the standby replays the load
        settings = load_settings()
        replicated = dataclasses.replace(
            settings, replica_urls=(standby.target(target.database).url(),)
        )
        h, c = data.heavy, data.chat

        def read() -> Awaitable[Any]:
            return fm.get_history(user_id=h, conversation_id=c, limit=100)

        async def write_then_read() -> Any:
            await fm.append_message(user_id=h, conversation_id=c, role="user", content="x")
            return await read()

        figures: dict[str, dict[str, list[float]]] = {}
        for label, chosen in (("primary only", settings), ("with a replica", replicated)):
            await fm.init_db(target.url(), settings=chosen)
            await asyncio.sleep(0.5)  # the watcher has looked at the standby
            figures[label] = await measure({"read": read, "write": write_then_read}, rounds)
            await fm.close_db()
    finally:
        standby.stop()
        primary.stop()
    rows = []
    for key, name in (("read", "get_history(100)"), ("write", "append, then get_history(100)")):
        alone = statistics.median(figures["primary only"][key])
        through = statistics.median(figures["with a replica"][key])
        rows.append(f"| {name} | {ms(alone)} | {ms(through)} | {through / alone:.2f}x |")
    return rows


#: The columns of round trips: the store in each pool mode, and raw asyncpg.
TRIPS = ("session", "pooler", "raw")


async def round_trips(data: DataSet, target: DatabaseTarget, only: list[str]) -> Any:
    """The round trips one call of each operation makes, counted at the wire: the store in
    session mode and behind a transaction pooler (`FACEPLATE_DB_POOL_MODE=transaction`,
    which needs the bounds as the database's defaults, as on a role), and raw asyncpg."""
    from tests import faults  # the database's defaults, as a pooler's role has them

    settings = load_settings()
    await faults.pooler_defaults(target)
    wire = Wire(target)
    through = await wire.start()
    raw = Raw(through)
    await raw.open()
    counts: dict[str, dict[str, int]] = {}
    try:
        for mode in (SESSION, TRANSACTION):
            chosen = dataclasses.replace(settings, pool_mode=mode)
            await fm.init_db(through.url(), settings=chosen)
            calls = operations(data, {"store": Store(), "raw": raw})
            if only:
                calls = {op: by for op, by in calls.items() if any(o in op for o in only)}
            for operation, by_name in calls.items():
                row = counts.setdefault(operation, {})
                mode_name = "session" if mode == SESSION else "pooler"
                row[mode_name] = await wire.count(by_name["store"], warm=3)
                if mode == SESSION:
                    row["raw"] = await wire.count(by_name["raw"], warm=3)
            await fm.close_db()
    finally:
        await raw.close()
        await wire.close()
    return counts


async def profile(calls: dict[str, dict[str, Call]]) -> None:
    """Where the store's time goes in get_history(100) and list_tasks, by function."""
    for operation in ("get_history(100), newest", "list_tasks(completed=False)"):
        if operation not in calls:  # left out by --only
            continue
        call = calls[operation]["store"]
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(500):
            await call()
        profiler.disable()
        print(f"\n{operation}, 500 calls, by own time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


async def main(
    size: Size,
    server: DatabaseTarget | None,
    *,
    with_profile: bool,
    only: list[str],
    latency: float = 0.0,
) -> None:
    embedded = server is None
    if server is None:
        from faceplate_models.embedded import server_target, start_server

        server = server_target(
            start_server(Path(tempfile.mkdtemp(prefix="faceplate-bench-")), temporary=True)
        )
    target = await create_database(server, "bench")
    # With a latency, every client reaches the server through the suite's delaying proxy.
    wire = DelayLine(target, delay_ms=latency) if latency else None
    reach = await wire.start() if wire is not None else target
    implementations: dict[str, Any] = {
        "store": Store(),
        "raw": Raw(reach),
        "sqlalchemy": SqlAlchemy(reach),
        "tortoise": PlainTortoise(),
        "piccolo": Piccolo(reach),
    }
    peer_rows: list[peers.Row] = []
    try:
        await fm.init_db(target.url(), migrate=True)
        built = time.perf_counter()
        data = await load(target, size)
        print(f"data set loaded in {time.perf_counter() - built:.1f} s: {size}")
        if wire is not None:
            await fm.close_db()
            await fm.init_db(reach.url())
        for name, impl in implementations.items():
            if name != "store":
                await impl.open()
        version = await implementations["raw"].server_version()
        calls = operations(data, implementations)
        if only:
            calls = {op: by_name for op, by_name in calls.items() if any(o in op for o in only)}
        await check(calls, target)
        print("every implementation returns the store's rows and cursors")

        medians: dict[str, dict[str, float]] = {}
        p95: dict[str, float] = {}
        for operation, by_implementation in calls.items():
            samples = await measure(by_implementation, size.rounds)
            medians[operation] = {n: statistics.median(s) for n, s in samples.items()}
            p95[operation] = pct(samples["store"], 0.95)

        live_rows: list[str] = []
        if not only or any(o in "live replies" for o in only):
            live_rows = live.table(await live.measure(data.heavy, LIVE_REPLIES), LIVE_REPLIES)
        if not only or any(o in "export import" for o in only):
            # One conversation, at most what a conversation may hold (the default limit).
            live_rows += await portability.measure(min(max(size.messages, 10_000), 100_000))
        if wire is not None and (not only or any(o in "peers" for o in only)):
            h, mine = data.heavy, data.scratch["store append"]
            store = {
                "append": lambda: fm.append_message(
                    user_id=h, conversation_id=mine, role="user", content="benchmark turn"
                ),
                "newest 100": lambda: fm.get_history(user_id=h, conversation_id=data.chat),
            }
            peer_rows = await peers.measure(target, reach, store, size.messages, size.rounds)
        throughput = {}
        if "get_history(100), newest" in calls:
            throughput = await concurrently(
                calls["get_history(100), newest"], 50, size.concurrent_calls
            )
        if with_profile:
            await profile(calls)
        await fm.close_db()
        trips = await round_trips(data, target, only)
    finally:
        for name, impl in implementations.items():
            if name != "store":
                await impl.close()
        await fm.close_db()
        if wire is not None:
            await wire.close()
        await drop_database(server, target.database)
    wanted = embedded and not only and not latency
    replicas = await replica_rows(size, max(15, size.rounds // 3)) if wanted else []
    report(size, version, embedded, medians, p95, throughput, replicas, trips, latency)
    print("\n".join(live_rows))
    if peer_rows:
        print("\n".join(peers.table(peer_rows, trips, size.messages, latency)))


def report(
    size: Size,
    version: str,
    embedded: bool,
    medians: dict[str, dict[str, float]],
    p95: dict[str, float],
    throughput: dict[str, tuple[float, list[float]]],
    replicas: list[str],
    trips: dict[str, dict[str, int]],
    latency: float = 0.0,
) -> None:
    print()
    print(
        f"Machine: {_cpu()}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; PostgreSQL {version}"
        f"{' (embedded)' if embedded else ''}. Data: {size.users:,} users; the heavy user has "
        f"{size.conversations:,} conversations, {size.tasks:,} tasks and a {size.messages:,}"
        f"-message conversation. {size.rounds} rounds per operation; medians in ms"
        + (f", {latency:g} ms each way between client and server." if latency else ".")
        + " Round trips: the store's in session mode / behind a transaction pooler / raw's."
    )
    print()
    print(
        "| operation | " + " | ".join(NAMES.values()) + " | store / raw | store p95 | round trips |"
    )
    print("| --- |" + " ---: |" * (len(NAMES) + 3))
    for operation, by_name in medians.items():
        cells = [ms(by_name[name]) if name in by_name else "-" for name in NAMES]
        ratio = by_name["store"] / by_name["raw"]
        counted = trips.get(operation, {})
        made = " / ".join(str(counted.get(kind, "-")) for kind in TRIPS)
        print(
            f"| {operation} | {' | '.join(cells)} | {ratio:.2f}x | {ms(p95[operation])} | {made} |"
        )
    if throughput:
        print_throughput(size, throughput)
    if replicas:
        print()
        print("The store's reads on a primary alone, and with a streaming replica (medians, ms):")
        print()
        print("| operation | primary only | with a replica | ratio |")
        print("| --- | ---: | ---: | ---: |")
        print("\n".join(replicas))
    print()
    for line in verdicts(medians, p95, throughput, size, latency):
        print(line)


def print_throughput(size: Size, throughput: dict[str, tuple[float, list[float]]]) -> None:
    print()
    print(
        f"50 concurrent get_history(100) callers, pools of 20, {size.concurrent_calls} calls "
        "each, the implementations taking turns over 5 rounds:"
    )
    print()
    print("| implementation | calls/s | vs raw | p95 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (rate, latencies) in throughput.items():
        print(
            f"| {NAMES[name]} | {rate:,.0f} | {rate / throughput['raw'][0]:.2f}x | "
            f"{ms(pct(latencies, 0.95))} | {ms(pct(latencies, 0.99))} |"
        )


#: The slowest a search may be at the 95th percentile, in seconds.
SEARCH_P95 = 0.020
#: The most the store may take against raw asyncpg on any operation at real latency.
AT_LATENCY = 1.1


def verdicts(
    medians: dict[str, dict[str, float]],
    p95: dict[str, float],
    throughput: dict[str, tuple[float, list[float]]],
    size: Size,
    latency: float = 0.0,
) -> list[str]:
    """Each target of the suite whose operations ran, met or MISSED."""
    lines = []
    if latency:  # the round trips decide: every call at most 1.1x raw's
        for operation, by_name in medians.items():
            ratio = by_name["store"] / by_name["raw"]
            verdict = "met" if ratio <= AT_LATENCY else "MISSED"
            lines.append(
                f"- {operation}: store {ratio:.2f}x raw at {latency:g} ms "
                f"(target <= {AT_LATENCY}x: {verdict})"
            )
        return lines
    for operation in medians:
        if operation.startswith("search_messages"):
            verdict = "met" if p95[operation] < SEARCH_P95 else "MISSED"
            lines.append(
                f"- {operation}: p95 {ms(p95[operation])} ms over {size.messages:,} messages "
                f"(target < {ms(SEARCH_P95)} ms: {verdict})"
            )
    for operation, by_name in medians.items():
        ratio = by_name["store"] / by_name["raw"]
        limit = 1.25 if operation in READS else 1.15 if "turn" not in operation else None
        if limit is not None:
            verdict = "met" if ratio <= limit else "MISSED"
            lines.append(f"- {operation}: store {ratio:.2f}x raw (target <= {limit}x: {verdict})")
        if all(peer in by_name for peer in PEERS):
            fastest = all(by_name["store"] < by_name[peer] for peer in PEERS)
            lines.append(
                f"- {operation}: the store is {'the fastest' if fastest else 'NOT the fastest'} "
                "of the four ORM approaches"
            )
    if "append_turn, 4 messages, priced" not in medians or not throughput:
        return lines  # a partial run (--only): the targets below compare what it left out
    for page in ("newest", "deep"):
        tree = medians[f"get_history(100), branched, {page}"]["store"]
        line = medians[f"get_history(100), {page}"]["store"]
        verdict = "met" if tree / line <= 1.25 else "MISSED"
        lines.append(
            f"- get_history(100), {page}: along {size.forks} branches {tree / line:.2f}x the "
            f"linear history (target <= 1.25x: {verdict})"
        )
    priced = medians["append_turn, 4 messages, priced"]["store"]
    plain = medians["append_turn, 4 messages"]["store"]
    verdict = "met" if priced / plain <= 1.1 else "MISSED"
    lines.append(
        f"- append_turn of 4 with usage and cost: {priced / plain:.2f}x the same turn without "
        f"(target <= 1.1x: {verdict})"
    )
    turn_ratio = medians["append_turn, 4 messages"]["store"] / medians["append_message"]["store"]
    verdict = "met" if turn_ratio <= 1.5 else "MISSED"
    lines.append(
        f"- append_turn of 4: {turn_ratio:.2f}x one append_message (target <= 1.5x: {verdict})"
    )
    share = throughput["store"][0] / throughput["raw"][0]
    verdict = "met" if share >= 0.85 else "MISSED"
    lines.append(
        f"- 50 concurrent callers: store {share:.2f}x raw's throughput (target >= 0.85x: {verdict})"
    )
    return lines


def _cpu() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cli() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("--quick", action="store_true", help="a small data set, for CI")
    chosen.add_argument("--scale", action="store_true", help="a million messages and tasks")
    parser.add_argument("--server", help="postgres:// URL of a server to create a database on")
    parser.add_argument("--profile", action="store_true", help="profile the store's reads")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="time only the operations whose name holds this text (repeatable); "
        "no concurrency or replica tables",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="delay every byte MS milliseconds each way (the suite's own proxy); adds the "
        "chat-history packages users pick instead",
    )
    args = parser.parse_args()
    server = parse_database_url(args.server, variable="--server") if args.server else None
    size = QUICK if args.quick else SCALE if args.scale else FULL
    run = main(size, server, with_profile=args.profile, only=args.only, latency=args.latency)
    asyncio.run(run)


if __name__ == "__main__":
    cli()
