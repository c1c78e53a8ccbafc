"""`faceplate-db demo` as a newcomer runs it: a fresh process, twice."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from faceplate_models.config import DatabaseTarget
from faceplate_models.testing import connect, create_database, drop_database
from tests.commands import faceplate_db_cli


async def test_demo_twice_neither_fails_nor_duplicates(
    faceplate_server: DatabaseTarget, tmp_path: Path
) -> None:
    target = await create_database(faceplate_server, "demo")
    try:
        key = base64.b64encode(os.urandom(32)).decode()
        env = {
            **os.environ,
            "FACEPLATE_DATABASE_URL": target.url(),
            "FACEPLATE_SECRET_KEYS": f"demo:{key}",
        }
        first, second = (
            faceplate_db_cli("demo", env=env, cwd=tmp_path, timeout=180) for _ in range(2)
        )
        for run in (first, second):
            assert run.returncode == 0, run.stderr
            assert "ada@example.com" in run.stdout
            assert "calls todo_list_tasks" in run.stdout and "result [" in run.stdout
            assert "secrets: env.TODO_API_TOKEN" in run.stdout
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
    run = faceplate_db_cli("demo", env=env, cwd=tmp_path, timeout=180)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("embedded development PostgreSQL 16") == 1, run.stderr
    assert (tmp_path / ".faceplate" / "PG_VERSION").read_text().strip() == "16"
    assert "Two things" in run.stdout


def test_unreachable_database_exits_with_its_own_code(tmp_path: Path, unused_tcp_port: int) -> None:
    env = {
        **os.environ,
        "FACEPLATE_DATABASE_URL": f"postgres://u:pw-x@127.0.0.1:{unused_tcp_port}/d",
    }
    run = faceplate_db_cli("demo", env=env, cwd=tmp_path, timeout=180)
    assert run.returncode == 4
    assert "refused" in run.stderr and "pw-x" not in run.stderr


async def test_operator_input_is_refused_with_reasons(
    faceplate_server: DatabaseTarget, tmp_path: Path
) -> None:
    target = await create_database(faceplate_server, "cli")
    try:
        # A password on the command line is visible to every user of the machine.
        with_password = DatabaseTarget(
            target.host, target.port, target.database, target.user, "hunter2-secret"
        ).url()
        refused = faceplate_db_cli("status", "--url", with_password, env={}, cwd=tmp_path)
        assert refused.returncode == 1 and "--url-file" in refused.stderr
        assert "hunter2-secret" not in refused.stdout + refused.stderr
        # The same URL from a file, or from the environment, is fine.
        url_file = tmp_path / "url"
        url_file.write_text(target.url() + "\n")
        upgraded = faceplate_db_cli("upgrade", "--url-file", str(url_file), env={}, cwd=tmp_path)
        assert upgraded.returncode == 0, upgraded.stderr
        current = faceplate_db_cli("status", url=target.url(), cwd=tmp_path)
        assert current.returncode == 0, current.stderr
        missing = faceplate_db_cli(
            "status",
            "--migrations",
            str(tmp_path / "nonexistent"),
            env={"FACEPLATE_DATABASE_URL": target.url()},
            cwd=tmp_path,
        )
        assert missing.returncode == 1 and "no migrations folder" in missing.stderr
        for variable, value in (
            ("FACEPLATE_DB_CONNECT_TIMEOUT", "inf"),
            ("FACEPLATE_DB_STATEMENT_TIMEOUT", "nan"),
            ("FACEPLATE_DB_LOCK_TIMEOUT", "-1"),
        ):
            bad = faceplate_db_cli(
                "status",
                env={"FACEPLATE_DATABASE_URL": target.url(), variable: value},
                cwd=tmp_path,
            )
            assert bad.returncode == 1 and variable in bad.stderr and "finite" in bad.stderr
    finally:
        await drop_database(faceplate_server, target.database)


async def test_purge_deletes_the_expired_and_says_what_it_deleted(
    faceplate_server: DatabaseTarget, tmp_path: Path
) -> None:
    target = await create_database(faceplate_server, "purge")
    try:
        env = {"FACEPLATE_DATABASE_URL": target.url(), "FACEPLATE_RETENTION_TRASH_DAYS": "2"}
        assert faceplate_db_cli("upgrade", env=env, cwd=tmp_path).returncode == 0
        conn = await connect(target)
        try:
            await conn.execute(
                """INSERT INTO faceplate.users VALUES
                       ('01890000-0000-7000-8000-000000000001', 'a@b.c', 's', now(), now());
                   INSERT INTO faceplate.conversations (id, user_id, created_at, updated_at,
                       trashed_at, temporary)
                   SELECT gen_random_uuid(), '01890000-0000-7000-8000-000000000001', now(), now(),
                       now() - n * interval '1 day' + interval '12 hours', false
                   FROM generate_series(0, 4) n"""
            )
            run = faceplate_db_cli("purge", "--batch", "1", env=env, cwd=tmp_path)
            assert run.returncode == 0, run.stderr
            assert run.stdout.startswith("deleted 2 conversation(s): 2 from the trash (after 2"), (
                run.stdout
            )
            assert "FACEPLATE_RETENTION_INACTIVE_DAYS is unset" in run.stdout
            left = await conn.fetchval("SELECT count(*) FROM faceplate.conversations")
            assert left == 3
            bad = faceplate_db_cli(
                "purge", env={**env, "FACEPLATE_RETENTION_INACTIVE_DAYS": "0"}, cwd=tmp_path
            )
            assert bad.returncode != 0 and "FACEPLATE_RETENTION_INACTIVE_DAYS" in bad.stderr
        finally:
            await conn.close()
    finally:
        await drop_database(faceplate_server, target.database)


async def test_export_then_import_from_the_command_line(
    faceplate_server: DatabaseTarget, tmp_path: Path
) -> None:
    target = await create_database(faceplate_server, "portable")
    try:
        env = {"FACEPLATE_DATABASE_URL": target.url()}
        assert faceplate_db_cli("upgrade", env=env, cwd=tmp_path).returncode == 0
        conn = await connect(target)
        try:
            await conn.execute(
                """INSERT INTO faceplate.users VALUES
                       ('01890000-0000-7000-8000-000000000001', 'a@b.c', 'ada', now(), now()),
                       ('01890000-0000-7000-8000-000000000002', 'b@b.c', 'bob', now(), now());
                   INSERT INTO faceplate.conversations (id, user_id, title, created_at,
                       updated_at, message_count)
                   VALUES ('01890000-0000-7000-8000-0000000000c1',
                       '01890000-0000-7000-8000-000000000001', 'Hello', now(), now(), 1);
                   INSERT INTO faceplate.messages (id, conversation_id, user_id, role, content,
                       depth, segment_id, created_at)
                   VALUES ('01890000-0000-7000-8000-0000000000d1',
                       '01890000-0000-7000-8000-0000000000c1',
                       '01890000-0000-7000-8000-000000000001', 'user', 'Hi there', 0,
                       '01890000-0000-7000-8000-0000000000d1', now())"""
            )
            exported = tmp_path / "ada.zip"
            run = faceplate_db_cli(
                "export", "--subject", "ada", "--output", str(exported), env=env, cwd=tmp_path
            )
            assert run.returncode == 0, run.stderr
            assert "exported ada" in run.stdout and exported.stat().st_size > 0
            run = faceplate_db_cli("import", "--subject", "bob", str(exported), env=env)
            assert run.returncode == 0, run.stderr
            assert "1 imported (1 messages), 0 skipped, 0 failed" in run.stdout
            again = faceplate_db_cli("import", "--subject", "bob", str(exported), env=env)
            assert "0 imported (0 messages), 1 skipped, 0 failed" in again.stdout
            copied = await conn.fetchval(
                """SELECT m.content FROM faceplate.messages m
                   JOIN faceplate.conversations c ON c.id = m.conversation_id
                   WHERE c.user_id = '01890000-0000-7000-8000-000000000002'"""
            )
            assert copied == "Hi there"
            missing = faceplate_db_cli("export", "--subject", "nobody", env=env, cwd=tmp_path)
            assert missing.returncode == 1 and "nobody" in missing.stderr
        finally:
            await conn.close()
    finally:
        await drop_database(faceplate_server, target.database)
