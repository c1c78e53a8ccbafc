"""A bounded soak: 50 workers on a pool of 20 while backends die, the network goes silent for
3 s once, and the server restarts once.

At the end every acknowledged write is in the database exactly once, nothing unacknowledged
is half-written, every caller was answered or got one of the package's errors, and no call
took longer than the bound of a silent connection (twice the statement timeout).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter
from typing import Any

import pytest

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget, Settings
from faceplate_models.testing import connect
from tests import faults

SECONDS = 20.0
WORKERS = 50
PARTITION = 3.0
BOUND = 2 * Settings().statement_timeout


class Ledger:
    """What the workers were told: acknowledged writes, and writes that raised."""

    def __init__(self) -> None:
        self.messages: dict[str, uuid.UUID] = {}
        self.tasks: dict[str, uuid.UUID] = {}
        self.completed: set[uuid.UUID] = set()
        self.unacknowledged: set[str] = set()
        self.ops: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.slowest = 0.0


async def worker(n: int, user: fm.User, chat: fm.Conversation, ledger: Ledger, end: float) -> None:
    rng = random.Random(n)
    mine: list[uuid.UUID] = []
    step = 0
    while time.monotonic() < end:
        step += 1
        key = f"w{n}-{step}"
        roll = rng.random()
        started = time.monotonic()
        try:
            if roll < 0.3:
                ledger.ops["append_message"] += 1
                message = await fm.append_message(
                    user_id=user.id, conversation_id=chat.id, role="user", content=key
                )
                ledger.messages[key] = message.id
            elif roll < 0.45:
                ledger.ops["add_task"] += 1
                task = await fm.add_task(user_id=user.id, title=key)
                ledger.tasks[key] = task.id
                mine.append(task.id)
            elif roll < 0.5 and mine:
                ledger.ops["complete_task"] += 1
                done = await fm.complete_task(user_id=user.id, task_id=rng.choice(mine))
                ledger.completed.add(done.id)
            elif roll < 0.8:
                ledger.ops["get_history"] += 1
                await fm.get_history(user_id=user.id, conversation_id=chat.id, limit=20)
            else:
                ledger.ops["list_tasks"] += 1
                await fm.list_tasks(user_id=user.id, completed=False)
        except fm.FaceplateError as exc:
            ledger.errors[type(exc).__name__] += 1
            ledger.unacknowledged.add(key)
        ledger.slowest = max(ledger.slowest, time.monotonic() - started)


async def chaos(
    target: DatabaseTarget,
    server: Any,
    proxy: faults.Proxy,
    end: float,
    figures: dict[str, float],
) -> None:
    """Terminate one to three random backends every half second or so; go silent for a few
    seconds a quarter of the way in; restart once midway."""
    rng = random.Random(7)
    partition_at = time.monotonic() + SECONDS / 4
    restart_at = time.monotonic() + SECONDS / 2
    monitor = await connect(target)
    try:
        while time.monotonic() < end - 1:
            await asyncio.sleep(rng.uniform(0.3, 0.7))
            if partition_at and time.monotonic() >= partition_at:
                partition_at = 0
                proxy.silence()
                await asyncio.sleep(PARTITION)
                proxy.heal()
                figures["partition_s"] = PARTITION
                continue
            if restart_at and time.monotonic() >= restart_at:
                restart_at = 0
                await monitor.close()
                started = time.monotonic()
                await faults.restart_server(server)
                figures["restart_ms"] = (time.monotonic() - started) * 1000
                monitor = await connect(target)
                continue
            pids = await faults.backends(monitor, target.database)
            victims = rng.sample(pids, k=min(len(pids), rng.randint(1, 3)))
            await faults.terminate(monitor, victims)
            figures["killed"] += len(victims)
    finally:
        await monitor.close()


async def test_soak_keeps_every_acknowledged_write_exactly_once(
    restartable_db: DatabaseTarget, embedded_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="faceplate_models")
    proxy = faults.Proxy(restartable_db)  # the workers' network, which goes silent once
    await fm.init_db((await proxy.start()).url())
    users = [
        await fm.get_or_create_user(subject_id=f"soak|{n}", email=f"soak{n}@example.com")
        for n in range(WORKERS)
    ]
    chats = [await fm.create_conversation(user_id=user.id) for user in users]
    ledger = Ledger()
    figures: dict[str, float] = {"killed": 0, "restart_ms": 0, "partition_s": 0}
    end = time.monotonic() + SECONDS
    try:
        await asyncio.gather(
            chaos(restartable_db, embedded_server, proxy, end, figures),
            *(worker(n, users[n], chats[n], ledger, end) for n in range(WORKERS)),
        )
    finally:
        proxy.heal()
        await fm.close_db()
        await proxy.close()

    retried = sum("retrying once" in record.getMessage() for record in caplog.records)
    print(
        f"\nsoak {SECONDS:.0f} s, {WORKERS} workers, pool 20: {sum(ledger.ops.values())} "
        f"operations {dict(ledger.ops)}; {figures['killed']:.0f} backends killed, "
        f"{figures['partition_s']:.0f} s silent, restart {figures['restart_ms']:.0f} ms; "
        f"{retried} retries; errors seen by callers "
        f"{dict(ledger.errors) or 'none'}; slowest call {ledger.slowest * 1000:.0f} ms"
    )

    check = await connect(restartable_db)
    try:
        messages = await check.fetch("SELECT id, content FROM faceplate.messages")
        tasks = await check.fetch("SELECT id, title, completed FROM faceplate.tasks")
        half_written = await check.fetchval(
            """SELECT count(*) FROM faceplate.conversations c WHERE c.updated_at <>
                 (SELECT coalesce(max(m.created_at), c.created_at)
                  FROM faceplate.messages m WHERE m.conversation_id = c.id)"""
        )
    finally:
        await check.close()

    stored = Counter(row["content"] for row in messages)
    assert max(stored.values(), default=1) == 1, "a write was stored twice"
    by_content = {row["content"]: row["id"] for row in messages}
    assert all(by_content.get(key) == mid for key, mid in ledger.messages.items())
    assert set(by_content) <= set(ledger.messages) | ledger.unacknowledged

    titles = Counter(row["title"] for row in tasks)
    assert max(titles.values(), default=1) == 1, "a task was stored twice"
    by_title = {row["title"]: row for row in tasks}
    assert all(by_title[key]["id"] == tid for key, tid in ledger.tasks.items())
    assert set(by_title) <= set(ledger.tasks) | ledger.unacknowledged
    completed = {row["id"] for row in tasks if row["completed"]}
    assert ledger.completed <= completed

    assert half_written == 0  # every conversation's activity time is its newest message's
    assert figures["killed"] > 0 and figures["restart_ms"] > 0 and retried > 0
    assert figures["partition_s"] == PARTITION
    assert set(ledger.errors) <= {"DatabaseUnavailable", "ConnectionLost", "OutcomeUnknown"}
    assert PARTITION < ledger.slowest < BOUND
