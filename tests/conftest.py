"""Shared fixtures; the database ones come from the `faceplate_models.testing` plugin."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget
from faceplate_models.embedded import server_target, start_server
from faceplate_models.testing import create_database, drop_database
from tests import faults


@pytest.fixture
async def restore_db(faceplate_database: DatabaseTarget) -> AsyncIterator[DatabaseTarget]:
    """Give the session its connection back after a test that re-initialises the package."""
    yield faceplate_database
    await fm.init_db(faceplate_database.url())


@pytest.fixture(scope="session")
def embedded_server() -> Any:
    """An embedded server of the tests' own, whatever FACEPLATE_TEST_DATABASE_URL says,
    because the fault tests stop and start it."""
    return start_server(Path(tempfile.mkdtemp(prefix="faceplate-faults-")), temporary=True)


@pytest.fixture
async def restartable_db(
    embedded_server: Any, restore_db: DatabaseTarget
) -> AsyncIterator[DatabaseTarget]:
    """A migrated database on `embedded_server`, initialised for the test."""
    server = server_target(embedded_server)
    target = await create_database(server)
    try:
        await fm.init_db(target.url(), migrate=True)
        yield target
    finally:
        await fm.close_db()
        await faults.start_server(embedded_server)  # in case the test left it stopped
        await drop_database(server, target.database)
