"""MCP configs: how to start or reach each of a user's MCP servers, by a name unique to them."""

from __future__ import annotations

import uuid
from typing import Any

from uuid6 import uuid7

from faceplate_models.models import MCP_NAME_MAX, MCPConfig
from faceplate_models.store.rows import (
    builder,
    execute,
    fetch,
    fetchrow,
    insert_owned,
    missing,
    now,
)
from faceplate_models.store.validation import as_uuid, flag, json_object, required_text

_COLUMNS = "id, user_id, name, config, enabled, created_at, updated_at"
_mcp_configs = builder(MCPConfig)


async def save_mcp_config(
    *, user_id: uuid.UUID | str, name: str, config: dict[str, Any], enabled: bool = True
) -> MCPConfig:
    """Create the user's MCP config of this name, or replace its config and enabled flag."""
    uid = as_uuid("user_id", user_id)
    label = required_text("name", name, MCP_NAME_MAX)
    body = json_object("config", config)
    on = flag("enabled", enabled)
    row = await insert_owned(
        "mcp_configs",
        _COLUMNS,
        f"""INSERT INTO faceplate.mcp_configs ({_COLUMNS})
            VALUES ($2, $1, $3, $4::jsonb, $5, $6, $6)
            ON CONFLICT (user_id, name) DO UPDATE SET config = EXCLUDED.config,
                enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at
            RETURNING {_COLUMNS}""",
        uid,
        uuid7(),
        label,
        body,
        on,
        now(),
    )
    return _mcp_configs(row)


async def get_mcp_config(*, user_id: uuid.UUID | str, name: str) -> MCPConfig:
    """The user's MCP config of this name."""
    uid = as_uuid("user_id", user_id)
    label = required_text("name", name, MCP_NAME_MAX)
    row = await fetchrow(
        f"SELECT {_COLUMNS} FROM faceplate.mcp_configs WHERE user_id = $1 AND name = $2",
        uid,
        label,
    )
    if row is None:
        raise missing("MCP config", repr(label))
    return _mcp_configs(row)


async def list_mcp_configs(
    *, user_id: uuid.UUID | str, enabled: bool | None = None
) -> list[MCPConfig]:
    """The user's MCP configs by name, optionally only the enabled (or disabled) ones."""
    uid = as_uuid("user_id", user_id)
    state = flag("enabled", enabled, optional=True)
    rows = await fetch(
        f"""SELECT {_COLUMNS} FROM faceplate.mcp_configs
            WHERE user_id = $1 AND ($2::boolean IS NULL OR enabled = $2) ORDER BY name""",
        uid,
        state,
    )
    return [_mcp_configs(row) for row in rows]


async def delete_mcp_config(*, user_id: uuid.UUID | str, name: str) -> None:
    """Delete the user's MCP config of this name."""
    uid = as_uuid("user_id", user_id)
    label = required_text("name", name, MCP_NAME_MAX)
    status = await execute(
        "DELETE FROM faceplate.mcp_configs WHERE user_id = $1 AND name = $2", uid, label
    )
    if status == "DELETE 0":
        raise missing("MCP config", repr(label))


__all__ = ["delete_mcp_config", "get_mcp_config", "list_mcp_configs", "save_mcp_config"]
