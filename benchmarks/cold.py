"""Cold start: from a fresh interpreter's start to the first answered `get_history(100)`, as
a serverless function that starts per request pays it.

    python -m benchmarks.cold                 # on the embedded PostgreSQL
    python -m benchmarks.cold --server URL    # on a server of your own

Four kinds of process read the same page of the same migrated database, taking turns, each
in a fresh interpreter: the store (`init_db`, then `get_history`); raw asyncpg (one
connection, the store's own SQL, handed over as text so that it imports nothing else); the
floor of a Tortoise-based package (the same raw asyncpg process, importing Tortoise too);
and SQLAlchemy 2's async engine running the same SQL. The time is from the moment the
parent starts a child to the child's answer (the same spawn for every kind, and a finer
clock than the kernel's record of a process's start, which counts in 10 ms ticks).

The package's modules are compiled first, as installing a wheel does: an editable install
under PYTHONDONTWRITEBYTECODE would otherwise compile the store's source in every child,
while the other kinds read their libraries' compiled files.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: How far the store may be behind the floor (a raw asyncpg process importing Tortoise).
ALLOWANCE_MS = 50
KINDS = ("store", "raw asyncpg", "raw asyncpg + Tortoise", "SQLAlchemy 2")


async def _child(kind: str, job: dict[str, Any]) -> tuple[int, float]:
    """One cold start of `kind`: the rows of the page it read, and when it had them (closing
    its connections after is not counted)."""
    if kind == "store":
        import faceplate_models as fm

        await fm.init_db(job["url"])
        page = await fm.get_history(user_id=job["user"], conversation_id=job["chat"], limit=100)
        answered = time.time()
        await fm.close_db()
        return len(page.items), answered
    args = [*job["args"]]
    if kind == "SQLAlchemy 2":
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        engine = create_async_engine(job["url"].replace("postgres://", "postgresql+asyncpg://"))
        numbered = job["sql"]
        for n in range(len(args), 0, -1):  # SQLAlchemy binds by name
            numbered = numbered.replace(f"${n}", f":p{n}")
        async with engine.connect() as conn:
            result = await conn.execute(
                text(numbered), {f"p{n}": value for n, value in enumerate(args, 1)}
            )
            rows = result.fetchall()
            answered = time.time()
        await engine.dispose()
        return len(rows), answered
    if kind == "raw asyncpg + Tortoise":
        import tortoise  # noqa: F401 - what any Tortoise-based package imports

    import asyncpg

    raw = await asyncpg.connect(job["url"])
    found = await raw.fetch(job["sql"], *args)
    answered = time.time()
    await raw.close()
    return len(found), answered


def child() -> None:
    kind, job = sys.argv[2], json.loads(sys.stdin.read())
    if kind != "store":  # the store's own process parses ids itself
        import uuid

        job["args"] = [uuid.UUID(a) if n < 2 else a for n, a in enumerate(job["args"])]
    rows, answered = asyncio.run(_child(kind, job))
    print(json.dumps({"answered": answered, "rows": rows}))


async def _prepare(url: str | None) -> tuple[dict[str, Any], Any]:
    """A migrated database with a conversation of 200 messages: the job for the children."""
    import faceplate_models as fm
    from faceplate_models.config import parse_database_url
    from faceplate_models.store import history
    from faceplate_models.testing import create_database
    from faceplate_models.validation import MAX_PAGE_BYTES

    if url is None:
        from faceplate_models.embedded import server_target, start_server

        server = server_target(
            start_server(Path(tempfile.mkdtemp(prefix="faceplate-cold-")), temporary=True)
        )
    else:
        server = parse_database_url(url, variable="--server")
    target = await create_database(server, "cold")
    await fm.init_db(target.url(), migrate=True)
    user = await fm.get_or_create_user(subject_id="cold", email="cold@example.com")
    chat = await fm.create_conversation(user_id=user.id, title="cold")
    for n in range(100):
        await fm.append_turn(
            user_id=user.id,
            conversation_id=chat.id,
            messages=[
                {"role": "user", "content": f"question {n}"},
                {"role": "assistant", "content": f"answer {n}"},
            ],
        )
    await fm.close_db()
    sql = history.PATH_SQL[history.NEWEST, False]
    job = {
        "url": target.url(),
        "user": str(user.id),
        "chat": str(chat.id),
        "sql": sql,
        "args": [str(chat.id), str(user.id), 101, MAX_PAGE_BYTES],
    }
    return job, (server, target)


def _once(kind: str, job: dict[str, Any]) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.time()
    done = subprocess.run(  # noqa: S603 - this interpreter, this module
        [sys.executable, "-m", "benchmarks.cold", "--child", kind],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["rows"] < 100:
        raise RuntimeError(f"{kind} read {report['rows']} rows, not a page of 100")
    return float(report["answered"]) - started


def measure(job: dict[str, Any], rounds: int) -> dict[str, list[float]]:
    """`rounds` cold starts of each kind, the kinds taking turns."""
    import faceplate_models

    compileall.compile_dir(Path(faceplate_models.__file__).parent, quiet=1)
    for kind in KINDS:  # the files in the page cache, as on a warm serverless host
        _once(kind, job)
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(rounds):
        for kind in KINDS:
            samples[kind].append(_once(kind, job))
    return samples


def table(samples: dict[str, list[float]]) -> list[str]:
    medians = {kind: statistics.median(s) for kind, s in samples.items()}
    floor = medians["raw asyncpg + Tortoise"]
    lines = [
        "| process | to the first get_history(100), ms | vs the floor |",
        "| --- | ---: | ---: |",
    ]
    for kind in KINDS:
        lines.append(
            f"| {kind} | {medians[kind] * 1000:.0f} | {(medians[kind] - floor) * 1000:+.0f} ms |"
        )
    behind = (medians["store"] - floor) * 1000
    verdict = "met" if behind <= ALLOWANCE_MS else "MISSED"
    lines.append("")
    lines.append(
        f"- cold start: the store {behind:+.0f} ms against raw asyncpg importing Tortoise "
        f"(target <= +{ALLOWANCE_MS} ms: {verdict})"
    )
    return lines


async def _drop(where: Any) -> None:
    from faceplate_models.testing import drop_database

    server, target = where
    await drop_database(server, target.database)


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child()
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--server", help="postgres:// URL of a server to create a database on")
    parser.add_argument("--rounds", type=int, default=15, help="cold starts of each kind")
    args = parser.parse_args()
    job, where = asyncio.run(_prepare(args.server))
    try:
        samples = measure(job, args.rounds)
    finally:
        asyncio.run(_drop(where))
    print(f"\nCold start, {args.rounds} fresh interpreters of each kind (medians):\n")
    print("\n".join(table(samples)))


if __name__ == "__main__":
    main()
