"""MCP configs: how to start or reach each of a user's MCP servers, by a name unique to them.

A config says how to start or reach the server; its secrets (env values, header values,
tokens) are sealed apart (`faceplate_models.secrets`), and listings show their names only.
By convention, and as `import_mcp_servers` stores them, a secret named `env.NAME` is the
value of environment variable NAME (the config's `env` lists the names) and one named
`headers.NAME` the value of HTTP header NAME (the config's `headers` lists them).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from functools import partial
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from tortoise.transactions import in_transaction

from faceplate_models import secrets as sealed
from faceplate_models.engine import Connection
from faceplate_models.errors import ValidationError
from faceplate_models.ids import uuid7
from faceplate_models.models import MCP_NAME_MAX, MCPConfig
from faceplate_models.store._rows import (
    below_limit,
    builder,
    columns,
    execute,
    fetch,
    fetchrow,
    insert_owned,
    missing,
    now,
)
from faceplate_models.validation import (
    MAX_JSON_BYTES,
    MAX_JSON_DEPTH,
    as_uuid,
    flag,
    json_object,
    json_text,
    parsed,
    required_text,
    string_map,
)

#: Most secrets per config, and their sizes: names, and values (a JWT can be a few KB).
MAX_SECRETS: Final = 64
MAX_SECRET_NAME: Final = 128
MAX_SECRET_VALUE: Final = 16_384
#: Most servers one imported document may hold.
MAX_IMPORTED_SERVERS: Final = 100

_COLUMNS = columns(MCPConfig)
_mcp_configs = builder(MCPConfig, _COLUMNS)
# $7 is the secrets' names (JSON) when secrets were given, NULL to keep the stored ones;
# $8, $9 and $10 their key, box and the box's version. $11 is the limit of configs: a new
# name is stored only below it, a known one always.
SAVE_SQL = f"""INSERT INTO faceplate.mcp_configs ({_COLUMNS})
    SELECT $2, $1, $3::varchar, $4::jsonb, $5, COALESCE($7::jsonb, '[]'), $8, $9, $10,
        $6::timestamptz, $6
    WHERE {below_limit("mcp_configs", "$11")} OR EXISTS (
        SELECT 1 FROM faceplate.mcp_configs WHERE user_id = $1 AND name = $3::varchar)
    ON CONFLICT (user_id, name) DO UPDATE SET config = EXCLUDED.config,
        enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at,
        secret_names = CASE WHEN $7::jsonb IS NULL THEN mcp_configs.secret_names
                            ELSE EXCLUDED.secret_names END,
        secret_key_id = CASE WHEN $7::jsonb IS NULL THEN mcp_configs.secret_key_id
                             ELSE EXCLUDED.secret_key_id END,
        secret_box = CASE WHEN $7::jsonb IS NULL THEN mcp_configs.secret_box
                          ELSE EXCLUDED.secret_box END,
        secret_version = CASE WHEN $7::jsonb IS NULL THEN mcp_configs.secret_version
                              ELSE EXCLUDED.secret_version END
    RETURNING {_COLUMNS}"""
# The stored box's version, locked: the next box is sealed for the one after it.
_VERSION_SQL: Final = """SELECT secret_version FROM faceplate.mcp_configs
    WHERE user_id = $1 AND name = $2 FOR UPDATE"""


async def save_mcp_config(
    *,
    user_id: uuid.UUID | str,
    name: str,
    config: dict[str, Any],
    enabled: bool = True,
    secrets: Mapping[str, str] | None = None,
) -> MCPConfig:
    """Create the user's MCP config of this name, or replace its config and enabled flag.

    `secrets` are sealed, never stored in plain: None keeps the stored ones, `{}`
    removes them.
    """
    uid = as_uuid("user_id", user_id)
    label = required_text("name", name, MCP_NAME_MAX)
    body = json_object("config", config)
    on = flag("enabled", enabled)
    values = None
    if secrets is not None:
        values = string_map("secrets", secrets, MAX_SECRETS, MAX_SECRET_NAME, MAX_SECRET_VALUE)

    async def sealing(conn: Connection) -> tuple[object, ...]:
        """The secrets' names, key, box and version: sealed for the version after the stored
        box's, read under the row's lock (a save racing this one is refused, and retried)."""
        if values is None:
            return None, None, None, 0
        version = (await conn.fetchval(_VERSION_SQL, uid, label) or 0) + 1
        if not values:
            return "[]", None, None, version
        sorted_names, key_id, box = sealed.seal(uid, label, values, version)
        return json.dumps(sorted_names), key_id, box, version

    row = await insert_owned(
        "mcp_configs",
        _COLUMNS,
        SAVE_SQL,
        uid,
        uuid7(),
        label,
        body,
        on,
        now(),
        limit="mcp_configs",
        then=sealing,
    )
    return _mcp_configs(row)


async def get_mcp_config(
    *, user_id: uuid.UUID | str, name: str, reveal_secrets: bool = False
) -> MCPConfig:
    """The user's MCP config of this name; with `reveal_secrets`, its `secrets` opened,
    for the code that starts the MCP client."""
    uid = as_uuid("user_id", user_id)
    label = required_text("name", name, MCP_NAME_MAX)
    reveal = flag("reveal_secrets", reveal_secrets)
    row = await fetchrow(
        f"SELECT {_COLUMNS} FROM faceplate.mcp_configs WHERE user_id = $1 AND name = $2",
        uid,
        label,
        user=uid,
    )
    if row is None:
        raise missing("MCP config", repr(label))
    found = _mcp_configs(row)
    if reveal:
        _reveal(uid, found)
    return found


def _reveal(uid: uuid.UUID, found: MCPConfig) -> None:
    found.secrets = sealed.open_box(
        uid,
        found.name,
        found.secret_names,
        found.secret_key_id,
        found.secret_box,
        found.secret_version,
    )


async def list_mcp_configs(
    *, user_id: uuid.UUID | str, enabled: bool | None = None, reveal_secrets: bool = False
) -> list[MCPConfig]:
    """The user's MCP configs by name (secrets by name only; with `reveal_secrets`, opened,
    from the same read), optionally only the enabled (or disabled) ones. Not a page: a user
    has a handful of MCP servers, all of which a backend needs at once to offer their
    tools."""
    uid = as_uuid("user_id", user_id)
    state = flag("enabled", enabled, optional=True)
    reveal = flag("reveal_secrets", reveal_secrets)
    rows = await fetch(
        f"""SELECT {_COLUMNS} FROM faceplate.mcp_configs
            WHERE user_id = $1 AND ($2::boolean IS NULL OR enabled = $2) ORDER BY name""",
        uid,
        state,
        user=uid,
    )
    found = _mcp_configs.many(rows)
    if reveal:
        for config in found:
            _reveal(uid, config)
    return found


async def delete_mcp_config(*, user_id: uuid.UUID | str, name: str) -> None:
    """Delete the user's MCP config of this name."""
    uid = as_uuid("user_id", user_id)
    label = required_text("name", name, MCP_NAME_MAX)
    status = await execute(
        "DELETE FROM faceplate.mcp_configs WHERE user_id = $1 AND name = $2", uid, label, user=uid
    )
    if status == "DELETE 0":
        raise missing("MCP config", repr(label))


# --- importing the files users already have ----------------------------------------------

# Python's parser raises RecursionError on deep nesting, before any depth check could run.
_UNREADABLE: Final = (ValueError, RecursionError)


def _document(document: object) -> Mapping[str, Any]:
    if isinstance(document, str | bytes):
        if len(document) > MAX_JSON_BYTES:
            raise ValidationError("document", f"is larger than {MAX_JSON_BYTES} bytes")
        problem = f"is not JSON, or is nested deeper than {MAX_JSON_DEPTH} levels"
        document = parsed("document", partial(json.loads, document), _UNREADABLE, problem)
    if not isinstance(document, Mapping):
        raise ValidationError("document", "must be a JSON object (an mcp.json document)")
    json_text("document", dict(document))  # its size and depth, before anything walks it
    servers = document.get("mcpServers", document.get("servers"))
    if not isinstance(servers, Mapping):
        raise ValidationError(
            "document",
            "has no servers: Claude Desktop and Cursor keep them under mcpServers, "
            "VS Code under servers",
        )
    if len(servers) > MAX_IMPORTED_SERVERS:
        raise ValidationError("document", f"has more than {MAX_IMPORTED_SERVERS} servers")
    return servers


# A value that only the user's editor can fill in: VS Code's prompt and the env file it reads.
_PLACEHOLDER: Final = re.compile(r"\$\{input:[^}]*\}")
# What looks like a credential in a command line or a URL's query.
_SECRET_WORDS: Final = re.compile(r"(token|key|secret|password|passwd|auth|bearer)", re.I)


def _secret_args(name: str, args: list[Any], found: dict[str, str]) -> list[Any]:
    """`args` with `--token=VALUE`/`--token VALUE` values moved into secrets (`args.N`)."""
    kept: list[Any] = []
    for number, arg in enumerate(args):
        if not isinstance(arg, str):
            raise ValidationError("document", f"server {name!r} key 'args' holds a non-string")
        flag_name, equals, value = arg.partition("=")
        previous = args[number - 1] if number else ""
        if equals and flag_name.startswith("-") and _SECRET_WORDS.search(flag_name) and value:
            found[f"args.{number}"] = value
            kept.append(f"{flag_name}=${{args.{number}}}")
        elif (
            isinstance(previous, str)
            and previous.startswith("-")
            and "=" not in previous
            and (_SECRET_WORDS.search(previous) and not arg.startswith("-"))
        ):
            found[f"args.{number}"] = arg
            kept.append(f"${{args.{number}}}")
        else:
            kept.append(arg)
    return kept


def _split(name: str, entry: object) -> tuple[dict[str, Any], dict[str, str], bool, list[str]]:
    """One server's entry: (its config, its secrets, whether it is enabled, what was left out
    and why)."""
    if not isinstance(entry, Mapping):
        raise ValidationError("document", f"server {name!r} is not an object")
    left_out: list[str] = []
    config = {
        key: value for key, value in entry.items() if key not in ("env", "headers", "envFile")
    }
    if "envFile" in entry:
        left_out.append("envFile: a file on the user's machine, not readable here")
    if "serverUrl" in config:  # Windsurf's name for a URL server's address
        config["url"] = config.pop("serverUrl")
    disabled = config.pop("disabled", False)
    if not isinstance(disabled, bool):
        raise ValidationError("document", f"server {name!r} key 'disabled' is not a bool")
    kind = config.pop("type", None) or ("http" if "url" in config else "stdio")
    config["transport"] = kind
    if kind == "stdio" and not isinstance(config.get("command"), str):
        raise ValidationError("document", f"server {name!r} key 'command' is missing")
    found: dict[str, str] = {}
    url = config.get("url")
    if url is not None:
        if not isinstance(url, str):
            raise ValidationError("document", f"server {name!r} key 'url' is not a string")
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        if any(_SECRET_WORDS.search(key) for key, _ in query):
            raise ValidationError(
                "document",
                f"server {name!r} key 'url' carries a credential in its query string: move it "
                "into a header (headers) so that it is stored sealed",
            )
    if "args" in config:
        if not isinstance(config["args"], list):
            raise ValidationError("document", f"server {name!r} key 'args' is not a list")
        config["args"] = _secret_args(name, config["args"], found)
    for part in ("env", "headers"):
        values = string_map(
            "document", entry.get(part) or {}, MAX_SECRETS, MAX_SECRET_NAME, MAX_SECRET_VALUE
        )
        for key, value in list(values.items()):
            if _PLACEHOLDER.search(value):
                del values[key]
                left_out.append(f"{part}.{key}: a ${{input:...}} prompt only the editor fills in")
        if values:
            config[part] = sorted(values)
            found.update({f"{part}.{key}": value for key, value in values.items()})
    if len(found) > MAX_SECRETS:
        raise ValidationError("document", f"server {name!r} has more than {MAX_SECRETS} secrets")
    return config, found, not disabled, left_out


async def import_mcp_servers(
    *, user_id: uuid.UUID | str, document: str | bytes | Mapping[str, Any]
) -> list[MCPConfig]:
    """Save one config per server of a Claude Desktop `claude_desktop_config.json`, a Cursor
    `mcp.json` (`mcpServers`: `command`/`args`/`env`, or `url`/`headers`) or a VS Code
    `mcp.json` (`servers`, with `type`), all in one transaction.

    Env values and header values become secrets (`env.NAME`, `headers.NAME`); the config
    keeps everything else, the names under `env` and `headers`, and a `transport`. A
    credential-looking command-line value (`--api-key=...`, `--token ...`) becomes secret
    `args.N` (the argument reads `${args.N}`); a credential in a URL's query string is
    refused. Windsurf's `serverUrl` is a URL server's address. What only the user's editor
    can fill in (VS Code's `${input:...}` prompts, `envFile`) is not stored: each config's
    `left_out` says what was left out and why. A bad entry is a `ValidationError` naming the
    server and the key; nothing is stored then.
    """
    uid = as_uuid("user_id", user_id)
    parsed = [(name, *_split(name, entry)) for name, entry in _document(document).items()]
    saved: list[MCPConfig] = []
    async with in_transaction():
        for name, config, found, enabled, left_out in parsed:
            stored = await save_mcp_config(
                user_id=uid, name=name, config=config, enabled=enabled, secrets=found
            )
            stored.left_out = left_out
            saved.append(stored)
    return saved


__all__ = [
    "MAX_SECRETS",
    "MAX_SECRET_VALUE",
    "delete_mcp_config",
    "get_mcp_config",
    "import_mcp_servers",
    "list_mcp_configs",
    "save_mcp_config",
]
