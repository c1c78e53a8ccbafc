"""`faceplate-db`: the operator's command (migrate, inspect, check) and the newcomer's demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faceplate_models import migrate, secrets, store
from faceplate_models.config import (
    DatabaseTarget,
    load_settings,
    parse_database_url,
)
from faceplate_models.db import close_db, init_db, resolve_tortoise_config, tortoise_config
from faceplate_models.errors import ConfigError, DatabaseUnavailable, FaceplateError
from faceplate_models.models import Role

# Exit codes a deploy script can branch on.
EXIT_OK = 0
EXIT_ERROR = 1  # the command failed; the message says why
EXIT_USAGE = 2  # argparse's own
EXIT_PENDING = 3  # status: migrations are waiting to be applied
EXIT_UNREACHABLE = 4  # the database could not be reached
EXIT_DRIFT = 5  # check: the models changed and no migration says so


def _url(args: argparse.Namespace) -> str | None:
    """The URL of --url-file or --url; a password typed on the command line is refused."""
    if getattr(args, "url_file", None) is not None:
        try:
            return str(args.url_file.read_text().strip())
        except OSError as exc:
            raise ConfigError(f"--url-file cannot be read: {exc.strerror}") from None
    url: str | None = getattr(args, "url", None)
    if url is not None and parse_database_url(url, variable="--url").password:
        raise ConfigError(
            "--url carries a password, which every user of this machine can read (ps, "
            "/proc, shell history); put the URL in FACEPLATE_DATABASE_URL (or "
            "FACEPLATE_MIGRATION_DATABASE_URL), or in a file given as --url-file"
        )
    return url


def _config(args: argparse.Namespace) -> dict[str, Any]:
    """The migration config: the command's URL, else the migration target of the environment."""
    return resolve_tortoise_config(_url(args), migrating=True)


async def _upgrade(args: argparse.Namespace) -> int:
    config = _config(args)
    started = time.perf_counter()
    applied = await migrate.upgrade(config, args.migrations, lock_timeout=args.lock_timeout)
    if applied:
        for name in applied:
            print(f"applied {name}")
        print(f"{len(applied)} migration(s) applied in {time.perf_counter() - started:.2f} s")
    else:
        print("the database is current; nothing to apply")
    return EXIT_OK


async def _status(args: argparse.Namespace) -> int:
    config = _config(args)
    try:
        status = await migrate.read_status(config, args.migrations)
    except DatabaseUnavailable as exc:
        print(f"unreachable: {exc}")
        return EXIT_UNREACHABLE
    for name in status.applied:
        print(f"applied  {name}")
    for name in status.pending:
        print(f"pending  {name}")
    if status.current:
        print("the database is current")
        return EXIT_OK
    print(f"{len(status.pending)} migration(s) pending; run `faceplate-db upgrade`")
    return EXIT_PENDING


async def _check(args: argparse.Namespace) -> int:
    # The comparison is offline: the config only has to name the models, not a real server.
    offline = tortoise_config(
        DatabaseTarget("localhost", 5432, "unused", "unused"), load_settings(), migrating=True
    )
    sql = await migrate.pending_model_changes(offline, args.migrations)
    if not sql:
        print("the models match the migrations")
        return EXIT_OK
    print("the models differ from the migrations; a migration is missing. It would run:")
    print(sql)
    print("Create it with `aerich migrate --name <what_changed>` and commit it.")
    return EXIT_DRIFT


async def _downgrade(args: argparse.Namespace) -> int:
    config = _config(args)
    if not args.yes:
        question = f"Undo every migration after version {args.version}? Data may be lost. [y/N] "
        answer = await asyncio.to_thread(input, question)
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing was changed")
            return EXIT_ERROR
    undone = await migrate.downgrade(
        config, args.version, args.migrations, lock_timeout=args.lock_timeout
    )
    for name in undone:
        print(f"undid {name}")
    if not undone:
        print(f"version {args.version} is already the latest applied; nothing to undo")
    return EXIT_OK


async def _grants(args: argparse.Namespace) -> int:
    config = _config(args)
    owner = config["connections"]["default"]["credentials"]["user"]
    statements = migrate.grants(owner, args.app_role)
    print(
        f"-- DML on the faceplate tables for {args.app_role}, and on the tables {owner} adds later"
    )
    for statement in statements:
        print(statement + ";")
    print("-- Through a transaction pooler the time bounds and the dead-peer settings cannot")
    print("-- travel with each connection; a superuser (or a role with CREATEROLE) sets them on")
    print("-- the role instead:")
    for statement in migrate.role_bounds(args.app_role, load_settings()):
        print(f"-- {statement};")
    if args.apply:
        await migrate.apply_grants(config, statements)
        print(f"-- applied as {owner}")
    return EXIT_OK


async def _rotate_secrets(args: argparse.Namespace) -> int:
    await init_db(_url(args))
    try:
        done = await secrets.rotate(batch=args.batch)
    finally:
        await close_db()
    print(f"re-sealed {done.rotated} MCP config(s) under key {done.key_id!r}")
    for key_id, count in done.remaining.items():
        print(f"still under key {key_id!r}: {count} (held by a request; run this again)")
    if done.remaining:
        return EXIT_PENDING
    print("no secrets remain under other keys: the old keys can be removed")
    return EXIT_OK


async def _purge(args: argparse.Namespace) -> int:
    settings = load_settings()
    retention = settings.retention
    await init_db(_url(args), settings=settings)
    try:
        done = await store.purge_expired(retention=retention, batch=args.batch)
    finally:
        await close_db()
    inactive = (
        f"{done.inactive} without activity for {retention.inactive_days} days"
        if retention.inactive_days is not None
        else "none for inactivity (FACEPLATE_RETENTION_INACTIVE_DAYS is unset)"
    )
    print(
        f"deleted {done.total} conversation(s): {done.trashed} from the trash (after "
        f"{retention.trash_days} days), {done.temporary} temporary (after "
        f"{retention.temporary_days} days), {inactive}; marked {done.interrupted_replies} "
        f"silent live reply(ies) interrupted; deleted {done.expired_sign_ins} expired OAuth "
        "sign-in(s)"
    )
    return EXIT_OK


async def _subject(subject: str) -> Any:
    user = await store.get_user_by_subject(subject_id=subject)
    return user


async def _export(args: argparse.Namespace) -> int:
    to_file = args.output is not None and str(args.output) != "-"
    written = 0
    await init_db(_url(args))
    try:
        user = await _subject(args.subject)
        with contextlib.ExitStack() as stack:
            # A file written as the export is read; its writes are the export's own pace.
            out = stack.enter_context(args.output.open("wb")) if to_file else sys.stdout.buffer
            async for chunk in store.export_user(user_id=user.id):
                out.write(chunk)
                written += len(chunk)
            out.flush()
    finally:
        await close_db()
    if to_file:
        print(f"exported {args.subject} to {args.output} ({written:,} bytes)")
    return EXIT_OK


async def _import(args: argparse.Namespace) -> int:
    await init_db(_url(args))
    try:
        user = await _subject(args.subject)
        report = await store.import_conversations(user_id=user.id, source=list(args.files))
    finally:
        await close_db()
    for item in report.imported:
        print(f"imported  {item.source} {item.source_id}: {item.title!r}, {item.messages} messages")
    for item in report.skipped:
        print(f"skipped   {item.source} {item.source_id}: {item.title!r}, imported before")
    for item in report.failed:
        print(f"failed    {item.source_id}: {item.title!r}: {item.reason}")
    print(
        f"{len(report.imported)} imported ({report.messages} messages), "
        f"{len(report.skipped)} skipped, {len(report.failed)} failed"
    )
    return EXIT_ERROR if report.failed else EXIT_OK


async def _demo(args: argparse.Namespace) -> int:
    await init_db(_url(args), migrate=True)
    try:
        await _write_demo_data()
    finally:
        await close_db()
    return EXIT_OK


async def _write_demo_data() -> None:
    user = await store.get_or_create_user(subject_id="demo|ada", email="Ada@Example.com")
    todo = {
        "transport": "stdio",
        "command": "faceplate-todo-mcp",
        "args": ["--user", "ada"],
        "env": ["TODO_API_TOKEN"],
    }
    try:
        # Sealed at rest; listings show the name only.
        await store.save_mcp_config(
            user_id=user.id, name="todo", config=todo, secrets={"env.TODO_API_TOKEN": "demo"}
        )
    except ConfigError as exc:  # a server of your own, and no FACEPLATE_SECRET_KEYS
        await store.save_mcp_config(user_id=user.id, name="todo", config=todo)
        print(f"note          the demo's MCP token was not stored: {str(exc).split(':')[1]}")
    if not (await store.list_tasks(user_id=user.id, limit=1)).items:
        for title in ("Book the train to Lyon", "Renew the passport", "Call the plumber"):
            await store.add_task(user_id=user.id, title=title)
        first = (await store.list_tasks(user_id=user.id, limit=1)).items[0]
        await store.complete_task(user_id=user.id, task_id=first.id)
    if not (await store.list_conversations(user_id=user.id, limit=1)).items:
        await _demo_conversation(user.id)

    print(f"user          {user.email}  (subject {user.subject_id}, id {user.id})")
    for config in await store.list_mcp_configs(user_id=user.id):
        state = "enabled" if config.enabled else "disabled"
        sealed = ", ".join(config.secret_names)
        print(f"mcp config    {config.name} ({state}): {config.config}; secrets: {sealed}")
    for task in (await store.list_tasks(user_id=user.id)).items:
        print(f"task          {task}")
    for conversation in (await store.list_conversations(user_id=user.id)).items:
        when = f"{conversation.updated_at:%Y-%m-%d %H:%M:%S} UTC"
        print(f"conversation  {conversation}  (last activity {when})")
        for message in (
            await store.get_history(user_id=user.id, conversation_id=conversation.id)
        ).items:
            print(f"  {message.role:<9} {_summary(message)}")


async def _demo_conversation(user_id: Any) -> None:
    chat = await store.create_conversation(user_id=user_id, title="What's left this week?")
    await store.append_message(
        user_id=user_id,
        conversation_id=chat.id,
        role=Role.SYSTEM,
        content="You are Faceplate. Use the todo tools for the user's list.",
    )
    # One chat turn, stored as one unit: the question, the tool call, its result, the answer.
    turn: list[dict[str, Any]] = [
        {"role": Role.USER, "content": "What is still open on my list?"},
        {
            "role": Role.ASSISTANT,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "todo_list_tasks", "arguments": '{"completed": false}'},
                }
            ],
        },
        {
            "role": Role.TOOL,
            "tool_results": [
                {
                    "tool_call_id": "call_1",
                    "content": [{"type": "text", "text": "Renew the passport; Call the plumber"}],
                }
            ],
        },
        {"role": Role.ASSISTANT, "content": "Two things: renew the passport and call the plumber."},
    ]
    await store.append_turn(user_id=user_id, conversation_id=chat.id, messages=turn)


def _summary(message: Any) -> str:
    if message.tool_calls:
        calls = ", ".join(
            f"{c['function']['name']}({c['function']['arguments']})" for c in message.tool_calls
        )
        return f"calls {calls}"
    if message.tool_results:
        return f"result {message.tool_results}"
    return str(message.content)


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{raw} is not a positive, finite number of seconds")
    return value


def _batch(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number from 1 to 10000")
    return int(raw)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faceplate-db",
        description="Migrate and inspect the Faceplate database. Without --url or --url-file "
        "it uses FACEPLATE_MIGRATION_DATABASE_URL, then FACEPLATE_DATABASE_URL, or the "
        "embedded development server when neither is set.",
        epilog="exit codes: 0 ok, 1 failed, 2 usage, 3 migrations or old secrets pending, "
        "4 database unreachable, 5 models differ from the migrations",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    commands = {
        "demo": (_demo, "migrate, write a small realistic data set and print it"),
        "upgrade": (_upgrade, "apply pending migrations (safe to run from every replica)"),
        "status": (
            _status,
            "show applied and pending migrations (exit 3 if pending, 4 if unreachable)",
        ),
        "check": (
            _check,
            "fail (exit 5) when the models changed without a migration; no database needed",
        ),
        "downgrade": (_downgrade, "undo the migrations after VERSION"),
        "grants": (
            _grants,
            "print (and with --apply run) the grants of an application role with DML only",
        ),
        "purge": (
            _purge,
            "delete the conversations whose retention has passed (the trash, temporary ones, "
            "and with FACEPLATE_RETENTION_INACTIVE_DAYS inactive ones), in batches",
        ),
        "export": (
            _export,
            "write everything held for a user (by their subject) as a zip, to --output or stdout",
        ),
        "import": (
            _import,
            "import a ChatGPT, Claude, Open WebUI or faceplate export into a user's conversations",
        ),
        "rotate-secrets": (
            _rotate_secrets,
            "re-seal every MCP secret under the first FACEPLATE_SECRET_KEYS key "
            "(exit 3 while some remain under other keys)",
        ),
    }
    for name, (handler, help_text) in commands.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(handler=handler)
        if name != "check":
            source = command.add_mutually_exclusive_group()
            source.add_argument(
                "--url",
                help="postgres:// URL without a password (a password belongs in the "
                "environment or in --url-file)",
            )
            source.add_argument("--url-file", type=Path, help="a file holding the postgres:// URL")
        if name in ("upgrade", "status", "check", "downgrade"):
            command.add_argument(
                "--migrations",
                type=Path,
                help="folder of Aerich migrations (default: the package's)",
            )
        if name in ("upgrade", "downgrade"):
            command.add_argument(
                "--lock-timeout",
                type=_seconds,
                default=migrate.DEFAULT_LOCK_TIMEOUT,
                help="seconds to wait for another deploy's migration (default: %(default)g)",
            )
        if name == "downgrade":
            command.add_argument(
                "version", type=int, help="the version number to go back to, e.g. 0"
            )
            command.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        if name in ("rotate-secrets", "purge"):
            what = "configs re-sealed" if name == "rotate-secrets" else "conversations deleted"
            command.add_argument(
                "--batch",
                type=_batch,
                default=100,
                help=f"{what} per transaction (default: %(default)s)",
            )
        if name in ("export", "import"):
            command.add_argument(
                "--subject", required=True, help="the user's identity-provider subject"
            )
        if name == "export":
            command.add_argument("--output", type=Path, help="the zip to write (default: stdout)")
        if name == "import":
            command.add_argument(
                "files", nargs="+", type=Path, help="the export: a zip, or its JSON files"
            )
        if name == "grants":
            command.add_argument("--app-role", required=True, help="the application's role")
            command.add_argument(
                "--apply", action="store_true", help="run the grants as the migration role"
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `faceplate-db`; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.handler(args))
        return code
    except DatabaseUnavailable as exc:
        print(f"faceplate-db: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except FaceplateError as exc:
        print(f"faceplate-db: {exc}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
