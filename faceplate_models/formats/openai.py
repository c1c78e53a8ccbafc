"""OpenAI's Chat Completions, both ways: a window of history as its `messages`, and a
`ChatCompletion` as the message `append_turn` takes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from faceplate_models.errors import ValidationError
from faceplate_models.formats._window import as_text, dump, entries
from faceplate_models.models import Role


def to_openai(messages: Iterable[Any], system: str | None = None) -> list[dict[str, Any]]:
    """Chat Completions message params: `system` first (a history page's `page.system`), one
    `tool` message per call id, content as text; thinking blocks are left out."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for e in entries(messages):
        if e["role"] is Role.TOOL:
            for result in e["tool_results"]:
                text = as_text(result["content"])
                out.append(
                    {
                        "role": "tool",
                        "tool_call_id": result["tool_call_id"],
                        "content": f"Error: {text}" if result.get("is_error") else text,
                    }
                )
        elif e["role"] is Role.ASSISTANT:
            entry: dict[str, Any] = {"role": "assistant", "content": e["content"]}
            if e["tool_calls"]:
                entry["tool_calls"] = e["tool_calls"]
            out.append(entry)
        else:
            out.append({"role": e["role"].value, "content": e["content"] or ""})
    return out


def openai_usage(usage: Mapping[str, Any] | None) -> dict[str, int] | None:
    """Chat Completions' `usage` as an answer's: `prompt_tokens` include the cached ones,
    `completion_tokens` the reasoning ones."""
    if not usage:
        return None
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": (usage.get("prompt_tokens") or 0) - cached,
        "cached_input_tokens": cached,
        "cache_write_tokens": 0,
        "output_tokens": usage.get("completion_tokens") or 0,
        "reasoning_tokens": reasoning,
    }


def from_openai(response: Any, *, latency_ms: int | None = None) -> list[dict[str, Any]]:
    """A `ChatCompletion` (or its dict) as the messages `append_turn` takes: the assistant's
    answer with its text, tool calls, model, finish reason and usage (`latency_ms` added when
    given). Provider `openai`."""
    data = dump(response)
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], Mapping) or "message" not in choices[0]:
        raise ValidationError("response", "has no choices[0].message")
    choice, message = choices[0], choices[0]["message"]
    answer: dict[str, Any] = {
        "role": "assistant",
        "content": message.get("content"),
        "model": data.get("model"),
        "provider": "openai",
        "finish_reason": choice.get("finish_reason"),
    }
    if message.get("tool_calls"):
        answer["tool_calls"] = [
            {
                "id": call["id"],
                "type": "function",
                "function": {
                    "name": call["function"]["name"],
                    "arguments": call["function"]["arguments"],
                },
            }
            for call in message["tool_calls"]
        ]
    if (usage := openai_usage(data.get("usage"))) is not None:
        answer["usage"] = {**usage, **({"latency_ms": latency_ms} if latency_ms else {})}
    return [answer]


__all__ = ["from_openai", "openai_usage", "to_openai"]
