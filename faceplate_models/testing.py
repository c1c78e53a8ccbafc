"""Pytest fixtures on a real PostgreSQL, built with the real migrations.

Registered as a pytest plugin (entry point `pytest11`), so any project that installs
faceplate-models can request them; `pip install 'faceplate-models[testing]'` brings what
they need (pytest-asyncio and the embedded server). Without pytest-asyncio the plugin loads
and stays out of the way: only a test that requests one of its database fixtures fails,
with one line saying what to install. Async fixtures share the session's event loop: set
`asyncio_default_fixture_loop_scope = "session"` and `asyncio_default_test_loop_scope =
"session"` in the pytest configuration.

- `faceplate_server`: the server, FACEPLATE_TEST_DATABASE_URL's or a throwaway embedded one.
- `faceplate_database`: a database created on it for this session (named
  FACEPLATE_TEST_DATABASE_PREFIX, then `_` and 12 hex digits), migrated, initialised with
  `init_db`, and dropped at the end. For the session, FACEPLATE_DATABASE_URL names it, so an
  application's own `init_db()` (in its lifespan, say) connects there too, and, unless set,
  FACEPLATE_SECRET_KEYS holds a throwaway key.
- `faceplate_db`: the same, with every `faceplate` table emptied before the test, and the
  package initialised again if the previous test's application closed it.

The package itself is imported when a fixture runs, not when pytest loads the plugin: a
test suite that never asks for a database pays nothing for it.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

try:
    import pytest_asyncio
except ImportError:  # the `testing` extra is not installed
    pytest_asyncio = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import asyncpg

    from faceplate_models.config import DatabaseTarget

_LABEL = re.compile(r"[a-z0-9_]{0,12}")


async def connect(target: DatabaseTarget) -> asyncpg.Connection:
    """A plain asyncpg connection to `target`, outside the package's pool."""
    import asyncpg

    ssl: Any = target.ssl
    return await asyncpg.connect(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        database=target.database,
        ssl=ssl,
    )


async def create_database(server: DatabaseTarget, label: str = "") -> DatabaseTarget:
    """Create an empty database with a unique name on `server` and return its target.

    The name is FACEPLATE_TEST_DATABASE_PREFIX, `label` (up to 12 lower-case letters,
    digits or underscores) and 12 random hex digits, joined by underscores.
    """
    from faceplate_models.config import load_settings

    if not _LABEL.fullmatch(label):
        raise ValueError(f"label must be up to 12 of a-z, 0-9 and _, not {label!r}")
    parts = [load_settings().test_database_prefix, label, uuid.uuid4().hex[:12]]
    name = "_".join(part for part in parts if part)
    admin = await connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return server.with_database(name)


async def drop_database(server: DatabaseTarget, database: str) -> None:
    """Drop `database`, disconnecting whoever still uses it."""
    admin = await connect(server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


async def truncate_tables() -> None:
    """Empty every table of the package's models (Aerich's version table stays).

    Tortoise's own `truncate_all_models` issues unqualified names, which miss the schema.
    """
    from tortoise import connections

    from faceplate_models.config import SCHEMA
    from faceplate_models.models import MODELS

    tables = ", ".join(f'"{SCHEMA}"."{model._meta.db_table}"' for model in MODELS)
    await connections.get("default").execute_script(f"TRUNCATE {tables} CASCADE")


@pytest.fixture(scope="session")
def faceplate_server() -> Iterator[DatabaseTarget]:
    """The PostgreSQL server for the session: FACEPLATE_TEST_DATABASE_URL's, else embedded."""
    from faceplate_models.config import load_settings, parse_database_url

    url = load_settings().test_database_url
    if url:
        yield parse_database_url(url, variable="FACEPLATE_TEST_DATABASE_URL")
        return
    from faceplate_models.embedded import server_target, start_server

    # pgserver stops a temporary server and deletes its data when the process exits.
    server = start_server(Path(tempfile.mkdtemp(prefix="faceplate-pg-")), temporary=True)
    yield server_target(server)


async def _session_database(server: DatabaseTarget) -> AsyncIterator[DatabaseTarget]:
    from faceplate_models.db import close_db, init_db

    target = await create_database(server)
    session = {"FACEPLATE_DATABASE_URL": target.url()}
    if not os.environ.get("FACEPLATE_SECRET_KEYS"):  # a throwaway key seals the tests' secrets
        session["FACEPLATE_SECRET_KEYS"] = f"test:{base64.b64encode(os.urandom(32)).decode()}"
    before = {name: os.environ.get(name) for name in session}
    os.environ.update(session)
    try:
        await init_db(migrate=True)
        yield target
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        await close_db()
        await drop_database(server, target.database)


async def _emptied(database: DatabaseTarget) -> DatabaseTarget:
    from tortoise import Tortoise

    from faceplate_models.db import init_db

    if not Tortoise.is_inited():  # the previous test's application closed it
        await init_db(database.url())
    await truncate_tables()
    return database


if pytest_asyncio is not None:

    @pytest_asyncio.fixture(scope="session", loop_scope="session")
    async def faceplate_database(faceplate_server: DatabaseTarget) -> AsyncIterator[DatabaseTarget]:
        """A database of its own for the session, built by the real migrations and initialised."""
        async for target in _session_database(faceplate_server):
            yield target

    @pytest_asyncio.fixture(loop_scope="session")
    async def faceplate_db(faceplate_database: DatabaseTarget) -> DatabaseTarget:
        """The session's database with every `faceplate` table emptied before the test."""
        return await _emptied(faceplate_database)

else:

    def _needs_pytest_asyncio() -> NoReturn:
        pytest.fail(
            "faceplate-models' database fixtures need pytest-asyncio: "
            "pip install 'faceplate-models[testing]'",
            pytrace=False,
        )

    @pytest.fixture(scope="session")
    def faceplate_database() -> NoReturn:
        """Unavailable: pytest-asyncio is not installed."""
        _needs_pytest_asyncio()

    @pytest.fixture
    def faceplate_db() -> NoReturn:
        """Unavailable: pytest-asyncio is not installed."""
        _needs_pytest_asyncio()
