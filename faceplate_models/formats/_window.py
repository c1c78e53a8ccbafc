"""A window of history as both converters read it: stored messages (`get_history(...).items`)
or the dicts `append_turn` takes, with MCP content blocks read as text.

A window may begin inside a turn: it is aligned to begin with a user's message (or system
text), and results whose call lies before it are left out; a call left without a result in
it is a `ValidationError`, since both model APIs refuse such a history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from faceplate_models.errors import ValidationError
from faceplate_models.formats.shape import Draft, dumped
from faceplate_models.models import Role

_BLOCK_TYPES: Final = {"text", "image", "audio", "resource", "resource_link"}


def entries(messages: Iterable[Any]) -> list[dict[str, Any]]:
    """The window's messages as dicts (role, content, tool_calls, tool_results, thinking),
    aligned and with orphan results left out."""
    window = [_entry(message, index) for index, message in enumerate(messages)]
    first = next((i for i, e in enumerate(window) if e["role"] is Role.USER), len(window))
    window = [e for i, e in enumerate(window) if i >= first or e["role"] is Role.SYSTEM]
    made = {call["id"] for e in window for call in (e["tool_calls"] or ())}
    answered = {r["tool_call_id"] for e in window for r in (e["tool_results"] or ())}
    for e in window:
        for call in e["tool_calls"] or ():
            if call["id"] not in answered:
                raise ValidationError(
                    "messages",
                    f"tool call {call['id']!r} of message {e['id']} has no result, which the "
                    "model APIs refuse; answer it (list_open_tool_calls finds such calls) "
                    "before sending the history",
                )
    kept = []
    for e in window:
        if e["tool_results"]:
            results = [r for r in e["tool_results"] if r["tool_call_id"] in made]
            if not results:
                continue
            e = {**e, "tool_results": results}
        kept.append(e)
    return kept


def _entry(message: Any, index: int) -> dict[str, Any]:
    if isinstance(message, Mapping):
        return Draft(message, f"messages[{index}].").decoded()
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "tool_calls": message.tool_calls,
        "tool_results": message.tool_results,
        "thinking": getattr(message, "thinking", None),
    }


def blocks(content: Any) -> Sequence[dict[str, Any]] | None:
    """MCP content blocks, when `content` is a list of them (or one)."""
    if isinstance(content, dict) and content.get("type") in _BLOCK_TYPES:
        return [content]
    if (
        isinstance(content, list)
        and content
        and all(isinstance(b, dict) and b.get("type") in _BLOCK_TYPES for b in content)
    ):
        return content
    return None


def block_text(block: dict[str, Any]) -> str:
    kind = block["type"]
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "resource":
        resource = block.get("resource") or {}
        if "text" in resource:
            return str(resource["text"])
        return f"[resource {resource.get('uri', '')} ({resource.get('mimeType', 'binary')})]"
    if kind == "resource_link":
        name = block.get("name")
        return f"[resource {block.get('uri', '')}{': ' + name if name else ''}]"
    return f"[{kind} ({block.get('mimeType', 'unknown type')})]"


def as_text(content: Any) -> str:
    """A result as text: blocks' texts joined, a string as it is, other JSON encoded."""
    found = blocks(content)
    if found is not None:
        return "\n".join(block_text(block) for block in found)
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False)


def dump(response: Any) -> dict[str, Any]:
    """A model API's response as a dict: its pydantic model dumped, or the dict itself."""
    data = dumped("response", response)
    if isinstance(data, Mapping):
        return dict(data)
    raise ValidationError("response", "must be the API's response object, or its dict")


__all__ = ["as_text", "block_text", "blocks", "dump", "entries"]
