"""Configuration: the one module that reads the environment.

Everything else receives a `Settings` (or a `DatabaseTarget`) and never looks at
`os.environ` itself, so a test or a caller can build either explicitly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from faceplate_models.errors import ConfigError

SCHEMA = "faceplate"
APP = "models"
MODEL_MODULES = ["faceplate_models.models", "aerich.models"]
APPLICATION_NAME = "faceplate-models"
#: The Tortoise engine: Tortoise's asyncpg client with bounded pool waits and one retry.
ENGINE = "faceplate_models.engine"

DEFAULT_POOL_MIN = 5
DEFAULT_POOL_MAX = 20
DEFAULT_POOL_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_DATA_DIR = ".faceplate"

_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}


class Secret:
    """A password handed to asyncpg as a callable, so that no config dump or log shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __call__(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class DatabaseTarget:
    """Where to connect; `repr` and `describe` never show the password."""

    host: str
    port: int
    database: str
    user: str
    password: str | None = field(default=None, repr=False)
    ssl: str | None = None

    def describe(self) -> str:
        """Name the server for a human: user, host, port and database, never the password."""
        where = f"socket {self.host}" if self.host.startswith("/") else self.host
        return f'database "{self.database}" on {where} port {self.port} as user "{self.user}"'

    def with_database(self, database: str) -> DatabaseTarget:
        """The same server and credentials, another database."""
        return DatabaseTarget(self.host, self.port, database, self.user, self.password, self.ssl)

    def url(self) -> str:
        """This target as a postgres:// URL (it contains the password: keep it out of logs)."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        query = []
        netloc_host = self.host
        if self.host.startswith("/"):
            query.append("host=" + quote(self.host, safe="/"))
            netloc_host = ""
        if self.ssl:
            query.append(f"sslmode={self.ssl}")
        suffix = ("?" + "&".join(query)) if query else ""
        port = f":{self.port}" if netloc_host else ""
        return f"postgres://{auth}@{netloc_host}{port}/{quote(self.database, safe='')}{suffix}"


@dataclass(frozen=True)
class Settings:
    """The package's configuration, read once from the environment by `load_settings`."""

    database_url: str | None = field(default=None, repr=False)
    pool_min: int = DEFAULT_POOL_MIN
    pool_max: int = DEFAULT_POOL_MAX
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    test_database_url: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.pool_min < 0:
            raise ConfigError(f"FACEPLATE_DB_POOL_MIN must be 0 or more, not {self.pool_min}")
        if self.pool_max < 1:
            raise ConfigError(f"FACEPLATE_DB_POOL_MAX must be 1 or more, not {self.pool_max}")
        if self.pool_min > self.pool_max:
            raise ConfigError(
                f"FACEPLATE_DB_POOL_MIN ({self.pool_min}) is larger than "
                f"FACEPLATE_DB_POOL_MAX ({self.pool_max})"
            )
        for name, value in (
            ("FACEPLATE_DB_POOL_TIMEOUT", self.pool_timeout),
            ("FACEPLATE_DB_CONNECT_TIMEOUT", self.connect_timeout),
        ):
            if not value > 0:
                raise ConfigError(f"{name} must be a positive number of seconds, not {value}")


def _number(env: Mapping[str, str], name: str, default: float, kind: type[Any]) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        expected = "a whole number" if kind is int else "a number of seconds"
        raise ConfigError(f"{name} must be {expected}, not {raw!r}") from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the FACEPLATE_* variables; `env` defaults to the process environment."""
    env = os.environ if env is None else env
    return Settings(
        database_url=env.get("FACEPLATE_DATABASE_URL") or None,
        pool_min=_number(env, "FACEPLATE_DB_POOL_MIN", DEFAULT_POOL_MIN, int),
        pool_max=_number(env, "FACEPLATE_DB_POOL_MAX", DEFAULT_POOL_MAX, int),
        pool_timeout=_number(env, "FACEPLATE_DB_POOL_TIMEOUT", DEFAULT_POOL_TIMEOUT, float),
        connect_timeout=_number(
            env, "FACEPLATE_DB_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT, float
        ),
        data_dir=Path(env.get("FACEPLATE_DATA_DIR") or DEFAULT_DATA_DIR),
        test_database_url=env.get("FACEPLATE_TEST_DATABASE_URL") or None,
    )


def parse_database_url(url: str, *, variable: str = "FACEPLATE_DATABASE_URL") -> DatabaseTarget:
    """Parse `postgres://user:password@host:port/dbname` (a `?host=` socket directory is allowed).

    Error messages name the variable and the part that is wrong, never the URL itself,
    which holds the password.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigError(
            f"{variable} must start with postgres:// or postgresql://, "
            f"not {parts.scheme + '://' if parts.scheme else 'no scheme'}"
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - {"host", "port", "sslmode", "user"})
    if unknown:
        raise ConfigError(f"{variable} has unsupported query parameters: {', '.join(unknown)}")
    try:
        url_port = parts.port
    except ValueError:
        raise ConfigError(f"{variable} has a port that is not a number") from None
    host = unquote(parts.hostname or "") or query.get("host", "")
    if not host:
        raise ConfigError(f"{variable} names no host (postgres://user:password@HOST:port/dbname)")
    raw_port = query.get("port")
    if raw_port is not None and not raw_port.isdigit():
        raise ConfigError(f"{variable} has a port that is not a number")
    port = url_port or (int(raw_port) if raw_port else 5432)
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database:
        raise ConfigError(
            f"{variable} names no database (postgres://user:password@host:port/DBNAME)"
        )
    user = unquote(parts.username or "") or query.get("user", "")
    if not user:
        raise ConfigError(f"{variable} names no user (postgres://USER:password@host:port/dbname)")
    ssl = query.get("sslmode")
    if ssl is not None and ssl not in _SSL_MODES:
        raise ConfigError(f"{variable} has sslmode={ssl!r}; use one of {sorted(_SSL_MODES)}")
    password = unquote(parts.password) if parts.password else None
    return DatabaseTarget(host, port, database, user, password, ssl)


def tortoise_config(target: DatabaseTarget, settings: Settings) -> dict[str, Any]:
    """The dict that `Tortoise.init` and Aerich read.

    It is built as a dict rather than a URL because Tortoise casts URL query values with
    `bool()` (`?ssl=false` would turn TLS on) and because `schema` must reach every
    connection, Aerich's included: later migrations use bare table names.
    """
    credentials: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        # Tortoise's debug log of the config keeps the first third of a string password.
        "password": Secret(target.password) if target.password else None,
        "database": target.database,
        "schema": SCHEMA,
        "minsize": settings.pool_min,
        "maxsize": settings.pool_max,
        "timeout": settings.connect_timeout,
        "pool_timeout": settings.pool_timeout,
        "application_name": APPLICATION_NAME,
    }
    if target.ssl is not None:
        credentials["ssl"] = target.ssl
    return {
        "connections": {"default": {"engine": ENGINE, "credentials": credentials}},
        "apps": {APP: {"models": list(MODEL_MODULES), "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }
