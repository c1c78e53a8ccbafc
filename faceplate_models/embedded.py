"""The embedded development PostgreSQL (the `pgserver` package), used when no URL is set."""

from __future__ import annotations

import logging
import re
import subprocess
import warnings
from pathlib import Path
from typing import Any

from faceplate_models.config import DatabaseTarget, parse_database_url
from faceplate_models.errors import ConfigError, DatabaseUnavailable

log = logging.getLogger(__name__)

DATABASE = "faceplate"


def _pgserver() -> Any:
    try:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset, as on most servers and CI.
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError:
        raise ConfigError(
            "FACEPLATE_DATABASE_URL is not set and the embedded development PostgreSQL is "
            "not installed. Set FACEPLATE_DATABASE_URL=postgres://user:password@host:port/dbname, "
            "or install the embedded server (pip install 'faceplate-models[testing]')."
        ) from None
    return pgserver


def start_server(data_dir: Path, *, temporary: bool = False) -> Any:
    """Start, or reuse if already running, a PostgreSQL 16 server keeping its data in `data_dir`.

    A temporary server is deleted with its data when the last process using it exits;
    otherwise it stops then and its data stays for the next run.
    """
    pgserver = _pgserver()
    data_dir = Path(data_dir).absolute()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        return pgserver.get_server(data_dir, cleanup_mode="delete" if temporary else "stop")
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseUnavailable(
            f"the embedded development PostgreSQL in {data_dir} did not start ({exc}); "
            f"its log is {data_dir / 'log'}"
        ) from exc


def server_target(server: Any, database: str = "postgres") -> DatabaseTarget:
    """The connection target of a running embedded server (a Unix socket, no password)."""
    return parse_database_url(server.get_uri(database), variable="the embedded server's URI")


def ensure_database(server: Any, database: str) -> None:
    """Create `database` on the embedded server unless it exists."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", database):
        raise ConfigError(f"embedded database name {database!r} is not a plain identifier")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}";')


def embedded_target(data_dir: Path) -> DatabaseTarget:
    """Start (or reuse) the development server in `data_dir` and return its `faceplate` database."""
    server = start_server(data_dir)
    ensure_database(server, DATABASE)
    log.warning(
        "FACEPLATE_DATABASE_URL is unset: using the embedded development PostgreSQL 16 in %s/",
        data_dir,
    )
    return server_target(server, DATABASE)
