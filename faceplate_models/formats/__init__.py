"""A chat message's shape, and the model APIs' formats both ways: pure functions, no database.

    page = await fm.get_history(user_id=..., conversation_id=...)
    reply = openai.chat.completions.create(model=..., messages=to_openai(page.items, page.system))
    await fm.append_turn(user_id=..., conversation_id=..., messages=from_openai(reply))

    arguments = to_anthropic(page.items, page.system)
    reply = anthropic.messages.create(model=..., max_tokens=..., **arguments)
    await fm.append_turn(user_id=..., conversation_id=..., messages=from_anthropic(reply))

`to_openai` and `to_anthropic` take stored messages or the dicts `append_turn` takes (see
`shape`); `from_openai` and `from_anthropic` take a response (the SDK's object or its
dict) and return those dicts, with model, usage and finish reason filled in.
"""

from __future__ import annotations

import json
from typing import Any

from faceplate_models.errors import ValidationError
from faceplate_models.formats.anthropic import anthropic_usage, from_anthropic, to_anthropic
from faceplate_models.formats.gemini import gemini_usage
from faceplate_models.formats.openai import from_openai, openai_usage, to_openai
from faceplate_models.formats.shape import dumped


def mcp_result(tool_call_id: str, result: Any) -> dict[str, Any]:
    """A tool result to store, from an MCP `CallToolResult` (the SDK's model or its JSON).

    Its content blocks are kept as they are; structured content without blocks becomes
    one text block of its JSON, as MCP servers are asked to do themselves.
    """
    data = dumped("result", result)
    if not isinstance(data, dict):
        raise ValidationError("result", "must be an MCP CallToolResult or its JSON")
    content = list(data.get("content") or [])
    if not content and data.get("structuredContent") is not None:
        content = [{"type": "text", "text": json.dumps(data["structuredContent"])}]
    return {
        "tool_call_id": tool_call_id,
        "content": content,
        "is_error": bool(data.get("isError", False)),
    }


__all__ = [
    "anthropic_usage",
    "from_anthropic",
    "from_openai",
    "gemini_usage",
    "mcp_result",
    "openai_usage",
    "to_anthropic",
    "to_openai",
]
