"""Configuration: the one module that reads the environment.

Everything else receives a `Settings` (or a `DatabaseTarget`) and never looks at
`os.environ` itself, so a test or a caller can build either explicitly.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from faceplate_models.errors import ConfigError

SCHEMA = "faceplate"
APP = "models"
#: The Tortoise app of an application's own models (`init_db(models=[...])`): foreign keys to
#: this package's models name them `models.User`, and its migrations are Aerich's for `app`.
APPLICATION_APP = "app"
#: The models a serving process loads; one that migrates loads Aerich's too (`migrate`).
MODEL_MODULES = ["faceplate_models.models"]
APPLICATION_NAME = "faceplate-models"

DEFAULT_POOL_MIN = 5
DEFAULT_POOL_MAX = 20
DEFAULT_POOL_TIMEOUT = 30.0
# Pooled connections one conversation's calls may hold (the one at work and the next in
# line), and one user's: the rest wait without a connection (engine.gates).
DEFAULT_POOL_PER_CONVERSATION = 2
DEFAULT_POOL_PER_USER = 10
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_STATEMENT_TIMEOUT = 10.0
DEFAULT_LOCK_TIMEOUT = 3.0
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT = 60.0
DEFAULT_LONG_STATEMENT_TIMEOUT = 120.0
DEFAULT_REPLICA_MAX_LAG = 5.0
DEFAULT_REPLICA_WAIT = 0.5
DEFAULT_DATA_DIR = ".faceplate"
DEFAULT_TEST_DATABASE_PREFIX = "faceplate_test"


@dataclass(frozen=True)
class Limits:
    """How much one user may keep: generous enough that no person reaches them, tight
    enough that a runaway client or a hostile tenant cannot fill the database."""

    conversations: int = 100_000
    tasks: int = 100_000
    mcp_configs: int = 200
    messages_per_conversation: int = 100_000
    folders: int = 1_000
    tags: int = 1_000
    shares: int = 10_000

    #: The variable of each limit.
    VARIABLES: ClassVar[dict[str, str]] = {
        "conversations": "FACEPLATE_MAX_CONVERSATIONS",
        "tasks": "FACEPLATE_MAX_TASKS",
        "mcp_configs": "FACEPLATE_MAX_MCP_CONFIGS",
        "messages_per_conversation": "FACEPLATE_MAX_MESSAGES_PER_CONVERSATION",
        "folders": "FACEPLATE_MAX_FOLDERS",
        "tags": "FACEPLATE_MAX_TAGS",
        "shares": "FACEPLATE_MAX_SHARES",
    }

    def __post_init__(self) -> None:
        for name, variable in self.VARIABLES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{variable} must be a whole number of 1 or more, not {value}")


@dataclass(frozen=True)
class Retention:
    """After how many days `purge` deletes what has expired: the trash, temporary
    conversations (counted from their creation) and, when set, conversations without
    activity (None: kept however old; pinned ones are always kept)."""

    trash_days: int = 30
    temporary_days: int = 30
    inactive_days: int | None = None

    #: The variable of each period.
    VARIABLES: ClassVar[dict[str, str]] = {
        "trash_days": "FACEPLATE_RETENTION_TRASH_DAYS",
        "temporary_days": "FACEPLATE_RETENTION_TEMPORARY_DAYS",
        "inactive_days": "FACEPLATE_RETENTION_INACTIVE_DAYS",
    }
    #: A hundred years: longer is "never", which for inactivity is the default (unset).
    MAX_DAYS: ClassVar[int] = 36_500

    def __post_init__(self) -> None:
        for name, variable in self.VARIABLES.items():
            value = getattr(self, name)
            if value is None and name == "inactive_days":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{variable} must be a whole number of days, not {value!r}")
            if not 1 <= value <= self.MAX_DAYS:
                raise ConfigError(
                    f"{variable} must be 1 to {self.MAX_DAYS} days, not {value}"
                    + (" (leave it unset to keep conversations however old)" * (value < 1))
                )


@dataclass(frozen=True)
class Streaming:
    """How a live reply (`start_reply`) is written and followed: its text is stored at least
    every `flush_ms` or `flush_bytes` of text, whichever comes first; a writer silent for
    `timeout_s` (no text, no beat) is interrupted; a follower behind a transaction pooler,
    where LISTEN cannot work, reads again every `poll_ms`."""

    flush_ms: int = 250
    flush_bytes: int = 1024
    timeout_s: int = 30
    poll_ms: int = 500

    VARIABLES: ClassVar[dict[str, str]] = {
        "flush_ms": "FACEPLATE_REPLY_FLUSH_MS",
        "flush_bytes": "FACEPLATE_REPLY_FLUSH_BYTES",
        "timeout_s": "FACEPLATE_REPLY_TIMEOUT",
        "poll_ms": "FACEPLATE_REPLY_POLL_MS",
    }
    #: The range of each, so that a typo cannot make a writer flush per character or never.
    RANGES: ClassVar[dict[str, tuple[int, int]]] = {
        "flush_ms": (10, 60_000),
        "flush_bytes": (1, 1_000_000),
        "timeout_s": (2, 3_600),
        "poll_ms": (10, 60_000),
    }

    def __post_init__(self) -> None:
        for name, variable in self.VARIABLES.items():
            value = getattr(self, name)
            low, high = self.RANGES[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(
                    f"{variable} must be a whole number from {low} to {high}, not {value!r}"
                )


# A test database is named PREFIX_ and 12 hex digits: within PostgreSQL's 63 bytes, and a
# plain identifier that needs no quoting anywhere.
_TEST_DATABASE_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,49}")

#: A direct connection: the session's settings travel as startup parameters.
SESSION = "session"
#: A session pooler (PgBouncer pool_mode=session): a session of its own per connection, but
#: no startup parameters beyond the basics, so each new connection SETs its settings.
SESSION_POOLER = "session_pooler"
#: A transaction pooler (PgBouncer pool_mode=transaction, Neon -pooler, Supabase 6543, RDS
#: Proxy): no startup parameters beyond the basics, no statement outliving a transaction.
TRANSACTION = "transaction"
POOL_MODES = (SESSION, SESSION_POOLER, TRANSACTION)

_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
_URL_PARAMETERS = {
    "host",
    "port",
    "user",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "target_session_attrs",
}
#: libpq's (and asyncpg's) names of the server a multi-host URL wants.
SESSION_ATTRS = ("any", "read-write", "read-only", "primary", "standby", "prefer-standby")


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
    """Where to connect; `repr` and `describe` never show the password.

    `ssl` is libpq's sslmode; `sslrootcert` (a CA file, or `system` for the operating
    system's trust store), `sslcert` and `sslkey` are file paths, as libpq names them.
    A URL may name several servers (`host1:5432,host2:5432`): `alternates` are those after
    the first, tried in order, and `target_session_attrs` says which one to keep
    (`read-write` to follow a failover to the promoted standby).
    """

    host: str
    port: int
    database: str
    user: str
    password: str | None = field(default=None, repr=False)
    ssl: str | None = None
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    alternates: tuple[tuple[str, int], ...] = ()
    target_session_attrs: str | None = None

    @property
    def hosts(self) -> tuple[tuple[str, int], ...]:
        """Every server the URL names, in order: (host, port)."""
        return ((self.host, self.port), *self.alternates)

    def describe(self) -> str:
        """Name the server for a human: user, host, port and database, never the password."""
        where = f"socket {self.host}" if self.host.startswith("/") else self.host
        others = "".join(f" or {host} port {port}" for host, port in self.alternates)
        return (
            f'database "{self.database}" on {where} port {self.port}{others} as user "{self.user}"'
        )

    def with_database(self, database: str) -> DatabaseTarget:
        """The same server and credentials, another database."""
        return replace(self, database=database)

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
        for name in ("ssl", "sslrootcert", "sslcert", "sslkey", "target_session_attrs"):
            value = getattr(self, name)
            if value:
                query.append(f"{'sslmode' if name == 'ssl' else name}={quote(value, safe='/')}")
        suffix = ("?" + "&".join(query)) if query else ""
        port = f":{self.port}" if netloc_host else ""
        others = "".join(
            f",[{host}]:{port}" if ":" in host else f",{host}:{port}"
            for host, port in self.alternates
        )
        path = quote(self.database, safe="")
        return f"postgres://{auth}@{netloc_host}{port}{others}/{path}{suffix}"


@dataclass(frozen=True)
class Settings:
    """The package's configuration, read once from the environment by `load_settings`."""

    database_url: str | None = field(default=None, repr=False)
    migration_database_url: str | None = field(default=None, repr=False)
    replica_urls: tuple[str, ...] = field(default=(), repr=False)
    replica_max_lag: float = DEFAULT_REPLICA_MAX_LAG
    replica_wait: float = DEFAULT_REPLICA_WAIT
    pool_mode: str = SESSION
    pool_min: int = DEFAULT_POOL_MIN
    pool_max: int = DEFAULT_POOL_MAX
    pool_timeout: float = DEFAULT_POOL_TIMEOUT
    pool_per_conversation: int = DEFAULT_POOL_PER_CONVERSATION
    pool_per_user: int = DEFAULT_POOL_PER_USER
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    idle_in_transaction_timeout: float = DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT
    long_statement_timeout: float = DEFAULT_LONG_STATEMENT_TIMEOUT
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    test_database_url: str | None = field(default=None, repr=False)
    test_database_prefix: str = DEFAULT_TEST_DATABASE_PREFIX
    limits: Limits = field(default_factory=Limits)
    retention: Retention = field(default_factory=Retention)
    streaming: Streaming = field(default_factory=Streaming)
    #: FACEPLATE_SECRET_KEYS, parsed: (id, 32-byte key) pairs, the first sealing.
    secret_keys: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.pool_mode not in POOL_MODES:
            raise ConfigError(
                f"FACEPLATE_DB_POOL_MODE must be one of {', '.join(POOL_MODES)}, "
                f"not {self.pool_mode!r}"
            )
        if self.pool_min < 0:
            raise ConfigError(f"FACEPLATE_DB_POOL_MIN must be 0 or more, not {self.pool_min}")
        if self.pool_max < 1:
            raise ConfigError(f"FACEPLATE_DB_POOL_MAX must be 1 or more, not {self.pool_max}")
        for name, count in (
            ("FACEPLATE_DB_POOL_PER_CONVERSATION", self.pool_per_conversation),
            ("FACEPLATE_DB_POOL_PER_USER", self.pool_per_user),
        ):
            if count < 1:
                raise ConfigError(f"{name} must be 1 or more, not {count}")
        if self.pool_min > self.pool_max:
            raise ConfigError(
                f"FACEPLATE_DB_POOL_MIN ({self.pool_min}) is larger than "
                f"FACEPLATE_DB_POOL_MAX ({self.pool_max})"
            )
        for name, value in (
            ("FACEPLATE_DB_POOL_TIMEOUT", self.pool_timeout),
            ("FACEPLATE_DB_CONNECT_TIMEOUT", self.connect_timeout),
            ("FACEPLATE_DB_STATEMENT_TIMEOUT", self.statement_timeout),
            ("FACEPLATE_DB_LOCK_TIMEOUT", self.lock_timeout),
            ("FACEPLATE_DB_IDLE_IN_TRANSACTION_TIMEOUT", self.idle_in_transaction_timeout),
            ("FACEPLATE_DB_LONG_STATEMENT_TIMEOUT", self.long_statement_timeout),
            ("FACEPLATE_REPLICA_MAX_LAG", self.replica_max_lag),
            ("FACEPLATE_REPLICA_WAIT", self.replica_wait),
        ):
            # Not `value <= 0`: NaN compares false to everything, and inf never ends.
            if not 0 < value < math.inf:
                raise ConfigError(
                    f"{name} must be a positive, finite number of seconds, not {value}"
                )
        if not _TEST_DATABASE_PREFIX.fullmatch(self.test_database_prefix):
            raise ConfigError(
                "FACEPLATE_TEST_DATABASE_PREFIX must be 1 to 50 lower-case letters, digits or "
                f"underscores, not starting with a digit; not {self.test_database_prefix!r}"
            )
        if self.long_statement_timeout < self.statement_timeout:
            raise ConfigError(
                "FACEPLATE_DB_LONG_STATEMENT_TIMEOUT must not be shorter than "
                "FACEPLATE_DB_STATEMENT_TIMEOUT"
            )


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

    def seconds(name: str, default: float) -> float:
        value: float = _number(env, name, default, float)
        return value

    return Settings(
        database_url=env.get("FACEPLATE_DATABASE_URL") or None,
        migration_database_url=env.get("FACEPLATE_MIGRATION_DATABASE_URL") or None,
        replica_urls=tuple(
            url
            for url in re.split(r"[,\s]+", env.get("FACEPLATE_DATABASE_REPLICA_URLS", ""))
            if url
        ),
        replica_max_lag=seconds("FACEPLATE_REPLICA_MAX_LAG", DEFAULT_REPLICA_MAX_LAG),
        replica_wait=seconds("FACEPLATE_REPLICA_WAIT", DEFAULT_REPLICA_WAIT),
        pool_mode=(env.get("FACEPLATE_DB_POOL_MODE") or SESSION).strip().lower(),
        pool_min=_number(env, "FACEPLATE_DB_POOL_MIN", DEFAULT_POOL_MIN, int),
        pool_max=_number(env, "FACEPLATE_DB_POOL_MAX", DEFAULT_POOL_MAX, int),
        pool_timeout=seconds("FACEPLATE_DB_POOL_TIMEOUT", DEFAULT_POOL_TIMEOUT),
        pool_per_conversation=_number(
            env, "FACEPLATE_DB_POOL_PER_CONVERSATION", DEFAULT_POOL_PER_CONVERSATION, int
        ),
        pool_per_user=_number(env, "FACEPLATE_DB_POOL_PER_USER", DEFAULT_POOL_PER_USER, int),
        limits=Limits(
            **{
                name: _number(env, variable, getattr(Limits, name), int)
                for name, variable in Limits.VARIABLES.items()
            }
        ),
        retention=Retention(
            **{
                name: _number(env, variable, getattr(Retention, name), int)
                for name, variable in Retention.VARIABLES.items()
            }
        ),
        streaming=Streaming(
            **{
                name: _number(env, variable, getattr(Streaming, name), int)
                for name, variable in Streaming.VARIABLES.items()
            }
        ),
        connect_timeout=seconds("FACEPLATE_DB_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
        statement_timeout=seconds("FACEPLATE_DB_STATEMENT_TIMEOUT", DEFAULT_STATEMENT_TIMEOUT),
        lock_timeout=seconds("FACEPLATE_DB_LOCK_TIMEOUT", DEFAULT_LOCK_TIMEOUT),
        idle_in_transaction_timeout=seconds(
            "FACEPLATE_DB_IDLE_IN_TRANSACTION_TIMEOUT", DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT
        ),
        long_statement_timeout=seconds(
            "FACEPLATE_DB_LONG_STATEMENT_TIMEOUT", DEFAULT_LONG_STATEMENT_TIMEOUT
        ),
        data_dir=Path(env.get("FACEPLATE_DATA_DIR") or DEFAULT_DATA_DIR),
        test_database_url=env.get("FACEPLATE_TEST_DATABASE_URL") or None,
        test_database_prefix=(
            env.get("FACEPLATE_TEST_DATABASE_PREFIX") or DEFAULT_TEST_DATABASE_PREFIX
        ).strip(),
        secret_keys=parse_secret_keys(env.get("FACEPLATE_SECRET_KEYS", "")),
    )


_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


def parse_secret_keys(
    text: str, *, variable: str = "FACEPLATE_SECRET_KEYS"
) -> tuple[tuple[str, bytes], ...]:
    """Parse `id:base64-of-32-bytes` keys, separated by commas or whitespace.

    Errors name the entry and its id, never a key's text.
    """
    keys: list[tuple[str, bytes]] = []
    for number, entry in enumerate(re.split(r"[,\s]+", text.strip()) if text.strip() else [], 1):
        key_id, colon, encoded = entry.partition(":")
        if not colon or not _KEY_ID.fullmatch(key_id):
            raise ConfigError(
                f"{variable}: entry {number} is not `id:base64-key` with an id of letters, "
                "digits, '.', '_' or '-' (at most 32)"
            )
        try:
            key = base64.b64decode(
                encoded.replace("-", "+").replace("_", "/") + "=" * (-len(encoded) % 4),
                validate=True,
            )
        except (binascii.Error, ValueError):
            raise ConfigError(f"{variable}: key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise ConfigError(
                f"{variable}: key {key_id!r} is {len(key)} bytes; AES-256 takes exactly 32"
            )
        if any(existing == key_id for existing, _ in keys):
            raise ConfigError(f"{variable}: key id {key_id!r} appears twice")
        keys.append((key_id, key))
    return tuple(keys)


def parse_database_url(url: str, *, variable: str = "FACEPLATE_DATABASE_URL") -> DatabaseTarget:
    """Parse `postgres://user:password@host:port/dbname` (a `?host=` socket directory is allowed).

    The query may also carry libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`.
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
    unknown = sorted(set(query) - _URL_PARAMETERS)
    if unknown:
        raise ConfigError(f"{variable} has unsupported query parameters: {', '.join(unknown)}")
    attrs = query.get("target_session_attrs")
    if attrs is not None and attrs not in SESSION_ATTRS:
        raise ConfigError(
            f"{variable} has target_session_attrs={attrs!r}; use one of {', '.join(SESSION_ATTRS)}"
        )
    # Several servers (libpq's `host1:port1,host2:port2`): the first stands in the URL that
    # urlsplit reads, the others are read here.
    userinfo, at, servers = parts.netloc.rpartition("@")
    first, *rest = servers.split(",")
    if rest:
        parts = parts._replace(netloc=userinfo + at + first)
    alternates = tuple(_server(variable, server) for server in rest)
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
    mode = query.get("sslmode")
    if mode is not None and mode not in _SSL_MODES:
        raise ConfigError(f"{variable} has sslmode={mode!r}; use one of {sorted(_SSL_MODES)}")
    files = {name: query.get(name) or None for name in ("sslrootcert", "sslcert", "sslkey")}
    if (files["sslcert"] is None) != (files["sslkey"] is None):
        raise ConfigError(f"{variable} must name both sslcert and sslkey, or neither")
    if any(files.values()) and mode not in ("require", "verify-ca", "verify-full"):
        raise ConfigError(
            f"{variable} names certificate files but sslmode is {mode or 'unset'}; "
            "use sslmode=verify-full (or verify-ca, or require)"
        )
    password = unquote(parts.password) if parts.password else None
    return DatabaseTarget(
        host,
        port,
        database,
        user,
        password,
        mode,
        **files,
        alternates=alternates,
        target_session_attrs=attrs,
    )


def _server(variable: str, server: str) -> tuple[str, int]:
    """One `host:port` (or `[v6 address]:port`) after the first of a multi-host URL."""
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = server.partition(":")
    if not host:
        raise ConfigError(f"{variable} names a server without a host after a comma")
    port = port or "5432"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{variable} has a port that is not a number")
    return unquote(host), int(port)


def ssl_context(target: DatabaseTarget) -> ssl.SSLContext | str | None:
    """What asyncpg's `ssl` argument takes for `target`, with libpq's meaning of each part.

    Without certificate files the sslmode goes to asyncpg as it is (it then reads
    PGSSLROOTCERT or ~/.postgresql/root.crt as libpq does). With them, a context is built
    here: verify-full checks the chain and the host name, verify-ca the chain only, and
    require with a root certificate behaves as verify-ca, as in libpq. TLS is never
    downgraded: a server without it, or with a certificate that fails, is refused.
    """
    if target.sslrootcert is None and target.sslcert is None:
        return target.ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if target.sslrootcert == "system":
            context.load_default_certs()
        elif target.sslrootcert is not None:
            context.load_verify_locations(cafile=target.sslrootcert)
        if target.sslcert is not None:
            context.load_cert_chain(target.sslcert, target.sslkey)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"the TLS files of {target.describe()} cannot be used ({exc}); check sslrootcert, "
            "sslcert and sslkey"
        ) from None
    context.check_hostname = target.ssl == "verify-full"
    verifying = target.ssl != "require" or target.sslrootcert is not None
    context.verify_mode = ssl.CERT_REQUIRED if verifying else ssl.CERT_NONE
    return context


REPLICA = "replica_{}"  # the Tortoise connection names of the replicas, from 1
