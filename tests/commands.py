"""The package's command line run as an operator runs it: in a child process, whose only
FACEPLATE_ settings are the ones the test gives."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FACEPLATE_")}
    environment.update(env or {})
    if url is not None:
        environment["FACEPLATE_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "faceplate_models.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=cwd,
        env=environment,
        timeout=timeout,
        check=False,
    )
