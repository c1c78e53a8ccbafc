"""The suite's own network between the clients and the server: a TCP proxy that counts round
trips at the protocol and can delay every byte by a fixed time each way. For timing, the
delaying proxy runs in a process of its own (`DelayLine`): in the clients' event loop its
work and theirs would wait on each other, and the layer doing more work per call would pay
for the proxy's too.

A round trip is a flight of the client's messages sent after the server last answered: the
client waits for the answer before it sends again, so each flight costs one network round
trip, whatever the messages in it (a pipelined Parse, Bind, Execute and Sync is one). The
count is of what crossed the wire, not of statements the code meant to send.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from faceplate_models.config import DatabaseTarget

_CHUNK = 1 << 16


@dataclass
class _Link:
    """One client connection's state: whether the server has answered its last flight."""

    answered: bool = True
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class Wire:
    """A proxy to `upstream` listening on loopback: `round_trips` since `reset()`, every
    byte delayed by `delay_ms` each way."""

    def __init__(self, upstream: DatabaseTarget, *, delay_ms: float = 0.0) -> None:
        self.upstream = upstream
        self.delay = delay_ms / 1000
        self.round_trips = 0
        self._server: asyncio.Server | None = None
        self._links: list[_Link] = []

    async def start(self) -> DatabaseTarget:
        """Listen; the target that reaches the upstream through the proxy."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return DatabaseTarget(
            host="127.0.0.1",
            port=port,
            user=self.upstream.user,
            password=self.upstream.password,
            database=self.upstream.database,
        )

    def reset(self) -> None:
        self.round_trips = 0

    async def count(self, call: Callable[[], Awaitable[object]], *, warm: int = 2) -> int:
        """The round trips of one `call`, after `warm` calls have made its statements known
        to the connection (a first call also prepares them)."""
        for _ in range(warm):
            await call()
        self.reset()
        await call()
        return self.round_trips

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in self._links:
            for task in link.tasks:
                task.cancel()
        for link in self._links:
            for task in link.tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up = self.upstream
        if up.host.startswith("/"):  # a Unix socket's directory, as libpq names it
            opened = asyncio.open_unix_connection(f"{up.host}/.s.PGSQL.{up.port}")
        else:
            opened = asyncio.open_connection(up.host, up.port)
        up_reader, up_writer = await opened
        link = _Link()
        self._links.append(link)

        def sent(data: bytes) -> None:  # the client's bytes reach the proxy
            if link.answered:
                self.round_trips += 1
                link.answered = False

        def answered(data: bytes) -> None:
            link.answered = True

        link.tasks = [
            asyncio.create_task(self._pipe(reader, up_writer, sent)),
            asyncio.create_task(self._pipe(up_reader, writer, answered)),
        ]
        await asyncio.wait(link.tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in link.tasks:
            task.cancel()
        for end in (writer, up_writer):
            end.close()
        self._links.remove(link)

    async def _pipe(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        seen: Callable[[bytes], None],
    ) -> None:
        """Copy `source` to `sink`, each chunk `delay` after it arrived, in order."""
        loop = asyncio.get_running_loop()
        line: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await line.get()
                if not data:
                    sink.close()
                    return
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                sink.write(data)
                await sink.drain()

        delivery = asyncio.create_task(deliver())
        try:
            while data := await source.read(_CHUNK):
                seen(data)
                line.put_nowait((loop.time() + self.delay, data))
            line.put_nowait((loop.time() + self.delay, b""))
            await delivery
        finally:
            delivery.cancel()


class DelayLine:
    """A `Wire` delaying every byte `delay_ms` each way, in a process of its own."""

    def __init__(self, upstream: DatabaseTarget, *, delay_ms: float) -> None:
        self.upstream = upstream
        self.delay_ms = delay_ms
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> DatabaseTarget:
        """Start the process; the target that reaches the upstream through it."""
        up = self.upstream
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.wire", up.host, str(up.port), str(self.delay_ms),
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert self._process.stdout is not None
        port = int(await self._process.stdout.readline())
        return DatabaseTarget(
            host="127.0.0.1",
            port=port,
            user=up.user,
            password=up.password,
            database=up.database,
        )

    async def close(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()


async def _serve(host: str, port: int, delay_ms: float) -> None:
    upstream = DatabaseTarget(host=host, port=port, user="", database="")
    through = await Wire(upstream, delay_ms=delay_ms).start()
    print(through.port, flush=True)
    await asyncio.Event().wait()  # until the parent terminates it


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))


__all__ = ["DelayLine", "Wire"]
