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


async def measure(
    target: DatabaseTarget,
    reach: DatabaseTarget,
    store: Mapping[str, Callable[[], Awaitable[Any]]],
    messages: int,
    rounds: int,
    latency: float,
) -> list[str]:
    """The table: medians of `rounds` through `reach` (the delaying proxy), the
    implementations taking turns, and the round trips of one call of each, counted on a
    `Wire` of their own to `target`."""
    from benchmarks.run import measure as timed
    from benchmarks.run import ms

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
        for operation in ("append", "newest 100"):
            chosen = {name: calls[operation] for name, calls in made.items()}
            samples = await timed(chosen, rounds)
            trips = {"store": 1}  # counted for every operation by the suite's round-trip pass
            for name, calls in for_counting.items():
                await calls[operation]()
                wire.reset()
                await calls[operation]()
                trips[name] = wire.round_trips
            rows.append((operation, {n: statistics.median(s) for n, s in samples.items()}, trips))
    finally:
        for kept in (*made.values(), *for_counting.values()):
            if "close" in kept:
                await kept["close"]()
        await wire.close()
    lines = [
        "",
        f"The store against the chat-history packages, {latency:g} ms each way, on a "
        f"{messages:,}-message conversation (medians in ms, round trips of one call):",
        "",
        "| operation | " + " | ".join(made) + " |",
        "| --- |" + " ---: |" * len(made),
    ]
    for operation, medians, trips in rows:
        cells = [f"{ms(medians[n])} ({trips[n]})" for n in made]
        lines.append(f"| {operation} | {' | '.join(cells)} |")
    lines.append("")
    lines.extend(f"- {name}: {lacks}." for name, lacks in LACKS.items())
    store_append = rows[0][1]["store"]
    for name in LACKS:
        faster = store_append < rows[0][1][name]
        lines.append(
            f"- append: the store {store_append / rows[0][1][name]:.2f}x {name} "
            f"(target: faster: {'met' if faster else 'MISSED'})"
        )
    return lines


__all__ = ["LACKS", "measure"]
