"""Live replies, measured: what a streamed reply costs in WAL against writing its text once,
its time against one append of the same text, and how far a follower lags behind the writer
(woken by NOTIFY in session mode; by polling behind a transaction pooler)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

import faceplate_models as fm
from faceplate_models.engine import current

#: A reply of 8 KB of incompressible text, streamed 40 characters at a time, stored per KB.
REPLY_CHARS = 8192
PIECE = 40


async def _wal(work: Callable[[], Awaitable[None]]) -> int:
    """The WAL `work` writes (other sessions' writes count too: run it alone)."""
    client = current()
    lsn = "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint"
    async with client.acquire_connection() as conn:
        # From a checkpoint, where the role may: both sides then pay their full pages.
        with contextlib.suppress(fm.FaceplateError, asyncpg.PostgresError):
            await conn.execute("CHECKPOINT")
        start = await conn.fetchval(lsn)
    await work()
    async with client.acquire_connection() as conn:
        end = await conn.fetchval(lsn)
    return int(end) - int(start)


async def measure(user: uuid.UUID, replies: int) -> list[str]:
    """The rows of the live replies' table."""
    chat = await fm.create_conversation(user_id=user, title="live replies")
    at: dict[str, Any] = {"user_id": user, "conversation_id": chat.id}
    texts = [os.urandom(REPLY_CHARS // 2).hex() for _ in range(replies)]
    streamed_times: list[float] = []
    once_times: list[float] = []

    async def streamed() -> None:
        for body in texts:
            started = time.perf_counter()
            reply = await fm.start_reply(**at, flush_bytes=1024, flush_ms=60_000)
            for i in range(0, len(body), PIECE):
                await reply.write(body[i : i + PIECE])
            await reply.finish(model="m-bench", finish_reason="stop")
            streamed_times.append(time.perf_counter() - started)

    async def once() -> None:
        for body in texts:
            started = time.perf_counter()
            await fm.append_message(**at, role="assistant", content=body, model="m-bench")
            once_times.append(time.perf_counter() - started)

    stream_wal, once_wal = await _wal(streamed), await _wal(once)
    lags = await _lags(at, replies)
    return [
        f"| WAL per reply | {stream_wal / replies / 1024:.1f} KB | "
        f"{once_wal / replies / 1024:.1f} KB | {stream_wal / once_wal:.2f}x |",
        f"| time per reply (8 flushes and the end) | {statistics.median(streamed_times) * 1e3:.2f}"
        f" ms | {statistics.median(once_times) * 1e3:.2f} ms | "
        f"{statistics.median(streamed_times) / statistics.median(once_times):.2f}x |",
        f"| a follower's lag behind a flush, median / p95 | {lags[0] * 1e3:.1f} ms / "
        f"{lags[1] * 1e3:.1f} ms | - | - |",
    ]


async def _lags(at: dict[str, Any], replies: int) -> tuple[float, float]:
    """How long after a flush a follower has its text (session mode: NOTIFY wakes it)."""
    lags: list[float] = []
    for _ in range(max(3, replies // 10)):
        reply = await fm.start_reply(**at, flush_bytes=1)
        sent: list[float] = []
        done = asyncio.Event()

        async def follow(message_id: uuid.UUID, sent: list[float], done: asyncio.Event) -> None:
            got = 0
            async for text in fm.follow_reply(user_id=at["user_id"], message_id=message_id):
                arrived = time.perf_counter()
                for n in range(got, got + len(text) // PIECE):
                    if n < len(sent):
                        lags.append(arrived - sent[n])
                got += len(text) // PIECE
            done.set()

        follower = asyncio.create_task(follow(reply.message_id, sent, done))
        await asyncio.sleep(0.05)  # the follower is listening
        for _ in range(20):
            sent.append(time.perf_counter())
            await reply.write("x" * PIECE)  # one flush each: flush_bytes is 1
            await asyncio.sleep(0.02)
        await reply.finish()
        await asyncio.wait_for(done.wait(), 30)
        await follower
    lags.sort()
    return statistics.median(lags), lags[int(len(lags) * 0.95)]


def table(rows: list[str], replies: int) -> list[str]:
    return [
        "",
        f"Live replies: {replies} replies of 8 KB of incompressible text, streamed "
        f"{PIECE} characters at a time and stored per kilobyte, against appending the same "
        "text once:",
        "",
        "| measure | streamed | written once | ratio |",
        "| --- | ---: | ---: | ---: |",
        *rows,
    ]


__all__ = ["measure", "table"]
