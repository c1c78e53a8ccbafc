"""MCP secrets at rest: sealed, bound to their row, rotated, imported from the files users have."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import faceplate_models as fm
from faceplate_models import secrets
from faceplate_models.cli import EXIT_OK
from faceplate_models.config import DatabaseTarget, Settings, load_settings, parse_secret_keys
from faceplate_models.errors import ConfigError, SecretError, ValidationError
from faceplate_models.testing import connect
from tests import commands

pytestmark = pytest.mark.usefixtures("faceplate_db")

TOKEN = "sk-live-7Hq2-do-not-leak"
BEARER = "Bearer eyJhbGciOi.not-for-your-eyes"


def key(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def with_keys(*keys: str) -> Settings:
    return dataclasses.replace(load_settings(), secret_keys=parse_secret_keys(",".join(keys)))


async def raw_table(target: DatabaseTarget, table: str = "mcp_configs") -> str:
    """Everything stored in a table (MCP configs by default), as PostgreSQL prints it."""
    conn = await connect(target)
    try:
        rows = await conn.fetch(f"SELECT c::text AS row FROM faceplate.{table} c")
    finally:
        await conn.close()
    return "\n".join(row["row"] for row in rows)


async def user(n: int = 0) -> fm.User:
    return await fm.get_or_create_user(subject_id=f"secrets|{n}", email=f"s{n}@example.com")


async def test_secret_values_are_stored_only_sealed(faceplate_db: DatabaseTarget) -> None:
    ada = await user()
    saved = await fm.save_mcp_config(
        user_id=ada.id,
        name="github",
        config={"url": "https://mcp.example/github", "headers": ["Authorization"]},
        secrets={"headers.Authorization": BEARER, "env.TOKEN": TOKEN},
    )
    assert saved.secret_names == ["env.TOKEN", "headers.Authorization"]
    stored = await raw_table(faceplate_db)
    for value in (TOKEN, BEARER, "7Hq2", "not-for-your-eyes"):
        assert value not in stored
    [listed] = await fm.list_mcp_configs(user_id=ada.id)
    assert listed.secret_names == ["env.TOKEN", "headers.Authorization"]
    assert listed.secrets is None
    revealed = await fm.get_mcp_config(user_id=ada.id, name="github", reveal_secrets=True)
    assert revealed.secrets == {"env.TOKEN": TOKEN, "headers.Authorization": BEARER}
    # A new config keeps its secrets; {} removes them.
    await fm.save_mcp_config(user_id=ada.id, name="github", config={"url": "https://x"})
    kept = await fm.get_mcp_config(user_id=ada.id, name="github", reveal_secrets=True)
    assert kept.secrets == revealed.secrets and kept.config == {"url": "https://x"}
    await fm.save_mcp_config(user_id=ada.id, name="github", config={}, secrets={})
    cleared = await fm.get_mcp_config(user_id=ada.id, name="github", reveal_secrets=True)
    assert cleared.secrets == {} and cleared.secret_names == [] and cleared.secret_box is None


async def test_every_write_has_a_fresh_nonce(faceplate_db: DatabaseTarget) -> None:
    ada = await user()
    boxes = set()
    for _ in range(5):
        saved = await fm.save_mcp_config(
            user_id=ada.id, name="same", config={}, secrets={"env.TOKEN": TOKEN}
        )
        boxes.add(saved.secret_box)
    assert len(boxes) == 5


async def test_a_box_moved_to_another_row_does_not_open(faceplate_db: DatabaseTarget) -> None:
    ada, bob = await user(1), await user(2)
    for owner in (ada, bob):
        await fm.save_mcp_config(user_id=owner.id, name="x", config={}, secrets={"k": "mine"})
    await fm.save_mcp_config(user_id=ada.id, name="y", config={}, secrets={"k": "other"})
    conn = await connect(faceplate_db)
    try:
        # Ada's box of "x" copied over Bob's "x", then over Ada's own "y".
        for target_user, target_name in ((bob.id, "x"), (ada.id, "y")):
            await conn.execute(
                """UPDATE faceplate.mcp_configs AS t SET secret_box = s.secret_box,
                       secret_key_id = s.secret_key_id, secret_names = s.secret_names
                   FROM faceplate.mcp_configs s
                   WHERE s.user_id = $1 AND s.name = 'x' AND t.user_id = $2 AND t.name = $3""",
                ada.id,
                target_user,
                target_name,
            )
    finally:
        await conn.close()
    for owner, name in ((bob, "x"), (ada, "y")):
        with pytest.raises(SecretError, match="copied from another row"):
            await fm.get_mcp_config(user_id=owner.id, name=name, reveal_secrets=True)
    intact = await fm.get_mcp_config(user_id=ada.id, name="x", reveal_secrets=True)
    assert intact.secrets == {"k": "mine"}


@pytest.mark.parametrize(
    "alteration",
    [
        "secret_box = substring(secret_box from 1 for 7)",
        "secret_box = substring(secret_box from 1 for 27)",
        "secret_box = ''::bytea",
        "secret_box = NULL",
        "secret_key_id = NULL",
        "secret_box = NULL, secret_key_id = NULL",
        "secret_names = '[]'",
        'secret_names = \'["k", "other"]\'',
        "secret_box = overlay(secret_box placing '\\x00'::bytea from 20 for 1)",
    ],
)
async def test_an_altered_row_is_a_secret_error(
    faceplate_db: DatabaseTarget, alteration: str
) -> None:
    """Whatever column of the sealed secrets is altered, reading them is a `SecretError`,
    never another exception and never an empty dict."""
    ada = await user(1)
    await fm.save_mcp_config(user_id=ada.id, name="x", config={}, secrets={"k": "mine"})
    conn = await connect(faceplate_db)
    try:
        await conn.execute(f"UPDATE faceplate.mcp_configs SET {alteration}")
    finally:
        await conn.close()
    with pytest.raises(SecretError, match="was altered"):
        await fm.get_mcp_config(user_id=ada.id, name="x", reveal_secrets=True)


async def test_a_rows_earlier_box_written_back_is_refused_or_does_not_open(
    faceplate_db: DatabaseTarget,
) -> None:
    """The token a user replaced stays replaced, whatever someone with write access to the
    table does with a copy of the earlier box."""
    ada = await user(1)
    first = await fm.save_mcp_config(user_id=ada.id, name="x", config={}, secrets={"t": "old"})
    second = await fm.save_mcp_config(user_id=ada.id, name="x", config={}, secrets={"t": "new"})
    assert (first.secret_version, second.secret_version) == (1, 2)
    conn = await connect(faceplate_db)
    try:
        # The earlier box with its earlier version: the database refuses it.
        with pytest.raises(asyncpg.SerializationError, match="not after version 2"):
            await conn.execute(
                "UPDATE faceplate.mcp_configs SET secret_box = $1, secret_version = 1",
                first.secret_box,
            )
        # The earlier box alone: taken as a box of the previous release (version 0) ...
        await conn.execute("UPDATE faceplate.mcp_configs SET secret_box = $1", first.secret_box)
    finally:
        await conn.close()
    # ... which it is not, so it does not open.
    with pytest.raises(SecretError, match="was altered"):
        await fm.get_mcp_config(user_id=ada.id, name="x", reveal_secrets=True)
    third = await fm.save_mcp_config(user_id=ada.id, name="x", config={}, secrets={"t": "3rd"})
    assert third.secret_version == 1  # after 0: the row's versions start again, upwards
    revealed = await fm.get_mcp_config(user_id=ada.id, name="x", reveal_secrets=True)
    assert revealed.secrets == {"t": "3rd"}


@pytest.mark.usefixtures("restore_db")
async def test_a_box_sealed_before_versions_opens_and_rotation_versions_it(
    faceplate_db: DatabaseTarget,
) -> None:
    ada = await user(1)
    await fm.save_mcp_config(user_id=ada.id, name="x", config={}, secrets={"t": "v"})
    names, key_id, box = secrets.seal(ada.id, "x", {"t": "legacy"}, 0)  # as the last release did
    conn = await connect(faceplate_db)
    try:
        await conn.execute(
            """UPDATE faceplate.mcp_configs SET secret_names = $1::jsonb, secret_key_id = $2,
                   secret_box = $3""",
            json.dumps(names),
            key_id,
            box,
        )
    finally:
        await conn.close()
    legacy = await fm.get_mcp_config(user_id=ada.id, name="x", reveal_secrets=True)
    assert (legacy.secret_version, legacy.secrets) == (0, {"t": "legacy"})
    rotation = await secrets.rotate(batch=10)
    assert (rotation.rotated, rotation.remaining) == (1, {})
    versioned = await fm.get_mcp_config(user_id=ada.id, name="x", reveal_secrets=True)
    assert (versioned.secret_version, versioned.secrets) == (1, {"t": "legacy"})


async def test_concurrent_saves_of_one_config_all_land_in_order_of_their_boxes() -> None:
    """Saves racing on one name: each seals for the version after the stored one; one that
    lost the race is refused by the database and runs again, so every save lands and the
    last box stored opens."""
    ada = await user(1)
    saves = [
        fm.save_mcp_config(user_id=ada.id, name="x", config={"i": i}, secrets={"t": str(i)})
        for i in range(10)
    ]
    saved = await asyncio.gather(*saves)
    assert sorted(c.secret_version for c in saved) == list(range(1, 11))
    last = max(saved, key=lambda c: c.secret_version)
    revealed = await fm.get_mcp_config(user_id=ada.id, name="x", reveal_secrets=True)
    assert revealed.secrets == {"t": str(last.config["i"])}


@pytest.mark.usefixtures("restore_db")
async def test_rotation_reseals_in_batches_beside_live_traffic(
    faceplate_db: DatabaseTarget,
) -> None:
    old, new = key("k1"), key("k2")
    await fm.init_db(faceplate_db.url(), settings=with_keys(old))
    owners = [await user(n) for n in range(5)]
    for owner in owners:
        for i in range(50):
            await fm.save_mcp_config(
                user_id=owner.id, name=f"c{i}", config={"i": i}, secrets={"t": f"{owner.id}-{i}"}
            )
    await fm.init_db(faceplate_db.url(), settings=with_keys(new, old))

    # A run cut short: whatever it had done stands, every box opens under one key or the other.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(secrets.rotate(batch=1), timeout=0.02)
    for owner in owners:
        for i in (0, 49):
            found = await fm.get_mcp_config(user_id=owner.id, name=f"c{i}", reveal_secrets=True)
            assert found.secrets == {"t": f"{owner.id}-{i}"}

    # A live request holds 30 of the rows; others are being written while the rotation runs.
    holder = await connect(faceplate_db)
    await holder.execute("BEGIN")
    await holder.execute(
        """SELECT 1 FROM faceplate.mcp_configs WHERE user_id = $1 AND name = ANY($2::text[])
           FOR UPDATE""",
        owners[1].id,
        [f"c{i}" for i in range(30)],
    )

    async def live_traffic() -> int:
        for i in range(25):
            await fm.save_mcp_config(
                user_id=owners[0].id, name=f"c{i}", config={"i": i}, secrets={"t": "changed"}
            )
        return 25

    try:
        rotation, writes = await asyncio.gather(secrets.rotate(batch=10), live_traffic())
    finally:
        await holder.execute("ROLLBACK")
        await holder.close()
    again = await secrets.rotate(batch=10)
    print(
        f"\nrotation beside {writes} live writes: {rotation.rotated} re-sealed, "
        f"{rotation.remaining} held back; the next run re-sealed {again.rotated}"
    )
    assert rotation.remaining == {"k1": 30}
    assert again.rotated == 30 and again.remaining == {}

    # The old key can go: everything opens with the new one alone.
    await fm.init_db(faceplate_db.url(), settings=with_keys(new))
    found = await fm.get_mcp_config(user_id=owners[0].id, name="c3", reveal_secrets=True)
    assert found.secrets == {"t": "changed"}
    found = await fm.get_mcp_config(user_id=owners[4].id, name="c49", reveal_secrets=True)
    assert found.secrets == {"t": f"{owners[4].id}-49"}


@pytest.mark.usefixtures("restore_db")
async def test_rotation_reseals_oauth_tokens_clients_and_sign_ins(
    faceplate_db: DatabaseTarget,
) -> None:
    old, new = key("o1"), key("o2")
    await fm.init_db(faceplate_db.url(), settings=with_keys(old))
    ada = await user()
    await fm.save_mcp_config(user_id=ada.id, name="x", config={"url": "https://x/mcp"})
    grant: dict[str, Any] = {"user_id": ada.id, "name": "x"}
    await fm.save_mcp_grant(**grant, generation=0, access_token=TOKEN, refresh_token="r")
    client: dict[str, Any] = {
        "server": "https://x/mcp",
        "redirect_uri": "https://app/cb",
        "metadata": {},
    }
    await fm.save_mcp_client(**client, client_info={"client_id": "c", "client_secret": BEARER})
    await fm.begin_mcp_sign_in(**grant, state="s", code_verifier="v" * 43)
    stored = await raw_table(faceplate_db, "oauth_grants") + await raw_table(
        faceplate_db, "oauth_clients"
    )
    assert TOKEN not in stored and BEARER not in stored  # sealed, never plain
    await fm.init_db(faceplate_db.url(), settings=with_keys(new, old))
    rotation = await secrets.rotate(batch=1)
    assert (rotation.rotated, rotation.remaining) == (3, {})
    await fm.init_db(faceplate_db.url(), settings=with_keys(new))  # the old key is gone
    assert (await fm.get_mcp_grant(**grant)).access_token == TOKEN  # type: ignore[union-attr]
    assert (await fm.get_mcp_client(**client)) == {"client_id": "c", "client_secret": BEARER}
    assert await fm.complete_mcp_sign_in(user_id=ada.id, state="s") == ("x", "v" * 43)


@pytest.mark.usefixtures("restore_db")
async def test_a_missing_key_is_named_and_nothing_is_deleted(
    faceplate_db: DatabaseTarget,
) -> None:
    await fm.init_db(faceplate_db.url(), settings=with_keys(key("gone")))
    ada = await user()
    await fm.save_mcp_config(user_id=ada.id, name="x", config={}, secrets={"k": "v"})
    await fm.init_db(faceplate_db.url(), settings=with_keys(key("current")))
    with pytest.raises(ConfigError, match="'gone'"):
        await fm.get_mcp_config(user_id=ada.id, name="x", reveal_secrets=True)
    with pytest.raises(ConfigError, match="'gone'"):
        await secrets.rotate()
    assert [c.name for c in await fm.list_mcp_configs(user_id=ada.id)] == ["x"]


@pytest.mark.usefixtures("restore_db")
async def test_without_keys_secrets_are_refused(faceplate_db: DatabaseTarget) -> None:
    await fm.init_db(faceplate_db.url(), settings=Settings())  # no keys, not the embedded server
    ada = await user()
    with pytest.raises(ConfigError, match="FACEPLATE_SECRET_KEYS is not set"):
        await fm.save_mcp_config(user_id=ada.id, name="x", config={}, secrets={"k": "v"})
    await fm.save_mcp_config(user_id=ada.id, name="x", config={})  # a config without secrets
    assert await fm.list_mcp_configs(user_id=ada.id)


def test_the_development_key_is_made_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    first = secrets.development_ring(tmp_path)
    second = secrets.development_ring(tmp_path)
    assert first == second and first.primary == "dev"
    assert (tmp_path / secrets.DEVELOPMENT_KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert sum("development key" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize(
    "keys",
    [
        "k1",
        "k1:",
        "k1:not*base64",
        f"k1:{base64.b64encode(b'short').decode()}",
        f"bad id:{base64.b64encode(os.urandom(32)).decode()}",
        f"{key('k1')},{key('k1')}",
    ],
)
def test_bad_keys_are_refused_without_printing_them(keys: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"FACEPLATE_SECRET_KEYS": keys})
    material = keys.split(":", 1)[1] if ":" in keys else ""
    assert "FACEPLATE_SECRET_KEYS" in str(caught.value)
    for part in material.split(","):
        if len(part) > 8:
            assert part not in str(caught.value)


def test_the_key_ring_never_shows_a_key() -> None:
    ring = secrets.KeyRing(parse_secret_keys(key("k1")))
    assert base64.b64encode(ring.keys[0][1]).decode() not in repr(ring)
    assert repr(load_settings({"FACEPLATE_SECRET_KEYS": key("k1")})).count("k1") == 0


# --- importing the files users already have ----------------------------------------------

CLAUDE_DESKTOP = {
    "mcpServers": {
        "filesystem": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/ada/Desktop"],
        },
        "github": {
            "command": "docker",
            "args": [
                "run",
                "-i",
                "--rm",
                "-e",
                "GITHUB_PERSONAL_ACCESS_TOKEN",
                "ghcr.io/github/github-mcp-server",
            ],
            "env": {"GITHUB_PERSONAL_ACCESS_TOKEN": TOKEN},
        },
    }
}
CURSOR = {
    "mcpServers": {
        "server-name": {"command": "npx", "args": ["-y", "mcp-server"], "env": {"API_KEY": TOKEN}},
        "remote": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": BEARER}},
    }
}
VS_CODE = {
    "inputs": [
        {
            "type": "promptString",
            "id": "perplexity-key",
            "description": "Perplexity API Key",
            "password": True,
        }
    ],
    "servers": {
        "Perplexity": {
            "type": "stdio",
            "command": "npx",
            "args": ["-y", "server-perplexity-ask"],
            "env": {"PERPLEXITY_API_KEY": "${input:perplexity-key}"},
        },
        "github": {
            "type": "http",
            "url": "https://api.githubcopilot.com/mcp/",
            "headers": {"Authorization": BEARER},
        },
    },
}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            CLAUDE_DESKTOP,
            {
                "filesystem": ("stdio", {}),
                "github": ("stdio", {"env.GITHUB_PERSONAL_ACCESS_TOKEN": TOKEN}),
            },
        ),
        (
            CURSOR,
            {
                "server-name": ("stdio", {"env.API_KEY": TOKEN}),
                "remote": ("http", {"headers.Authorization": BEARER}),
            },
        ),
        (
            VS_CODE,
            {
                # A prompt only VS Code fills in is not a secret value: left out, and said.
                "Perplexity": ("stdio", {}),
                "github": ("http", {"headers.Authorization": BEARER}),
            },
        ),
    ],
    ids=["claude-desktop", "cursor", "vs-code"],
)
async def test_importing_mcp_json_moves_values_into_secrets(
    faceplate_db: DatabaseTarget, document: dict[str, Any], expected: dict[str, Any]
) -> None:
    ada = await user()
    imported = await fm.import_mcp_servers(user_id=ada.id, document=json.dumps(document))
    assert sorted(c.name for c in imported) == sorted(expected)
    for name, (transport, secret_values) in expected.items():
        found = await fm.get_mcp_config(user_id=ada.id, name=name, reveal_secrets=True)
        assert found.config["transport"] == transport
        assert found.secrets == secret_values
        assert "env" not in found.config or all(isinstance(n, str) for n in found.config["env"])
    stored = await raw_table(faceplate_db)
    assert TOKEN not in stored and BEARER not in stored


async def test_the_import_refuses_rather_than_guesses() -> None:
    ada = await user()
    imported = await fm.import_mcp_servers(
        user_id=ada.id,
        document={
            "mcpServers": {
                # Windsurf names a URL server's address serverUrl.
                "windsurf": {"serverUrl": "https://mcp.example.com/sse"},
                "cli": {
                    "command": "srv",
                    "args": ["--api-key=" + TOKEN, "--token", TOKEN, "--verbose"],
                    "envFile": "${workspaceFolder}/.env",
                    "env": {"KEY": "${input:key}", "MODE": "fast"},
                },
            }
        },
    )
    reports = {config.name: config.left_out for config in imported}
    assert reports["windsurf"] == []
    assert reports["cli"] is not None and len(reports["cli"]) == 2
    assert any("envFile" in why for why in reports["cli"])
    assert any("env.KEY" in why and "input" in why for why in reports["cli"])
    windsurf = await fm.get_mcp_config(user_id=ada.id, name="windsurf", reveal_secrets=True)
    assert windsurf.config == {"url": "https://mcp.example.com/sse", "transport": "http"}
    cli = await fm.get_mcp_config(user_id=ada.id, name="cli", reveal_secrets=True)
    assert TOKEN not in json.dumps(cli.config)
    assert cli.secrets == {"args.0": TOKEN, "args.2": TOKEN, "env.MODE": "fast"}
    launched = fm.launch_parameters(cli)
    assert launched.args == ["--api-key=" + TOKEN, "--token", TOKEN, "--verbose"]  # type: ignore[union-attr]
    assert launched.env == {"MODE": "fast"}  # type: ignore[union-attr]
    stored = await fm.list_mcp_configs(user_id=ada.id, reveal_secrets=True)
    assert [c.secrets for c in stored] == [cli.secrets, {}]
    for bad, key_named in (
        ({"q": {"url": "https://x.example.com/mcp?api_key=abc"}}, "'url'"),
        ({"s": {"args": ["x"]}}, "'command'"),
        ({"s": {"command": "x", "args": "x"}}, "'args'"),
    ):
        with pytest.raises(ValidationError, match=key_named) as caught:
            await fm.import_mcp_servers(user_id=ada.id, document={"mcpServers": bad})
        assert repr(next(iter(bad))) in str(caught.value)


async def test_a_bad_document_imports_nothing() -> None:
    ada = await user()
    bad = {"mcpServers": {"ok": {"command": "x"}, "broken": {"command": "y", "env": {"A": 1}}}}
    documents: list[Any] = ["{not json", '["a list"]', {"servers": "nope"}, {"other": {}}, bad]
    for document in documents:
        with pytest.raises(ValidationError) as caught:
            await fm.import_mcp_servers(user_id=ada.id, document=document)
        assert caught.value.field == "document"
    assert await fm.list_mcp_configs(user_id=ada.id) == []


# --- the operator's command --------------------------------------------------------------


def test_rotate_secrets_from_the_command_line(faceplate_db: DatabaseTarget) -> None:
    env = {
        "FACEPLATE_DATABASE_URL": faceplate_db.url(),
        "FACEPLATE_SECRET_KEYS": f"{key('fresh')},{os.environ['FACEPLATE_SECRET_KEYS']}",
    }
    run = commands.faceplate_db_cli("rotate-secrets", "--batch", "5", env=env)
    assert run.returncode == EXIT_OK, run.stdout + run.stderr
    assert "under key 'fresh'" in run.stdout and "can be removed" in run.stdout
