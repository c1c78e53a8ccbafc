"""`faceplate-db demo` as a newcomer runs it: a fresh process, twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from faceplate_models.config import DatabaseTarget
from faceplate_models.testing import connect, create_database, drop_database


def demo(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faceplate_models.cli", "demo", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
        check=False,
    )


async def test_demo_twice_neither_fails_nor_duplicates(
    faceplate_server: DatabaseTarget, tmp_path: Path
) -> None:
    target = await create_database(faceplate_server, prefix="faceplate_demo")
    try:
        env = {**os.environ, "FACEPLATE_DATABASE_URL": target.url()}
        first, second = demo(tmp_path, env), demo(tmp_path, env)
        for run in (first, second):
            assert run.returncode == 0, run.stderr
            assert "ada@example.com" in run.stdout
            assert "calls todo.list_tasks" in run.stdout and "result [" in run.stdout
        assert first.stdout == second.stdout
        conn = await connect(target)
        try:
            counts = await conn.fetchrow(
                """SELECT (SELECT count(*) FROM faceplate.users) AS users,
                          (SELECT count(*) FROM faceplate.messages) AS messages,
                          (SELECT count(*) FROM faceplate.tasks) AS tasks,
                          (SELECT count(*) FROM faceplate.mcp_configs) AS configs"""
            )
        finally:
            await conn.close()
        assert counts is not None
        assert dict(counts) == {"users": 1, "messages": 5, "tasks": 3, "configs": 1}
    finally:
        await drop_database(faceplate_server, target.database)


def test_demo_uses_the_embedded_server_when_no_url_is_set(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FACEPLATE_DATABASE_URL"}
    run = demo(tmp_path, env)
    assert run.returncode == 0, run.stderr
    assert "embedded development PostgreSQL 16" in run.stderr
    assert (tmp_path / ".faceplate" / "PG_VERSION").read_text().strip() == "16"
    assert "Two things" in run.stdout


def test_unreachable_database_exits_with_its_own_code(tmp_path: Path, unused_tcp_port: int) -> None:
    env = {
        **os.environ,
        "FACEPLATE_DATABASE_URL": f"postgres://u:pw-x@127.0.0.1:{unused_tcp_port}/d",
    }
    run = demo(tmp_path, env)
    assert run.returncode == 4
    assert "refused" in run.stderr and "pw-x" not in run.stderr
