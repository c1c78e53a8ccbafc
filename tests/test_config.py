from __future__ import annotations

from pathlib import Path

import pytest

from faceplate_models.config import (
    SCHEMA,
    Secret,
    Settings,
    load_settings,
    parse_database_url,
)
from faceplate_models.db import tortoise_config
from faceplate_models.errors import ConfigError
from tests.commands import modules_loaded

PASSWORD = "s3cr3t-Pa55word"


def test_defaults_match_the_design() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert (settings.pool_min, settings.pool_max) == (5, 20)
    assert settings.pool_timeout == 30
    assert settings.connect_timeout == 5
    assert settings.database_url is None
    assert settings.data_dir == Path(".faceplate")


def test_environment_overrides() -> None:
    settings = load_settings(
        {
            "FACEPLATE_DATABASE_URL": "postgres://u@h/d",
            "FACEPLATE_DB_POOL_MIN": "1",
            "FACEPLATE_DB_POOL_MAX": "3",
            "FACEPLATE_DB_POOL_TIMEOUT": "2.5",
            "FACEPLATE_DB_CONNECT_TIMEOUT": "1",
            "FACEPLATE_DB_POOL_PER_CONVERSATION": "3",
            "FACEPLATE_DB_POOL_PER_USER": "4",
            "FACEPLATE_DATA_DIR": "/srv/pg",
            "FACEPLATE_TEST_DATABASE_URL": "postgres://t@h/d",
        }
    )
    assert settings.database_url == "postgres://u@h/d"
    assert (settings.pool_min, settings.pool_max, settings.pool_timeout) == (1, 3, 2.5)
    assert settings.connect_timeout == 1
    assert (settings.pool_per_conversation, settings.pool_per_user) == (3, 4)
    assert settings.data_dir == Path("/srv/pg")
    assert settings.test_database_url == "postgres://t@h/d"


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"FACEPLATE_DB_POOL_MAX": "twenty"}, "FACEPLATE_DB_POOL_MAX"),
        ({"FACEPLATE_DB_POOL_MIN": "-1"}, "FACEPLATE_DB_POOL_MIN"),
        ({"FACEPLATE_DB_POOL_MAX": "0"}, "FACEPLATE_DB_POOL_MAX"),
        ({"FACEPLATE_DB_POOL_PER_CONVERSATION": "0"}, "FACEPLATE_DB_POOL_PER_CONVERSATION"),
        ({"FACEPLATE_DB_POOL_PER_USER": "-1"}, "FACEPLATE_DB_POOL_PER_USER"),
        ({"FACEPLATE_DB_POOL_PER_USER": "half"}, "FACEPLATE_DB_POOL_PER_USER"),
        ({"FACEPLATE_DB_POOL_MIN": "9", "FACEPLATE_DB_POOL_MAX": "4"}, "FACEPLATE_DB_POOL_MIN"),
        ({"FACEPLATE_DB_POOL_TIMEOUT": "0"}, "FACEPLATE_DB_POOL_TIMEOUT"),
        ({"FACEPLATE_DB_CONNECT_TIMEOUT": "soon"}, "FACEPLATE_DB_CONNECT_TIMEOUT"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        load_settings(env)


def test_url_parts() -> None:
    target = parse_database_url(f"postgres://app:{PASSWORD}@db.internal:6432/chat?sslmode=require")
    assert (target.host, target.port, target.database, target.user) == (
        "db.internal",
        6432,
        "chat",
        "app",
    )
    assert target.password == PASSWORD
    assert target.ssl == "require"
    assert PASSWORD not in repr(target)
    assert PASSWORD not in target.describe()
    assert "db.internal" in target.describe() and "6432" in target.describe()


def test_url_with_socket_directory_and_encoded_password() -> None:
    target = parse_database_url("postgresql://postgres:p%40ss%2Fw@/postgres?host=/tmp/sock")
    assert (target.host, target.port, target.password) == ("/tmp/sock", 5432, "p@ss/w")
    assert parse_database_url(target.url()) == target
    tcp = parse_database_url(f"postgres://app:{PASSWORD}@h:7/d?sslmode=disable")
    assert parse_database_url(tcp.url()) == tcp


def test_a_url_may_name_every_server_of_a_failover_pair() -> None:
    """libpq's multi-host form, as asyncpg takes it: tried in order, and the one that accepts
    writes kept (`target_session_attrs=read-write`), so a promoted standby is followed."""
    target = parse_database_url(
        f"postgres://app:{PASSWORD}@db1:5432,db2:5433,[::1]/chat?target_session_attrs=read-write"
    )
    assert target.hosts == (("db1", 5432), ("db2", 5433), ("::1", 5432))
    assert target.target_session_attrs == "read-write"
    assert parse_database_url(target.url()) == target
    assert "db2 port 5433" in target.describe() and PASSWORD not in target.describe()
    credentials = tortoise_config(target, Settings())["connections"]["default"]["credentials"]
    assert credentials["target_session_attrs"] == "read-write"
    assert credentials["faceplate"].hosts == target.hosts


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"mysql://u:{PASSWORD}@h/d", "must start with postgres://"),
        (f"postgres://u:{PASSWORD}@h:port/d", "port that is not a number"),
        (f"postgres://u:{PASSWORD}@/d", "names no host"),
        (f"postgres://u:{PASSWORD}@h/", "names no database"),
        (f"postgres://:{PASSWORD}@h/d", "names no user"),
        (f"postgres://u:{PASSWORD}@h/d?sslmode=sometimes", "sslmode"),
        (f"postgres://u:{PASSWORD}@h/d?ssl=false", "unsupported query parameters: ssl"),
        (f"postgres://u:{PASSWORD}@/d?host=/s&port=x", "port that is not a number"),
        (f"postgres://u:{PASSWORD}@h1,:5/d", "server without a host"),
        (f"postgres://u:{PASSWORD}@h1,h2:x/d", "port that is not a number"),
        (f"postgres://u:{PASSWORD}@h1,h2/d?target_session_attrs=master", "target_session_attrs"),
    ],
)
def test_bad_urls_are_explained_without_the_password(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        parse_database_url(url)
    assert "FACEPLATE_DATABASE_URL" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_tortoise_config_sets_schema_pool_and_timeout() -> None:
    target = parse_database_url(f"postgres://app:{PASSWORD}@h:5432/chat?sslmode=verify-full")
    config = tortoise_config(target, Settings())
    credentials = config["connections"]["default"]["credentials"]
    assert credentials["schema"] == SCHEMA
    assert (credentials["minsize"], credentials["maxsize"]) == (5, 20)
    assert credentials["timeout"] == 5
    assert credentials["ssl"] == "verify-full"
    assert isinstance(credentials["password"], Secret)
    assert credentials["password"]() == PASSWORD
    assert PASSWORD not in str(config)
    # A serving process loads the package's models only; one that migrates, Aerich's too.
    assert config["apps"]["models"]["models"] == ["faceplate_models.models"]
    migrating = tortoise_config(target, Settings(), migrating=True)
    assert migrating["apps"]["models"]["models"] == ["faceplate_models.models", "aerich.models"]
    assert config["use_tz"] is True


def test_importing_the_package_loads_only_what_serving_uses() -> None:
    """What a web worker imports: no Aerich, and none of what Aerich pulls in (dictdiffer,
    and through it numpy, 60 ms of a cold start), until something migrates; and no reader
    or cipher before a call needs it (cryptography for secrets, ijson and zipfile for a
    user's data in and out)."""
    loaded = modules_loaded("import faceplate_models\nfrom faceplate_models.store import messages")
    unwanted = {"aerich", "dictdiffer", "numpy", "cryptography", "ijson", "zipfile", "uuid6"}
    assert {m for m in loaded if m.split(".")[0] in unwanted} == set()


def test_the_test_database_prefix_is_a_plain_identifier() -> None:
    assert load_settings({"FACEPLATE_TEST_DATABASE_PREFIX": "myapp_ci"}).test_database_prefix == (
        "myapp_ci"
    )
    for bad in ("My-App", "1abc", "a" * 51, 'x"; DROP'):
        with pytest.raises(ConfigError, match="FACEPLATE_TEST_DATABASE_PREFIX"):
            load_settings({"FACEPLATE_TEST_DATABASE_PREFIX": bad})


def test_retention_defaults_overrides_and_refusals() -> None:
    default = load_settings({}).retention
    assert (default.trash_days, default.temporary_days, default.inactive_days) == (30, 30, None)
    chosen = load_settings(
        {
            "FACEPLATE_RETENTION_TRASH_DAYS": "7",
            "FACEPLATE_RETENTION_TEMPORARY_DAYS": "1",
            "FACEPLATE_RETENTION_INACTIVE_DAYS": "365",
        }
    ).retention
    assert (chosen.trash_days, chosen.temporary_days, chosen.inactive_days) == (7, 1, 365)
    for variable, value in (
        ("FACEPLATE_RETENTION_TRASH_DAYS", "0"),
        ("FACEPLATE_RETENTION_TEMPORARY_DAYS", "-3"),
        ("FACEPLATE_RETENTION_INACTIVE_DAYS", "0"),
        ("FACEPLATE_RETENTION_INACTIVE_DAYS", "36501"),
        ("FACEPLATE_RETENTION_TRASH_DAYS", "a week"),
    ):
        with pytest.raises(ConfigError, match=variable):
            load_settings({variable: value})
    limits = load_settings({"FACEPLATE_MAX_FOLDERS": "5", "FACEPLATE_MAX_SHARES": "9"}).limits
    assert (limits.folders, limits.tags, limits.shares) == (5, 1_000, 9)
