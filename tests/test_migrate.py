"""Migrations as a deploy runs them: separate processes against a real server."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from faceplate_models.cli import EXIT_DRIFT, EXIT_ERROR, EXIT_OK, EXIT_PENDING, EXIT_UNREACHABLE
from faceplate_models.config import DatabaseTarget
from faceplate_models.migrate import migrations_location, version_files
from faceplate_models.testing import connect, create_database, drop_database
from tests.commands import ROOT, faceplate_db_cli

ALL = version_files()
INIT = ALL[0]

LATER_MIGRATION = '''from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "conversations" ADD "pinned" BOOL;
        UPDATE "conversations" SET "pinned" = false;
        ALTER TABLE "conversations" ALTER COLUMN "pinned" SET NOT NULL;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        ALTER TABLE "conversations" DROP COLUMN "pinned";"""
'''

FAILING_MIGRATION = '''from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE "half_done" ("id" INT);
        ALTER TABLE "conversations" ADD "pinned" BOOL;
        ALTER TABLE "no_such_table" ADD "x" INT;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return ""
'''


@pytest.fixture
async def empty_database(faceplate_server: DatabaseTarget) -> AsyncIterator[DatabaseTarget]:
    target = await create_database(faceplate_server, "migrate")
    yield target
    await drop_database(faceplate_server, target.database)


@pytest.fixture
def migrations_copy(tmp_path: Path) -> Path:
    """A scratch copy of the migrations folder, to add migrations the project does not have."""
    copy = tmp_path / "migrations"
    shutil.copytree(migrations_location(), copy)
    return copy


def add_migration(
    folder: Path, text: str, name: str = f"{len(ALL)}_20990101000000_later.py"
) -> str:
    (folder / "models" / name).write_text(text)
    return name


async def execute(target: DatabaseTarget, sql: str) -> None:
    conn = await connect(target)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def fetch(target: DatabaseTarget, sql: str) -> list[asyncpg.Record]:
    conn = await connect(target)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


async def schema_snapshot(target: DatabaseTarget) -> list[tuple[str, str, str]]:
    rows = await fetch(
        target,
        """SELECT table_name, column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'faceplate' ORDER BY 1, 2""",
    )
    return [tuple(r) for r in rows]


async def versions(target: DatabaseTarget) -> list[str]:
    return [
        r["version"]
        for r in await fetch(target, "SELECT version FROM faceplate.aerich ORDER BY id")
    ]


async def test_upgrade_from_empty_builds_the_schema_quickly(empty_database: DatabaseTarget) -> None:
    result = faceplate_db_cli("upgrade", url=empty_database.url())
    assert result.returncode == EXIT_OK, result.stderr
    assert f"applied {INIT}" in result.stdout
    seconds = float(re.search(r"applied in ([\d.]+) s", result.stdout).group(1))  # type: ignore[union-attr]
    print(f"\nmigrations from empty: {seconds:.2f} s")
    assert seconds < 5
    assert await versions(empty_database) == ALL
    public = await fetch(
        empty_database, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    )
    assert public == []

    again = faceplate_db_cli("upgrade", url=empty_database.url())
    assert again.returncode == EXIT_OK
    assert "current" in again.stdout
    assert await versions(empty_database) == ALL


async def test_plain_aerich_upgrade_from_the_repository_root(
    empty_database: DatabaseTarget,
) -> None:
    env = {**os.environ, "FACEPLATE_DATABASE_URL": empty_database.url()}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "aerich", "upgrade"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started
    print(f"\naerich upgrade from empty, whole process: {elapsed:.2f} s")
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < 5
    assert await versions(empty_database) == ALL
    tables = await fetch(
        empty_database, "SELECT schemaname, tablename FROM pg_tables WHERE tablename = 'aerich'"
    )
    assert [tuple(r) for r in tables] == [("faceplate", "aerich")]


async def test_concurrent_upgrades_apply_each_migration_once(
    empty_database: DatabaseTarget, migrations_copy: Path
) -> None:
    later = add_migration(migrations_copy, LATER_MIGRATION)
    command = [
        sys.executable,
        "-m",
        "faceplate_models.cli",
        "upgrade",
        "--migrations",
        str(migrations_copy),
    ]
    env = {**os.environ, "FACEPLATE_DATABASE_URL": empty_database.url()}
    runs = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [EXIT_OK] * 3, outputs
    assert sum("applied " + INIT in out for out, _ in outputs) == 1
    assert sum("current" in out for out, _ in outputs) == 2
    assert await versions(empty_database) == [*ALL, later]


async def test_later_migration_keeps_existing_rows_and_downgrades(
    empty_database: DatabaseTarget, migrations_copy: Path
) -> None:
    url = empty_database.url()
    assert faceplate_db_cli("upgrade", url=url).returncode == EXIT_OK
    await execute(
        empty_database,
        """INSERT INTO faceplate.users VALUES ('01890000-0000-7000-8000-000000000001',
                 'ada@example.com', 'a', now(), now());
               INSERT INTO faceplate.conversations VALUES ('01890000-0000-7000-8000-000000000002',
                 'Trip', now(), now(), '01890000-0000-7000-8000-000000000001')""",
    )
    later = add_migration(migrations_copy, LATER_MIGRATION)

    status = faceplate_db_cli("status", "--migrations", str(migrations_copy), url=url)
    assert status.returncode == EXIT_PENDING
    assert f"pending  {later}" in status.stdout

    result = faceplate_db_cli("upgrade", "--migrations", str(migrations_copy), url=url)
    assert result.returncode == EXIT_OK, result.stderr
    rows = await fetch(empty_database, "SELECT title, pinned FROM faceplate.conversations")
    assert [tuple(r) for r in rows] == [("Trip", False)]

    current = str(len(ALL) - 1)  # the last migration of the package: undo only the later one
    refused = faceplate_db_cli(
        "downgrade", current, "--migrations", str(migrations_copy), url=url, stdin="n\n"
    )
    assert refused.returncode == EXIT_ERROR
    assert await versions(empty_database) == [*ALL, later]

    undone = faceplate_db_cli(
        "downgrade", current, "--yes", "--migrations", str(migrations_copy), url=url
    )
    assert undone.returncode == EXIT_OK, undone.stderr
    assert f"undid {later}" in undone.stdout
    assert await versions(empty_database) == ALL
    rows = await fetch(empty_database, "SELECT * FROM faceplate.conversations")
    assert list(rows[0].keys()) == [
        "id",
        "title",
        "created_at",
        "updated_at",
        "user_id",
        "active_leaf_id",
        "open_calls",
        "settings",
        "metadata",
        "message_count",
        "archived_at",
        "pinned_at",
        "folder_id",
        "tag_ids",
        "temporary",
        "trashed_at",
    ]

    nothing = faceplate_db_cli("downgrade", current, "--yes", url=url)
    assert nothing.returncode == EXIT_OK and "nothing to undo" in nothing.stdout
    beyond = str(len(ALL))  # the later migration's number, undone above
    unknown = faceplate_db_cli("downgrade", beyond, "--yes", url=url)
    assert unknown.returncode == EXIT_ERROR and f"version {beyond} is not applied" in unknown.stderr


async def test_failed_migration_leaves_schema_and_versions_as_before(
    empty_database: DatabaseTarget, migrations_copy: Path
) -> None:
    url = empty_database.url()
    assert faceplate_db_cli("upgrade", url=url).returncode == EXIT_OK
    before = await schema_snapshot(empty_database)
    broken = add_migration(migrations_copy, FAILING_MIGRATION)

    result = faceplate_db_cli("upgrade", "--migrations", str(migrations_copy), url=url)
    assert result.returncode == EXIT_ERROR
    assert broken in result.stderr and "rolled back" in result.stderr
    assert "no_such_table" in result.stderr
    assert await schema_snapshot(empty_database) == before
    assert await versions(empty_database) == ALL


async def test_status_exit_codes(empty_database: DatabaseTarget, unused_tcp_port: int) -> None:
    url = empty_database.url()
    pending = faceplate_db_cli("status", url=url)
    assert pending.returncode == EXIT_PENDING, pending.stderr
    assert f"pending  {INIT}" in pending.stdout
    faceplate_db_cli("upgrade", url=url)
    current = faceplate_db_cli("status", url=url)
    assert current.returncode == EXIT_OK
    assert f"applied  {INIT}" in current.stdout
    unreachable = faceplate_db_cli(
        "status", url=f"postgres://u:secret-pw@127.0.0.1:{unused_tcp_port}/d"
    )
    assert unreachable.returncode == EXIT_UNREACHABLE
    assert (
        "refused" in unreachable.stdout
        and "secret-pw" not in unreachable.stdout + unreachable.stderr
    )


async def test_refuses_to_replay_history_when_the_version_table_is_missing(
    empty_database: DatabaseTarget,
) -> None:
    url = empty_database.url()
    assert faceplate_db_cli("upgrade", url=url).returncode == EXIT_OK
    await execute(empty_database, "DROP TABLE faceplate.aerich")
    before = await schema_snapshot(empty_database)
    for command in ("upgrade", "status"):
        result = faceplate_db_cli(command, url=url)
        assert result.returncode == EXIT_ERROR, result.stdout
        assert "version table faceplate.aerich is missing" in result.stderr
        assert "refusing" in result.stderr
    assert await schema_snapshot(empty_database) == before


def test_check_passes_when_models_and_migrations_agree() -> None:
    result = faceplate_db_cli("check")
    assert result.returncode == EXIT_OK, result.stdout + result.stderr
    assert "match" in result.stdout


def test_check_catches_a_model_change_without_migration(migrations_copy: Path) -> None:
    # Drop a field from the state the last migration recorded: to Aerich that is exactly a
    # model that gained a column nobody migrated.
    from aerich.utils import compress_dict, decompress_dict

    last = migrations_copy / "models" / ALL[-1]
    text = last.read_text()
    state_literal = text[text.index("MODELS_STATE = (") + len("MODELS_STATE = ") :]
    state = decompress_dict("".join(re.findall(r'"([^"]*)"', state_literal)))
    task = state["models.Task"]
    task["data_fields"] = [f for f in task["data_fields"] if f["name"] != "description"]
    last.write_text(
        text[: text.index("MODELS_STATE = (")] + f"MODELS_STATE = ({compress_dict(state)!r})\n"
    )
    listing = sorted(p.name for p in (migrations_copy / "models").iterdir())

    result = faceplate_db_cli("check", "--migrations", str(migrations_copy))
    assert result.returncode == EXIT_DRIFT, result.stdout + result.stderr
    assert '"description" TEXT' in result.stdout
    assert sorted(p.name for p in (migrations_copy / "models").iterdir()) == listing
