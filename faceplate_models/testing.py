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
- `faceplate_db`: the same, with every table emptied before the test (the application's
  too), and the package initialised again if the previous test's application closed it.

An application's own models (`init_db(models=...)`) are registered when the pytest
configuration names them (`faceplate_app_models`, one module per line); their tables are
made by the application's Aerich migrations when `faceplate_app_migrations` names their
folder, else straight from the models.

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
    """Empty every table of the registered models, the application's too (Aerich's version
    table stays).

    Tortoise's own `truncate_all_models` issues unqualified names, which miss the schema.
    """
    from tortoise import Tortoise, connections

    tables = ", ".join(
        ".".join(f'"{part}"' for part in (model._meta.schema, model._meta.db_table) if part)
        for app in Tortoise.apps.values()
        for model in app.values()
        if model._meta.db_table != "aerich"
    )
    await connections.get("default").execute_script(f"TRUNCATE {tables} CASCADE")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "faceplate_app_models",
        "the application's Tortoise model modules, registered with init_db(models=...)",
        type="linelist",
        default=[],
    )
    parser.addini(
        "faceplate_app_migrations",
        "the folder of the application's Aerich migrations (holding app/); without it, its "
        "tables are made straight from its models",
        default="",
    )


def _app_models(config: pytest.Config) -> list[str]:
    return list(config.getini("faceplate_app_models"))


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


async def _session_database(
    server: DatabaseTarget, config: pytest.Config
) -> AsyncIterator[DatabaseTarget]:
    from faceplate_models.db import close_db, init_db

    models = _app_models(config)
    target = await create_database(server)
    session = {"FACEPLATE_DATABASE_URL": target.url()}
    if not os.environ.get("FACEPLATE_SECRET_KEYS"):  # a throwaway key seals the tests' secrets
        session["FACEPLATE_SECRET_KEYS"] = f"test:{base64.b64encode(os.urandom(32)).decode()}"
    before = {name: os.environ.get(name) for name in session}
    os.environ.update(session)
    try:
        await init_db(migrate=True, models=models)
        if models:
            await _application_tables(
                target, models, str(config.getini("faceplate_app_migrations"))
            )
        yield target
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        await close_db()
        await drop_database(server, target.database)


async def _application_tables(target: DatabaseTarget, models: list[str], folder: str) -> None:
    """The application's tables: by its own migrations when it has them, else its models."""
    from tortoise import Tortoise

    from faceplate_models.config import APPLICATION_APP, load_settings
    from faceplate_models.db import tortoise_config
    from faceplate_models.migrate import upgrade

    if not folder:
        await Tortoise.generate_schemas(safe=True)
        return
    config = tortoise_config(target, load_settings(), migrating=True, app_models=models)
    await upgrade(config, Path(folder), app=APPLICATION_APP)


async def _emptied(database: DatabaseTarget, config: pytest.Config) -> DatabaseTarget:
    from tortoise import Tortoise

    from faceplate_models.db import init_db

    if not Tortoise.is_inited():  # the previous test's application closed it
        await init_db(database.url(), models=_app_models(config))
    await truncate_tables()
    return database


if pytest_asyncio is not None:

    @pytest_asyncio.fixture(scope="session", loop_scope="session")
    async def faceplate_database(
        faceplate_server: DatabaseTarget, pytestconfig: pytest.Config
    ) -> AsyncIterator[DatabaseTarget]:
        """A database of its own for the session, built by the real migrations and initialised."""
        async for target in _session_database(faceplate_server, pytestconfig):
            yield target

    @pytest_asyncio.fixture(loop_scope="session")
    async def faceplate_db(
        faceplate_database: DatabaseTarget, pytestconfig: pytest.Config
    ) -> DatabaseTarget:
        """The session's database with every table emptied before the test."""
        return await _emptied(faceplate_database, pytestconfig)

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
