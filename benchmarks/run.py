"""The store against raw asyncpg (the floor) and SQLAlchemy 2 async ORM (the alternative).

    python benchmarks/run.py            # full size: 1,000 users, a 10,000-message conversation
    python benchmarks/run.py --quick    # a small data set and few rounds, for a CI smoke run

It builds a fresh database (on the embedded PostgreSQL, or on the server of `--server URL`),
migrates it with the real migrations, loads the data set with COPY, then times every
operation in the three implementations round-robin, so that all three see the same machine
load. It prints a Markdown table: median and p95 latency, and each one's ratio to raw asyncpg.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import platform
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
from benchmarks.alternatives import Raw, SqlAlchemy
from faceplate_models.config import DatabaseTarget, parse_database_url
from faceplate_models.store import cursors
from faceplate_models.testing import connect, create_database, drop_database


@dataclass(frozen=True)
class Size:
    users: int
    conversations: int
    tasks: int
    messages: int
    rounds: int
    concurrent_calls: int


FULL = Size(
    users=1000, conversations=1000, tasks=10_000, messages=10_000, rounds=300, concurrent_calls=20
)
QUICK = Size(users=50, conversations=100, tasks=600, messages=600, rounds=15, concurrent_calls=2)


@dataclass
class DataSet:
    heavy: uuid.UUID
    heavy_subject: str
    heavy_email: str
    chat: uuid.UUID
    deep_cursor: str
    conversations_cursor: str
    scratch: dict[str, uuid.UUID]  # one conversation per implementation for append_message


def _tool_call(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{n}",
            "type": "function",
            "function": {
                "name": "todo.add_task",
                "arguments": json.dumps({"title": f"Follow up on item {n}", "due": "2026-12-01"}),
            },
        }
    ]


def _tool_result(n: int) -> list[dict[str, Any]]:
    return [{"tool_call_id": f"call_{n}", "content": [{"id": str(uuid.uuid4()), "ok": True}]}]


async def load(target: DatabaseTarget, size: Size) -> DataSet:
    """Fill the migrated database with COPY: the same rows the store would write."""
    rng = random.Random(42)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    conn = await connect(target)
    try:
        users = [
            (uuid.uuid4(), f"user{n}@example.com", f"sub|{n}", start, start)
            for n in range(size.users)
        ]
        await conn.copy_records_to_table(
            "users",
            schema_name="faceplate",
            records=users,
            columns=["id", "email", "subject_id", "created_at", "updated_at"],
        )
        heavy = users[0][0]
        conversations = [
            (
                uuid.uuid4(),
                heavy,
                f"Chat {n}",
                start + timedelta(minutes=n),
                start + timedelta(minutes=n, seconds=rng.randint(0, 10_000)),
            )
            for n in range(size.conversations)
        ]
        conversations += [
            (uuid.uuid4(), users[n][0], "Hello", start, start) for n in range(1, size.users)
        ]
        await conn.copy_records_to_table(
            "conversations",
            schema_name="faceplate",
            records=conversations,
            columns=["id", "user_id", "title", "created_at", "updated_at"],
        )
        chat = conversations[0][0]
        messages: list[tuple[Any, ...]] = []
        for n in range(size.messages):
            at = start + timedelta(seconds=n)
            kind = n % 3
            if kind == 0:
                messages.append(
                    (uuid.uuid4(), chat, "user", f"Question {n}: " + "words " * 30, None, None, at)
                )
            elif kind == 1:
                messages.append(
                    (uuid.uuid4(), chat, "assistant", None, json.dumps(_tool_call(n)), None, at)
                )
            else:
                messages.append(
                    (uuid.uuid4(), chat, "tool", None, None, json.dumps(_tool_result(n - 1)), at)
                )
        await conn.copy_records_to_table(
            "messages",
            schema_name="faceplate",
            records=messages,
            columns=[
                "id",
                "conversation_id",
                "role",
                "content",
                "tool_calls",
                "tool_results",
                "created_at",
            ],
        )
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
        await conn.copy_records_to_table(
            "tasks",
            schema_name="faceplate",
            records=tasks,
            columns=[
                "id",
                "user_id",
                "title",
                "description",
                "completed",
                "created_at",
                "updated_at",
            ],
        )
        scratch = {}
        for name in ("store", "raw", "sqlalchemy"):
            scratch[name] = await conn.fetchval(
                """INSERT INTO faceplate.conversations (id, user_id, title, created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $4) RETURNING id""",
                uuid.uuid4(),
                heavy,
                f"appends of {name}",
                start,
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    # Cursors in the middle: the deep history page and a later conversations page.
    middle = messages[size.messages // 2]
    newest_first = sorted(conversations[: size.conversations], key=lambda c: (c[4], c[0]))[::-1]
    later = newest_first[size.conversations // 2]
    deep_cursor = cursors.encode(cursors.HISTORY, heavy, chat, middle[6], middle[0])
    conversations_cursor = cursors.encode(cursors.CONVERSATIONS, heavy, None, later[4], later[0])
    return DataSet(
        heavy, users[0][2], users[0][1], chat, deep_cursor, conversations_cursor, scratch
    )


Call = Callable[[], Awaitable[Any]]


def operations(data: DataSet, raw: Raw, alchemy: SqlAlchemy) -> dict[str, dict[str, Call]]:
    """Each operation in the three implementations, with the same arguments."""
    implementations: dict[str, Any] = {"store": fm, "raw": raw, "sqlalchemy": alchemy}
    h, c = data.heavy, data.chat

    def each(make: Callable[[Any], Awaitable[Any]]) -> dict[str, Call]:
        return {name: functools.partial(make, impl) for name, impl in implementations.items()}

    return {
        "append_message": {
            name: functools.partial(
                impl.append_message,
                user_id=h,
                conversation_id=data.scratch[name],
                role="user",
                content="benchmark turn",
            )
            for name, impl in implementations.items()
        },
        "get_history(100), newest": each(
            lambda i: i.get_history(user_id=h, conversation_id=c, limit=100)
        ),
        "get_history(100), deep": each(
            lambda i: i.get_history(
                user_id=h, conversation_id=c, limit=100, before=data.deep_cursor
            )
        ),
        "list_conversations, first page": each(lambda i: i.list_conversations(user_id=h)),
        "list_conversations, later page": each(
            lambda i: i.list_conversations(user_id=h, cursor=data.conversations_cursor)
        ),
        "list_tasks(completed=False)": each(lambda i: i.list_tasks(user_id=h, completed=False)),
        "get_or_create_user, existing": each(
            lambda i: i.get_or_create_user(subject_id=data.heavy_subject, email=data.heavy_email)
        ),
    }


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(calls: dict[str, Call], rounds: int) -> dict[str, list[float]]:
    """Time `rounds` sequential calls of each implementation, taking turns each round."""
    for call in calls.values():  # warm up: prepared statements, pool, caches
        for _ in range(10):
            await call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            await call()
            samples[name].append(time.perf_counter() - started)
    return samples


async def concurrently(call: Call, callers: int, each: int) -> tuple[float, list[float]]:
    """`callers` tasks making `each` calls at once: (calls per second, latencies)."""
    latencies: list[float] = []

    async def caller() -> None:
        for _ in range(each):
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    return callers * each / (time.perf_counter() - started), latencies


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


async def main(size: Size, server: DatabaseTarget | None) -> None:
    embedded = None
    if server is None:
        from faceplate_models.embedded import server_target, start_server

        embedded = start_server(Path(tempfile.mkdtemp(prefix="faceplate-bench-")), temporary=True)
        server = server_target(embedded)
    target = await create_database(server, prefix="faceplate_bench")
    raw, alchemy = Raw(target), SqlAlchemy(target)
    try:
        await fm.init_db(target.url(), migrate=True)
        built = time.perf_counter()
        data = await load(target, size)
        print(f"data set loaded in {time.perf_counter() - built:.1f} s: {size}")
        await raw.open()
        await alchemy.open()
        version = await raw.server_version()

        rows: list[str] = []
        verdicts: list[str] = []
        for name, calls in operations(data, raw, alchemy).items():
            samples = await measure(calls, size.rounds)
            floor = statistics.median(samples["raw"])
            cells = [name]
            for impl in ("store", "raw", "sqlalchemy"):
                median = statistics.median(samples[impl])
                cells += [ms(median), ms(pct(samples[impl], 0.95))]
                if impl != "raw":
                    cells.append(f"{median / floor:.2f}x")
            rows.append("| " + " | ".join(cells) + " |")
            store_median = statistics.median(samples["store"])
            limit = 1.2 if name == "append_message" else 1.5
            faster = store_median < statistics.median(samples["sqlalchemy"])
            verdicts.append(
                f"- {name}: store {store_median / floor:.2f}x raw (target <= {limit}x), "
                f"{'faster' if faster else 'SLOWER'} than SQLAlchemy"
                + (
                    f"; p95 {ms(pct(samples['store'], 0.95))} ms (target < 5 ms)"
                    if name == "get_history(100), newest"
                    else ""
                )
            )

        concurrency = []
        for impl, call in operations(data, raw, alchemy)["get_history(100), newest"].items():
            await concurrently(call, 50, 1)  # warm every pooled connection
            throughput, latencies = await concurrently(call, 50, size.concurrent_calls)
            concurrency.append(
                f"| {impl} | {throughput:,.0f} | {ms(pct(latencies, 0.95))} | "
                f"{ms(pct(latencies, 0.99))} |"
            )
    finally:
        await raw.close()
        await alchemy.close()
        await fm.close_db()
        await drop_database(server, target.database)

    print()
    print(
        f"Machine: {_cpu()}, {os.cpu_count()} cores; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; PostgreSQL {version}"
        f"{' (embedded)' if embedded else ''}. Data: {size.users:,} users; the heavy user has "
        f"{size.conversations:,} conversations, {size.tasks:,} tasks and a {size.messages:,}"
        f"-message conversation. {size.rounds} rounds per operation; times in ms."
    )
    print()
    print(
        "| operation | store median | store p95 | store / raw | raw median | raw p95 | "
        "SQLAlchemy median | SQLAlchemy p95 | SQLAlchemy / raw |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    print("\n".join(rows))
    print()
    print(
        f"50 concurrent get_history(100) callers, pool of 20, {size.concurrent_calls} calls each:"
    )
    print()
    print("| implementation | calls/s | p95 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: |")
    print("\n".join(concurrency))
    print()
    print("\n".join(verdicts))


def _cpu() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small data set, for CI")
    parser.add_argument("--server", help="postgres:// URL of a server to create a database on")
    args = parser.parse_args()
    server = parse_database_url(args.server, variable="--server") if args.server else None
    asyncio.run(main(QUICK if args.quick else FULL, server))


if __name__ == "__main__":
    cli()
