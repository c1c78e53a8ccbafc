"""Anthropic's Messages API, both ways: a window of history as its `messages` and `system`,
and a `Message` as the message `append_turn` takes, thinking blocks included."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from faceplate_models.errors import ValidationError
from faceplate_models.formats._window import block_text, blocks, dump, entries
from faceplate_models.models import Role

# The image types Anthropic takes inside a tool result; others are described in text.
_IMAGES: Final = {"image/jpeg", "image/png", "image/gif", "image/webp"}


def to_anthropic(messages: Iterable[Any], system: str | None = None) -> dict[str, Any]:
    """Messages API arguments: `messages`, and `system` (the given one, such as a history
    page's `page.system`, then the history's own system text). `tool_use` blocks go in the
    assistant's turn, `tool_result` blocks in the next user turn, images stay images, turns
    of one role are merged, and an answer's thinking blocks come back first in its turn,
    unchanged, as the API requires in a tool-use loop with extended thinking."""
    systems = [system] if system else []
    turns: list[dict[str, Any]] = []
    for e in entries(messages):
        if e["role"] is Role.SYSTEM:
            systems.append(e["content"] or "")
            continue
        content: list[dict[str, Any]] = list(e["thinking"] or ())
        if e["content"]:
            content.append({"type": "text", "text": e["content"]})
        for call in e["tool_calls"] or ():
            content.append(
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["function"]["name"],
                    "input": json.loads(call["function"]["arguments"]),
                }
            )
        for result in e["tool_results"] or ():
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": result["tool_call_id"],
                "content": _result_content(result["content"]),
            }
            if result.get("is_error"):
                block["is_error"] = True
            content.append(block)
        if not content:
            continue  # the API refuses an empty turn
        role = "assistant" if e["role"] is Role.ASSISTANT else "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(content)  # the API wants the roles to alternate
        else:
            turns.append({"role": role, "content": content})
    arguments: dict[str, Any] = {"messages": turns}
    if systems:
        arguments["system"] = "\n\n".join(systems)
    return arguments


def _result_content(content: Any) -> list[dict[str, Any]]:
    found = blocks(content)
    if found is None:
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        return [{"type": "text", "text": text}]
    out: list[dict[str, Any]] = []
    for block in found:
        if block["type"] == "image" and block.get("mimeType") in _IMAGES:
            source = {"type": "base64", "media_type": block["mimeType"], "data": block["data"]}
            out.append({"type": "image", "source": source})
        else:
            out.append({"type": "text", "text": block_text(block)})
    return out


def anthropic_usage(usage: Mapping[str, Any] | None) -> dict[str, int] | None:
    """The Messages API's `usage` as an answer's: its `input_tokens` already leave out the
    tokens read from and written to the cache."""
    if not usage:
        return None
    return {
        "input_tokens": usage.get("input_tokens") or 0,
        "cached_input_tokens": usage.get("cache_read_input_tokens") or 0,
        "cache_write_tokens": usage.get("cache_creation_input_tokens") or 0,
        "output_tokens": usage.get("output_tokens") or 0,
        "reasoning_tokens": 0,
    }


def from_anthropic(response: Any, *, latency_ms: int | None = None) -> list[dict[str, Any]]:
    """A Messages API `Message` (or its dict) as the messages `append_turn` takes: the
    assistant's answer with its text, tool calls (OpenAI-shaped), thinking blocks (with their
    signature), model, stop reason and usage. Provider `anthropic`."""
    data = dump(response)
    content = data.get("content")
    if not isinstance(content, list):
        raise ValidationError("response", "has no content blocks")
    texts, calls, thinking = [], [], []
    for block in content:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(block["text"])
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            function = {"name": block["name"], "arguments": arguments}
            calls.append({"id": block["id"], "type": "function", "function": function})
        elif kind == "thinking":
            thinking.append(
                {"type": "thinking", "thinking": block["thinking"], "signature": block["signature"]}
            )
        elif kind == "redacted_thinking":
            thinking.append({"type": "redacted_thinking", "data": block["data"]})
    answer: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) or None,
        "model": data.get("model"),
        "provider": "anthropic",
        "finish_reason": data.get("stop_reason"),
    }
    if calls:
        answer["tool_calls"] = calls
    if thinking:
        answer["thinking"] = thinking
    if (usage := anthropic_usage(data.get("usage"))) is not None:
        answer["usage"] = {**usage, **({"latency_ms": latency_ms} if latency_ms else {})}
    return [answer]


__all__ = ["anthropic_usage", "from_anthropic", "to_anthropic"]
