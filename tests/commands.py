"""Commands run as an operator or a user's CI runs them: in a child process, whose only
FACEPLATE_ settings are the ones the test gives."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the test session's FACEPLATE_ settings, plus `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FACEPLATE_")}
    return clean | dict(env or {})


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    stdin: str = "",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` to its end, its output captured as text, in `environment(env)`."""
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        input=stdin,
        cwd=cwd,
        env=environment(env),
        timeout=timeout,
        check=False,
    )


def faceplate_db_cli(
    *args: str,
    url: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
    stdin: str = "",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run `faceplate-db args`; `url` goes in FACEPLATE_DATABASE_URL, as a deploy passes a
    password, and `env` adds to an environment without the test session's settings."""
    settings = dict(env or {}) | ({"FACEPLATE_DATABASE_URL": url} if url is not None else {})
    return run(
        [sys.executable, "-m", "faceplate_models.cli", *args],
        env=settings,
        cwd=cwd,
        stdin=stdin,
        timeout=timeout,
    )


def modules_loaded(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    done = run([sys.executable, "-c", f"{code}\nimport sys\nprint(*sys.modules)"])
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())
