"""The pytest plugin as a user's own test suite meets it: an application's lifespan calls a
plain `init_db()` and closes the pool; the guide's example runs as a test of its own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tortoise import Tortoise, connections

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget
from tests import commands


async def test_a_plain_init_db_in_the_session_connects_to_the_test_database(
    faceplate_db: DatabaseTarget,
) -> None:
    await fm.close_db()
    await fm.init_db()  # as an application's lifespan does, with no URL
    rows = await connections.get("default").execute_query_dict("SELECT current_database() AS name")
    assert rows == [{"name": faceplate_db.database}]


async def test_an_application_closes_the_pool(faceplate_db: DatabaseTarget) -> None:
    await fm.close_db()
    assert not Tortoise.is_inited()


async def test_the_next_test_still_has_its_database(faceplate_db: DatabaseTarget) -> None:
    user = await fm.get_or_create_user(subject_id="after", email="after@example.com")
    assert (await fm.get_user(user_id=user.id)).email == "after@example.com"


def guide_example() -> str:
    guide = (commands.ROOT / "docs" / "guide.md").read_text()
    section = guide[guide.index("## Testing an application") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "the guide lost its example"
    return match.group(1)


def users_suite(
    tmp_path: Path, server: DatabaseTarget, tests: str, ini: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `tests` as a user's CI runs their suite: pytest in their project, with the plugin
    configured by their pyproject.toml (`ini` added) and their server in the environment."""
    (tmp_path / "test_app.py").write_text(tests)
    (tmp_path / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]\n"
        'asyncio_mode = "auto"\n'
        'asyncio_default_fixture_loop_scope = "session"\n'
        'asyncio_default_test_loop_scope = "session"\n' + ini
    )
    return commands.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"],
        env={"FACEPLATE_TEST_DATABASE_URL": server.url(), "PYTHONPATH": str(tmp_path), **env},
        cwd=tmp_path,
        timeout=300,
    )


def test_the_guide_example_runs_as_a_users_test_suite(
    faceplate_server: DatabaseTarget, tmp_path: Path
) -> None:
    run = users_suite(tmp_path, faceplate_server, guide_example())
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"\b3 passed\b", run.stdout), run.stdout


def test_the_plugin_stays_out_of_the_way_without_pytest_asyncio(tmp_path: Path) -> None:
    # A fresh environment with the package and pytest, as an application that installed
    # faceplate-models without its `testing` extra has.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "pytest", str(commands.ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    probe = [str(python), "-c", "import pytest_asyncio"]
    assert subprocess.run(probe, capture_output=True, check=False).returncode != 0

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_plain.py").write_text("def test_ok():\n    assert 1\n")
    (suite / "test_wants_db.py").write_text("def test_db(faceplate_db):\n    pass\n")
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=suite,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # The plugin loaded (the fixture exists), the plain test passed, and the one that asked
    # for a database failed in one line saying what to install.
    assert (
        "faceplate_models"
        in subprocess.run(
            [str(python), "-m", "pytest", "--trace-config", "--co", "-q", "test_plain.py"],
            cwd=suite,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        ).stdout
    )
    assert re.search(r"\b1 passed\b.*\b1 error\b", run.stdout), run.stdout + run.stderr
    assert "pip install 'faceplate-models[testing]'" in run.stdout
    assert "Traceback" not in run.stdout


APPLICATION_TESTS = """
import faceplate_models as fm
from notes_models import Note


async def test_a_note_beside_a_user(faceplate_db):
    user = await fm.get_or_create_user(subject_id="ada", email="ada@example.com")
    await Note.create(user_id=user.id, text="Renew the passport")
    assert await Note.filter(user_id=user.id).count() == 1


async def test_the_next_test_starts_empty(faceplate_db):
    assert await Note.all().count() == 0
"""


def test_the_plugin_registers_an_applications_own_models(
    faceplate_server: DatabaseTarget, tmp_path: Path
) -> None:
    (tmp_path / "notes_models.py").write_text(
        (commands.ROOT / "tests" / "app_models.py").read_text()
    )
    run = users_suite(
        tmp_path,
        faceplate_server,
        APPLICATION_TESTS,
        'faceplate_app_models = ["notes_models"]\n',
        FACEPLATE_TEST_DATABASE_PREFIX="myapp_ci",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"\b2 passed\b", run.stdout), run.stdout
