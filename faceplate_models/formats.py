"""A stored history in the shapes model APIs take: pure functions, no database.

    page = await fm.get_history(user_id=..., conversation_id=...)
    openai.chat.completions.create(model=..., messages=to_openai(page.items))
    anthropic.messages.create(model=..., max_tokens=..., **to_anthropic(page.items))

Tool calls are stored OpenAI-shaped; a tool message holds the results of one or more
calls, each `{"tool_call_id", "content", "is_error"?}`, where `content` is the content
blocks of an MCP `CallToolResult` (text, image, audio, resource, resource_link) or any
JSON value. OpenAI gets one `tool` message per call, its content as text; Anthropic gets
`tool_use` blocks in the assistant's turn and `tool_result` blocks in the next user turn,
with images kept as images, and consecutive turns of one role merged.

A window of history may begin inside a turn: results whose call lies before the window
are left out. A call with no result in the window is a `ValidationError`: both APIs reject
such a history, and `list_open_tool_calls` finds the calls to answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from faceplate_models.errors import ValidationError
from faceplate_models.models import Message, Role

# The image types Anthropic takes inside a tool result; others are described in text.
_ANTHROPIC_IMAGES = {"image/jpeg", "image/png", "image/gif", "image/webp"}
_BLOCK_TYPES = {"text", "image", "audio", "resource", "resource_link"}


def mcp_result(tool_call_id: str, result: Any) -> dict[str, Any]:
    """A tool result to store, from an MCP `CallToolResult` (the SDK's model or its JSON).

    Its content blocks are kept as they are; structured content without blocks becomes
    one text block of its JSON, as MCP servers are asked to do themselves.
    """
    data = result
    if callable(getattr(type(result), "model_dump", None)):
        data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
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


def to_openai(messages: Iterable[Message]) -> list[dict[str, Any]]:
    """Chat Completions message params: one `tool` message per call id, content as text."""
    out: list[dict[str, Any]] = []
    for message in _answered(messages):
        if message.role is Role.TOOL:
            for result in message.tool_results:
                text = _text(result["content"])
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": result["tool_call_id"],
                        "content": f"Error: {text}" if result.get("is_error") else text,
                    }
                )
        elif message.role is Role.ASSISTANT:
            entry: dict[str, Any] = {"role": "assistant", "content": message.content}
            if message.tool_calls:
                entry["tool_calls"] = message.tool_calls
            out.append(entry)
        else:
            out.append({"role": message.role.value, "content": message.content or ""})
    return out


def to_anthropic(messages: Iterable[Message]) -> dict[str, Any]:
    """Messages API arguments: `messages`, and `system` when the history has system text."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in _answered(messages):
        if message.role is Role.SYSTEM:
            system.append(message.content or "")
            continue
        blocks: list[dict[str, Any]] = []
        if message.content:
            blocks.append({"type": "text", "text": message.content})
        for call in message.tool_calls or ():
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["function"]["name"],
                    "input": json.loads(call["function"]["arguments"]),
                }
            )
        for result in message.tool_results or ():
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": result["tool_call_id"],
                "content": _anthropic_content(result["content"]),
            }
            if result.get("is_error"):
                block["is_error"] = True
            blocks.append(block)
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # the API wants the roles to alternate
        else:
            turns.append({"role": role, "content": blocks})
    arguments: dict[str, Any] = {"messages": turns}
    if system:
        arguments["system"] = "\n\n".join(system)
    return arguments


def _answered(messages: Iterable[Message]) -> list[Message]:
    """The messages, less results whose call precedes them; a call left unanswered raises."""
    window = list(messages)
    made = {call["id"] for m in window for call in (m.tool_calls or ())}
    answered = {r["tool_call_id"] for m in window for r in (m.tool_results or ())}
    unanswered = [
        (m.id, call["id"])
        for m in window
        for call in (m.tool_calls or ())
        if call["id"] not in answered
    ]
    if unanswered:
        message_id, call_id = unanswered[0]
        raise ValidationError(
            "messages",
            f"tool call {call_id!r} of message {message_id} has no result, which the model APIs "
            "refuse; answer it (list_open_tool_calls finds such calls) before sending the "
            "history",
        )
    kept = []
    for message in window:
        if message.tool_results:
            results = [r for r in message.tool_results if r["tool_call_id"] in made]
            if not results:
                continue
            if len(results) != len(message.tool_results):
                message = _with_results(message, results)
        kept.append(message)
    return kept


def _with_results(message: Message, results: list[dict[str, Any]]) -> Message:
    copy = Message.__new__(Message)
    copy.__dict__.update(message.__dict__, tool_results=results)
    return copy


def _blocks(content: Any) -> Sequence[dict[str, Any]] | None:
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


def _block_text(block: dict[str, Any]) -> str:
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


def _text(content: Any) -> str:
    """A result as text: blocks' texts joined, a string as it is, other JSON encoded."""
    blocks = _blocks(content)
    if blocks is not None:
        return "\n".join(_block_text(block) for block in blocks)
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False)


def _anthropic_content(content: Any) -> list[dict[str, Any]]:
    blocks = _blocks(content)
    if blocks is None:
        return [{"type": "text", "text": _text(content)}]
    out: list[dict[str, Any]] = []
    for block in blocks:
        if block["type"] == "image" and block.get("mimeType") in _ANTHROPIC_IMAGES:
            source = {"type": "base64", "media_type": block["mimeType"], "data": block["data"]}
            out.append({"type": "image", "source": source})
        else:
            out.append({"type": "text", "text": _block_text(block)})
    return out


__all__ = ["mcp_result", "to_anthropic", "to_openai"]
