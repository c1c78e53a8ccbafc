"""A failover survived, on real servers: a primary with a synchronous streaming standby, and
writers on a URL naming both (`target_session_attrs=read-write`). The primary is killed with
SIGKILL and the standby promoted: the writers succeed again within seconds of the promotion,
and no acknowledged write is lost or stored twice (each write carries the caller's key, and a
write whose outcome was unknown is retried with it). And a server that turns read-only under
the pool (a primary being demoted) refuses writes as `DatabaseUnavailable`, a 503, on fresh
connections, not a bare `DatabaseError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget
from faceplate_models.errors import DatabaseUnavailable, OutcomeUnknown
from faceplate_models.ids import uuid7
from faceplate_models.testing import connect
from tests import faults, servers

WRITERS = 10
PROMOTED_WITHIN = 5.0


def kill_hard(cluster: servers.Cluster) -> None:
    """SIGKILL the cluster's postmaster and every backend: a machine that died."""
    pid = int((cluster.data / "postmaster.pid").read_text().split()[0])
    subprocess.run(["pkill", "-9", "-P", str(pid)], check=False)
    os.kill(pid, signal.SIGKILL)


@pytest.fixture
async def pair(
    tmp_path: Path, restore_db: DatabaseTarget
) -> AsyncIterator[tuple[servers.Cluster, servers.Cluster]]:
    """A primary and its synchronous standby, both the test's own, on loopback."""
    primary = servers.replicable(tmp_path / "primary")
    standby = servers.standby_of(primary, tmp_path / "standby")
    try:
        standby.start()
        # Synchronous from here on: the standby was cloned before, so once promoted it waits
        # for no standby of its own.
        primary.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        primary.psql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while primary.psql("SELECT sync_state FROM pg_stat_replication").strip() != "sync":
            assert time.monotonic() < deadline, "the standby never became synchronous"
            await asyncio.sleep(0.1)
        yield primary, standby
    finally:
        await fm.close_db()
        for cluster in (standby, primary):
            with contextlib.suppress(subprocess.CalledProcessError):
                cluster.stop()


def both(primary: servers.Cluster, standby: servers.Cluster) -> DatabaseTarget:
    """A URL naming the primary, then the standby, for whichever accepts writes."""
    return DatabaseTarget(
        "127.0.0.1",
        primary.port,
        "postgres",
        "postgres",
        alternates=(("127.0.0.1", standby.port),),
        target_session_attrs="read-write",
    )


async def test_writers_follow_a_promoted_standby_and_lose_nothing(
    pair: tuple[servers.Cluster, servers.Cluster],
) -> None:
    primary, standby = pair
    await fm.init_db(both(primary, standby).url(), migrate=True)
    owner = await fm.get_or_create_user(subject_id="failover", email="f@example.com")
    acknowledged: list[uuid.UUID] = []
    stored_at: list[float] = []
    errors: dict[str, int] = {}
    running = True
    promoted = float("inf")
    resumed_after_promotion = asyncio.Event()

    async def writer() -> None:
        while running:
            key = uuid7()
            while True:  # the application's retry: the same key until it is stored
                try:
                    await fm.add_task(user_id=owner.id, title=str(key), task_id=key)
                    break
                except (DatabaseUnavailable, OutcomeUnknown) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    await asyncio.sleep(0.05)
            acknowledged.append(key)
            stored_at.append(time.monotonic())
            if stored_at[-1] > promoted:
                resumed_after_promotion.set()

    workers = [asyncio.create_task(writer()) for _ in range(WRITERS)]
    await asyncio.sleep(2)
    before = len(acknowledged)
    kill_hard(primary)
    killed = time.monotonic()
    await asyncio.sleep(1)
    standby.run("pg_ctl", "-D", str(standby.data), "-w", "promote")
    promoted = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(resumed_after_promotion.wait(), 15)
    await asyncio.sleep(2)
    running = False
    await asyncio.wait_for(asyncio.gather(*workers), 60)

    resumed = min((t for t in stored_at if t > promoted), default=float("inf")) - promoted
    times = sorted(stored_at)
    stalled = max(later - earlier for earlier, later in itertools.pairwise(times))
    conn = await connect(standby.target())
    try:
        rows = await conn.fetch("SELECT id, title FROM faceplate.tasks")
    finally:
        await conn.close()
    stored = [row["id"] for row in rows]
    print(
        f"\n{before} writes before the kill, {len(acknowledged)} acknowledged in all; writes "
        f"resumed {resumed:.2f} s after the promotion ({promoted - killed:.1f} s after the "
        f"kill); no write acknowledged for {stalled:.2f} s; errors meanwhile: {errors}; on "
        f"the promoted standby: {len(stored)} rows"
    )
    assert resumed < PROMOTED_WITHIN
    assert stalled >= promoted - killed - 0.1  # the kill did stop the writes until then
    assert len(stored) == len(set(stored)) == len({row["title"] for row in rows})
    assert set(acknowledged) <= set(stored), "an acknowledged write was lost"
    assert len(set(acknowledged)) == len(acknowledged)


async def test_a_server_turned_read_only_is_unavailable_not_a_statement_error(
    faceplate_db: DatabaseTarget, restore_db: DatabaseTarget
) -> None:
    """25006 on every write: each call closes its connection and tries once more on a fresh
    one, then says the server is read-only, as a 503; reads go on; writes resume once it is
    writable again, on connections made since."""
    await fm.init_db(faceplate_db.url())
    owner = await fm.get_or_create_user(subject_id="ro", email="ro@example.com")
    await faults.session_defaults(faceplate_db, {"default_transaction_read_only": "on"})
    await fm.init_db(faceplate_db.url())  # a pool whose every connection is read-only
    try:
        for write in (
            fm.add_task(user_id=owner.id, title="refused"),
            fm.Task.create(user_id=owner.id, title="refused by the ORM"),
        ):
            with pytest.raises(DatabaseUnavailable, match="read-only") as caught:
                await write
            assert not isinstance(caught.value, OutcomeUnknown)  # nothing was applied
        assert (await fm.list_tasks(user_id=owner.id)).items == []
    finally:
        await faults.session_defaults(faceplate_db, None)
    stored = await fm.add_task(user_id=owner.id, title="stored")
    assert stored.title == "stored"
