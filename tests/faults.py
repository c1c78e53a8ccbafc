"""Real faults for the connection tests: kill backends, stop and start a server, lose replies,
go silent, cut the network, hold a row lock."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

import asyncpg
import pytest

# pgserver has no public restart; its pg_ctl wrapper runs the bundled binary as the server's
# system user, which is what a restart needs.
from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

from faceplate_models.config import APPLICATION_NAME, DatabaseTarget, load_settings
from faceplate_models.engine.bounds import TimeBounds
from faceplate_models.testing import connect


async def backends(monitor: asyncpg.Connection, database: str, *, query: str = "%") -> list[int]:
    """Process ids of the package's connections to `database` whose query is LIKE `query`."""
    rows = await monitor.fetch(
        """SELECT pid FROM pg_stat_activity
           WHERE datname = $1 AND application_name = $2 AND query LIKE $3""",
        database,
        APPLICATION_NAME,
        query,
    )
    return [row["pid"] for row in rows]


async def terminate(monitor: asyncpg.Connection, pids: list[int]) -> None:
    """Terminate these backends and wait until each process is gone."""
    await monitor.execute("SELECT pg_terminate_backend(pid, 5000) FROM unnest($1::int[]) pid", pids)


async def kill_when_running(
    target: DatabaseTarget, query: str, *, times: int = 1, wait: str | None = None
) -> int:
    """Terminate the backend running a statement LIKE `query` as soon as one shows up.

    With `wait`, only a backend waiting on that wait_event_type (such as 'Lock') counts.
    Returns how many were killed; gives up after five seconds.
    """
    monitor = await connect(target)
    killed = 0
    try:
        async with asyncio.timeout(5):
            while killed < times:
                pids = [
                    row["pid"]
                    for row in await monitor.fetch(
                        """SELECT pid FROM pg_stat_activity
                           WHERE datname = $1 AND application_name = $2 AND state = 'active'
                             AND query LIKE $3 AND ($4::text IS NULL OR wait_event_type = $4)""",
                        target.database,
                        APPLICATION_NAME,
                        query,
                        wait,
                    )
                ]
                if pids:
                    await terminate(monitor, pids[:1])
                    killed += 1
                await asyncio.sleep(0.01)
    except TimeoutError:
        pass
    finally:
        await monitor.close()
    return killed


def _pg_ctl(server: Any, *args: str) -> None:
    pg_ctl(["-w", *args], pgdata=server.pgdata, user=server.system_user, timeout=30)


async def stop_server(server: Any) -> None:
    """Stop the embedded server (fast mode: sessions are terminated, as in a real restart)."""
    await asyncio.to_thread(_pg_ctl, server, "-m", "fast", "stop")


async def start_server(server: Any) -> None:
    """Start the stopped embedded server again on the same socket."""
    await asyncio.to_thread(server.ensure_postgres_running)


async def restart_server(server: Any) -> None:
    """Stop, then start the embedded server."""
    await stop_server(server)
    await start_server(server)


def _message_types(data: bytes) -> set[bytes]:
    """The types of the frontend protocol messages in `data` (type byte, then int32 length)."""
    types, at = set(), 0
    while at + 5 <= len(data):
        types.add(data[at : at + 1])
        at += 1 + int.from_bytes(data[at + 1 : at + 5], "big")
    return types


class Proxy:
    """A TCP proxy to a PostgreSQL server that can lose a reply or go silent.

    `lose_reply_to(marker)`: the next time a client sends a statement containing `marker`,
    it reaches the server and runs, and the server's reply is dropped and that client's
    connection reset: a connection dying after a write was applied, before it was
    acknowledged.

    `silence()`: from now on nothing is forwarded in either direction, and no socket is
    closed, on open connections and new ones alike: a partition or a failover as a client
    sees it, no FIN and no RST. This machine's kernel keeps acknowledging what the client
    sends, so only the client's own deadline can notice. `heal()` forwards what was held.
    """

    def __init__(self, upstream: DatabaseTarget) -> None:
        self.upstream = upstream
        self.lost = 0
        self._marker: bytes | None = None
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> DatabaseTarget:
        """Listen on a free loopback port; returns the target to connect to instead."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        up = self.upstream
        return DatabaseTarget("127.0.0.1", port, up.database, up.user, up.password)

    def lose_reply_to(self, marker: bytes) -> None:
        self._marker = marker

    def silence(self) -> None:
        self._open.clear()

    def heal(self) -> None:
        self._open.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        up = self.upstream
        if up.host.startswith("/"):
            return await asyncio.open_unix_connection(f"{up.host}/.s.PGSQL.{up.port}")
        return await asyncio.open_connection(up.host, up.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await self._open_upstream()
        armed = asyncio.Event()

        async def to_server() -> None:
            marked = False
            try:
                while data := await reader.read(65536):
                    await self._open.wait()
                    if self._marker is not None and self._marker in data:
                        self._marker, marked = None, True
                    # asyncpg prepares a new statement in one round trip and runs it in the
                    # next: only the reply to the run (Execute, or a Query) follows the write.
                    if marked and _message_types(data) & {b"E", b"Q"}:
                        marked = False
                        armed.set()
                    up_writer.write(data)
                    await up_writer.drain()
            finally:  # an end or an error on one side ends the other, once the network is up
                await self._open.wait()
                up_writer.transport.abort()

        async def to_client() -> None:
            try:
                while data := await up_reader.read(65536):
                    await self._open.wait()
                    if armed.is_set():
                        self.lost += 1
                        return  # the client sees a reset connection
                    writer.write(data)
                    await writer.drain()
            finally:
                await self._open.wait()
                writer.transport.abort()

        try:
            await asyncio.gather(to_server(), to_client(), return_exceptions=True)
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()
                up_writer.transport.abort()
            self._tasks.discard(task)


async def hold_row(target: DatabaseTarget, table: str, row_id: Any) -> asyncpg.Connection:
    """Another session that locks the row `FOR UPDATE` until its transaction ends:
    `await holder.execute("COMMIT")`, then close it."""
    holder = await connect(target)
    await holder.execute("BEGIN")
    await holder.execute(f"SELECT 1 FROM faceplate.{table} WHERE id = $1 FOR UPDATE", row_id)
    return holder


async def lock_waiters(monitor: asyncpg.Connection, target: DatabaseTarget) -> int:
    """How many of the package's backends wait on a lock now."""
    count: int = await monitor.fetchval(
        """SELECT count(*) FROM pg_stat_activity WHERE datname = $1
           AND application_name = $2 AND wait_event_type = 'Lock'""",
        target.database,
        APPLICATION_NAME,
    )
    return count


async def wait_for_lock_waiters(target: DatabaseTarget, count: int, seconds: float = 5) -> None:
    """Return once `count` of the package's backends wait on a lock."""
    monitor = await connect(target)
    try:
        async with asyncio.timeout(seconds):
            while True:
                if await lock_waiters(monitor, target) >= count:
                    return
                await asyncio.sleep(0.02)
    finally:
        await monitor.close()


class Partition:
    """A real partition between this machine's clients and one loopback port: nftables drops
    every packet to and from it, both ways, as a cut cable does (no FIN, no RST; both kernels
    retransmit into the void). Needs root and the `nft` command (CI installs nftables)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.table = f"faceplate_partition_{port}"
        self.nft = shutil.which("nft") or "/usr/sbin/nft"
        missing = "needs root and nftables (`apt-get install -y nftables`; CI has both)"
        if os.geteuid() != 0 or not os.access(self.nft, os.X_OK):
            if os.environ.get("CI"):
                pytest.fail(f"a real partition {missing}")
            pytest.skip(f"a real partition {missing}")

    def _nft(self, script: str) -> None:
        subprocess.run(
            [self.nft, "-f", "-"],
            input=script,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        )

    def cut(self) -> None:
        self._nft(
            f"""table inet {self.table} {{
                chain input {{
                    type filter hook input priority -10; policy accept;
                    tcp dport {self.port} drop
                    tcp sport {self.port} drop
                }}
            }}"""
        )

    def heal(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._nft(f"delete table inet {self.table}")


async def session_defaults(target: DatabaseTarget, defaults: Mapping[str, object] | None) -> None:
    """Set the database's session defaults (None: remove them all), and end its other
    sessions (the pooler's server connections among them), which keep those they began with."""
    conn = await connect(target)
    try:
        await conn.execute("SET default_transaction_read_only = off")  # it may be set
        name = f'"{target.database}"'
        if defaults is None:
            await conn.execute(f"ALTER DATABASE {name} RESET ALL")
        for setting, value in (defaults or {}).items():
            await conn.execute(f"ALTER DATABASE {name} SET {setting} = {value}")
        await conn.execute(
            """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
               WHERE datname = $1 AND pid <> pg_backend_pid()""",
            target.database,
        )
    finally:
        await conn.close()


async def pooler_defaults(target: DatabaseTarget) -> None:
    """The time bounds and dead-peer settings as the database's defaults: what a transaction
    pooler's role carries (`faceplate-db grants` prints it), since the pooler passes no
    startup parameter."""
    settings = load_settings()
    bounds = TimeBounds(
        settings.statement_timeout, settings.lock_timeout, settings.idle_in_transaction_timeout
    )
    await session_defaults(target, bounds.session())
