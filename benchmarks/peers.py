"""The chat-history packages users pick instead of a data layer, each used as its own
documentation shows, beside the store, at the suite's latency: appending one message and
reading the newest 100 of a long conversation.

- langchain-postgres's `PostgresChatMessageHistory` on a psycopg 3 `AsyncConnection`
  (`aadd_messages`, `aget_messages`);
- the OpenAI Agents SDK's `SQLAlchemySession` on SQLAlchemy's asyncpg engine (`add_items`,
  `get_items(limit=100)`).
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmarks.wire import Wire
from faceplate_models.config import DatabaseTarget

#: What each does not do that the store does, said plainly.
LACKS = {
    "langchain-postgres": "reads the whole history every time (no page, no cursor); no "
    "users, ownership, tree, tool-call pairing, idempotent retry or bounded waits; one "
    "connection, not a pool",
    "Agents SDK SQLAlchemySession": "no users or ownership, no tree, no tool-call pairing, "
    "no idempotent retry; the newest N items only (no cursor to page back)",
}


async def _langchain(target: DatabaseTarget, messages: int) -> dict[str, Callable[[], Any]]:
    import psycopg
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_postgres import PostgresChatMessageHistory

    conninfo = f"host={target.host} port={target.port} user={target.user} dbname={target.database}"
    conn = await psycopg.AsyncConnection.connect(conninfo)
    table = "langchain_history"
    await PostgresChatMessageHistory.acreate_tables(conn, table)
    long = PostgresChatMessageHistory(table, str(uuid.uuid4()), async_connection=conn)
    await long.aadd_messages(
        [
            HumanMessage(content=f"question {n}") if n % 2 == 0 else AIMessage(f"answer {n}")
            for n in range(messages)
        ]
    )
    short = PostgresChatMessageHistory(table, str(uuid.uuid4()), async_connection=conn)

    async def newest() -> Any:
        return (await long.aget_messages())[-100:]

    return {
        "append": lambda: short.aadd_messages([HumanMessage(content="benchmark turn")]),
        "newest 100": newest,
        "close": conn.close,
    }


async def _agents(target: DatabaseTarget, messages: int) -> dict[str, Callable[[], Any]]:
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
    from sqlalchemy.ext.asyncio import create_async_engine

    url = f"postgresql+asyncpg://{target.user}@{target.host}:{target.port}/{target.database}"
    engine = create_async_engine(url)
    long = SQLAlchemySession(str(uuid.uuid4()), engine=engine, create_tables=True)
    await long.add_items(
        [
            {"role": "user" if n % 2 == 0 else "assistant", "content": f"message {n}"}
            for n in range(messages)
        ]
    )
    short = SQLAlchemySession(str(uuid.uuid4()), engine=engine, create_tables=True)
    return {
        "append": lambda: short.add_items([{"role": "user", "content": "benchmark turn"}]),
        "newest 100": lambda: long.get_items(limit=100),
        "close": engine.dispose,
    }


#: The store's operation in the suite for each of this table's, whose round trips the
#: suite's round-trip pass counted (in session mode).
STORE_OPERATIONS = {"append": "append_message", "newest 100": "get_history(100), newest"}


@dataclass(frozen=True)
class Row:
    """One operation: each implementation's median, and the peers' round trips."""

    operation: str
    medians: dict[str, float]
    trips: dict[str, int]


async def measure(
    target: DatabaseTarget,
    reach: DatabaseTarget,
    store: Mapping[str, Callable[[], Awaitable[Any]]],
    messages: int,
    rounds: int,
) -> list[Row]:
    """Medians of `rounds` through `reach` (the delaying proxy), the implementations taking
    turns, and the round trips of one call of each peer, counted on a `Wire` of their own
    to `target` (the store's are the suite's round-trip pass's)."""
    from benchmarks.run import measure as timed

    wire = Wire(target)
    counted = await wire.start()
    made: dict[str, Mapping[str, Callable[[], Any]]] = {"store": store}
    for_counting: dict[str, Mapping[str, Callable[[], Any]]] = {}
    for name, make in (
        ("langchain-postgres", _langchain),
        ("Agents SDK SQLAlchemySession", _agents),
    ):
        made[name] = await make(reach, messages)
        for_counting[name] = await make(counted, 200)
    rows = []
    try:
        for operation in STORE_OPERATIONS:
            chosen = {name: calls[operation] for name, calls in made.items()}
            samples = await timed(chosen, rounds)
            trips = {
                name: await wire.count(calls[operation], warm=1)
                for name, calls in for_counting.items()
            }
            medians = {n: statistics.median(s) for n, s in samples.items()}
            rows.append(Row(operation, medians, trips))
    finally:
        for kept in (*made.values(), *for_counting.values()):
            if "close" in kept:
                await kept["close"]()
        await wire.close()
    return rows


def table(
    rows: list[Row], store_trips: Mapping[str, Mapping[str, int]], messages: int, latency: float
) -> list[str]:
    """The table of `measure`'s rows, the store's round trips from `store_trips` (the suite's
    counts by operation; "-" where the run left one out)."""
    from benchmarks.run import ms

    names = ["store", *LACKS]
    lines = [
        "",
        f"The store against the chat-history packages, {latency:g} ms each way, on a "
        f"{messages:,}-message conversation (medians in ms, round trips of one call):",
        "",
        "| operation | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for row in rows:
        counted = store_trips.get(STORE_OPERATIONS[row.operation], {}).get("session")
        trips = {**row.trips, "store": "-" if counted is None else counted}
        cells = [f"{ms(row.medians[n])} ({trips[n]})" for n in names]
        lines.append(f"| {row.operation} | {' | '.join(cells)} |")
    lines.append("")
    lines.extend(f"- {name}: {lacks}." for name, lacks in LACKS.items())
    appends = rows[0].medians
    for name in LACKS:
        faster = appends["store"] < appends[name]
        lines.append(
            f"- append: the store {appends['store'] / appends[name]:.2f}x {name} "
            f"(target: faster: {'met' if faster else 'MISSED'})"
        )
    return lines


__all__ = ["LACKS", "STORE_OPERATIONS", "Row", "measure", "table"]
