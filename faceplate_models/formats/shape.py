"""The chat message's shape, owned here: what `append_turn` takes, what the store checks before
any SQL, and what the converters read. One message is a dict of:

- `role`: system, user, assistant or tool; `content`: text (a user's may not be blank).
- `tool_calls` (assistant): OpenAI-shaped, `{"id", "type": "function", "function": {"name",
  "arguments"}}`, `arguments` the JSON text of an object (finite numbers only).
- `tool_results` (tool): `{"tool_call_id", "content", "is_error"?}`; `content` any JSON value,
  such as an MCP `CallToolResult`'s content blocks (pydantic blocks are dumped as JSON).
- what an assistant's answer was (assistant): `model`, `provider`, `finish_reason`, `usage`
  (token counts, `USAGE_KEYS`) and `thinking` (Anthropic's thinking blocks, signature kept).
- `metadata`: a JSON object of the application's own, at most MAX_METADATA_BYTES.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Final

from faceplate_models.errors import ValidationError
from faceplate_models.ids import uuid7
from faceplate_models.models import (
    FINISH_REASON_MAX,
    MODEL_NAME_MAX,
    PROVIDER_MAX,
    TOOL_CALL_ID_MAX,
    Role,
)
from faceplate_models.validation import (
    MAX_JSON_BYTES,
    MAX_TEXT_CHARS,
    json_text,
    nesting,
    optional_text,
    parsed,
    role,
    text,
)

#: Most messages in one turn.
MAX_TURN_MESSAGES: Final = 64
#: Largest turn: its texts (in characters) and JSON values (in bytes) together.
MAX_TURN_SIZE: Final = 4 * MAX_JSON_BYTES
#: Most tool calls (or results) in one message.
MAX_CALLS: Final = MAX_TURN_MESSAGES * 4
#: Largest `metadata` object of a message or a conversation, encoded.
MAX_METADATA_BYTES: Final = 16_384
#: Largest count in `usage`: a trillion tokens, far past any model's window.
MAX_TOKENS: Final = 10**12
#: The counts of an answer's `usage`. `input_tokens` are the uncached ones: each input token
#: is counted once, as uncached, read from cache, or written to it; `output_tokens` include
#: the reasoning tokens, which `reasoning_tokens` breaks out.
USAGE_KEYS: Final = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "latency_ms",
)
KEYS: Final = frozenset(
    {
        "role",
        "content",
        "tool_calls",
        "tool_results",
        "model",
        "provider",
        "finish_reason",
        "usage",
        "thinking",
        "metadata",
    }
)
_ANSWER_ONLY: Final = ("model", "provider", "finish_reason", "usage", "thinking")


class Draft:
    """One message, validated and encoded for the store, with the calls it makes and answers."""

    __slots__ = (
        "calls",
        "content",
        "finish_reason",
        "id",
        "metadata",
        "model",
        "provider",
        "results",
        "role",
        "size",
        "thinking",
        "tool_calls",
        "tool_results",
        "usage",
    )

    def __init__(self, message: Mapping[str, Any], where: str = "") -> None:
        self.id: uuid.UUID = uuid7()
        self.role = role(message.get("role"))
        self.content = optional_text(f"{where}content", message.get("content"), MAX_TEXT_CHARS)
        if self.role is Role.USER and not (self.content or "").strip():
            raise ValidationError(f"{where}content", "a user's message must have some text")
        self.calls: list[str] = []
        self.results: list[str] = []
        self.tool_calls = _tool_calls_json(f"{where}tool_calls", message.get("tool_calls"), self)
        self.tool_results = _results_json(f"{where}tool_results", message.get("tool_results"), self)
        if self.calls and self.role is not Role.ASSISTANT:
            raise ValidationError(
                f"{where}tool_calls", f"only assistant messages call tools, not {self.role}"
            )
        if self.results and self.role is not Role.TOOL:
            raise ValidationError(
                f"{where}tool_results", f"only tool messages carry results, not {self.role}"
            )
        for key in _ANSWER_ONLY:
            if message.get(key) is not None and self.role is not Role.ASSISTANT:
                raise ValidationError(f"{where}{key}", f"only an assistant's answer has a {key}")
        self.model = _name(f"{where}model", message.get("model"), MODEL_NAME_MAX)
        self.provider = _name(f"{where}provider", message.get("provider"), PROVIDER_MAX)
        self.finish_reason = _name(
            f"{where}finish_reason", message.get("finish_reason"), FINISH_REASON_MAX
        )
        self.usage = usage(f"{where}usage", message.get("usage"))
        if self.usage is not None and self.model is None:
            raise ValidationError(f"{where}usage", "needs the model that answered (model=)")
        self.thinking = _thinking_json(f"{where}thinking", message.get("thinking"))
        self.metadata = metadata(f"{where}metadata", message.get("metadata"))
        if self.content is None and not self.calls and not self.results and not self.thinking:
            raise ValidationError(
                f"{where}content", "is required unless the message has tool calls or results"
            )
        self.size = sum(
            len(part or "")
            for part in (
                self.content,
                self.tool_calls,
                self.tool_results,
                self.thinking,
                self.metadata,
            )
        )

    @property
    def usage_json(self) -> str | None:
        return None if self.usage is None else json.dumps(self.usage)

    def decoded(self) -> dict[str, Any]:
        """The message as the converters read it: its JSON values decoded."""
        return {
            "id": None,
            "role": self.role,
            "content": self.content,
            "tool_calls": _loads(self.tool_calls),
            "tool_results": _loads(self.tool_results),
            "thinking": _loads(self.thinking),
        }


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def drafts(messages: object) -> list[Draft]:
    """A turn's messages, each validated (`ValidationError` names `messages[i].field`)."""
    if not isinstance(messages, list | tuple) or not messages:
        raise ValidationError("messages", "must be a non-empty list of messages")
    if len(messages) > MAX_TURN_MESSAGES:
        raise ValidationError("messages", f"has more than {MAX_TURN_MESSAGES} messages")
    found: list[Draft] = []
    size = 0
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or set(message) - KEYS:
            raise ValidationError(
                "messages", f"entry {index} must be a dict of {', '.join(sorted(KEYS))}"
            )
        found.append(Draft(message, f"messages[{index}]."))
        size += found[-1].size
        if size > MAX_TURN_SIZE:
            raise ValidationError("messages", f"are larger than {MAX_TURN_SIZE} together")
    return found


def _name(field: str, value: object, max_chars: int) -> str | None:
    if value is None:
        return None
    name = text(field, value, max_chars, strip=True)
    if not name:
        raise ValidationError(field, "must not be empty")
    return name


def usage(field: str, value: object) -> dict[str, int] | None:
    """An answer's usage: the USAGE_KEYS it has, each a whole number from 0 to MAX_TOKENS;
    missing token counts are 0, and `reasoning_tokens` are part of `output_tokens`."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(field, "must be a dict of token counts")
    unknown = set(value) - set(USAGE_KEYS)
    if unknown:
        names = ", ".join(sorted(str(key)[:40] for key in unknown)[:5])
        takes = ", ".join(USAGE_KEYS)
        raise ValidationError(field, f"has unknown keys ({names}); it takes {takes}")
    counts: dict[str, int] = {}
    for key in USAGE_KEYS:
        count = value.get(key, None if key == "latency_ms" else 0)
        if count is None:
            continue
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_TOKENS:
            raise ValidationError(field, f"{key} must be a whole number from 0 to {MAX_TOKENS}")
        counts[key] = count
    if counts["reasoning_tokens"] > counts["output_tokens"]:
        raise ValidationError(
            field, "reasoning_tokens are part of output_tokens, so cannot be more than them"
        )
    return counts


def metadata(field: str, value: object) -> str | None:
    """The application's own JSON object, encoded, at most MAX_METADATA_BYTES."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(field, "must be a JSON object (a dict)")
    encoded = json_text(field, value)
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise ValidationError(field, f"is larger than {MAX_METADATA_BYTES} bytes as JSON")
    return encoded


def _identifier(field: str, value: object, what: str) -> str:
    ident = text(field, value, TOOL_CALL_ID_MAX) if isinstance(value, str) else None
    if not ident:
        raise ValidationError(field, f"{what} must be a non-empty string")
    return ident


def _tool_calls_json(field: str, value: object, draft: Draft) -> str | None:
    """OpenAI-shaped tool calls: `{"id", "type": "function", "function": {"name",
    "arguments"}}`, where `arguments` is the JSON text of an object."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError(field, "must be a non-empty list of tool calls")
    if len(value) > MAX_CALLS:
        raise ValidationError(field, f"has more than {MAX_CALLS} calls")
    for index, call in enumerate(value):
        where = f"entry {index}"
        if not isinstance(call, dict) or set(call) - {"id", "type", "function"}:
            raise ValidationError(field, f"{where} must be a dict of id, type and function")
        draft.calls.append(_identifier(field, call.get("id"), f"{where}'s 'id'"))
        if call.get("type") != "function":
            raise ValidationError(field, f"{where}'s 'type' must be 'function'")
        function = call.get("function")
        if not isinstance(function, dict) or set(function) != {"name", "arguments"}:
            raise ValidationError(field, f"{where}'s 'function' must have name and arguments")
        _identifier(field, function["name"], f"{where}'s function name")
        if not isinstance(function["arguments"], str):
            raise ValidationError(
                field, f"{where}'s arguments must be the JSON text of an object (a str)"
            )
    encoded = json_text(field, value)
    for index, call in enumerate(value):
        if not _is_json_object(call["function"]["arguments"]):
            raise ValidationError(
                field, f"entry {index}'s arguments are not a JSON object of finite numbers"
            )
    if len(set(draft.calls)) != len(draft.calls):
        raise ValidationError(field, "repeats a call id")
    return encoded


def _finite(constant: str) -> float:
    raise ValueError(constant)


def _is_json_object(arguments: str) -> bool:
    """Whether `arguments` is the JSON text of an object; NaN and Infinity, which Python's
    parser takes and strict parsers refuse, are not JSON."""
    try:
        return isinstance(json.loads(arguments, parse_constant=_finite), dict)
    except (ValueError, RecursionError):
        return False


def _results_json(field: str, value: object, draft: Draft) -> str | None:
    """Results: `{"tool_call_id", "content", "is_error"?}`; `content` is any JSON value, such
    as the content blocks of an MCP `CallToolResult` (pydantic blocks are dumped as JSON)."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError(field, "must be a non-empty list of tool results")
    if len(value) > MAX_CALLS:
        raise ValidationError(field, f"has more than {MAX_CALLS} results")
    results = []
    for index, result in enumerate(value):
        where = f"entry {index}"
        if (
            not isinstance(result, dict)
            or "tool_call_id" not in result
            or "content" not in result
            or set(result) - {"tool_call_id", "content", "is_error"}
        ):
            raise ValidationError(
                field, f"{where} must be a dict of tool_call_id, content and is_error (optional)"
            )
        draft.results.append(_identifier(field, result["tool_call_id"], f"{where}'s tool_call_id"))
        if not isinstance(result.get("is_error", False), bool):
            raise ValidationError(field, f"{where}'s is_error must be True or False")
        results.append({**result, "content": dumped(field, result["content"])})
    if len(set(draft.results)) != len(draft.results):
        raise ValidationError(field, "answers a call twice")
    return json_text(field, results)


def dumped(field: str, content: object, depth: int = 0) -> object:
    """MCP clients hand out content blocks as pydantic models; stored, they are their JSON."""
    nesting(field, depth)
    if callable(getattr(type(content), "model_dump", None)):
        dump = content.model_dump  # type: ignore[attr-defined]
        return parsed(
            field,
            lambda: dump(mode="json", by_alias=True, exclude_none=True),
            (Exception,),
            "holds a model that cannot be dumped as JSON",
        )
    if isinstance(content, list | tuple):
        return [dumped(field, item, depth + 1) for item in content]
    return content


_THINKING: Final = {"thinking": {"thinking", "signature"}, "redacted_thinking": {"data"}}


def _thinking_json(field: str, value: object) -> str | None:
    """Anthropic's thinking blocks, as its API hands them out and wants them back:
    `{"type": "thinking", "thinking", "signature"}` or `{"type": "redacted_thinking", "data"}`."""
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError(field, "must be a non-empty list of thinking blocks")
    if len(value) > MAX_CALLS:
        raise ValidationError(field, f"has more than {MAX_CALLS} blocks")
    blocks = [dumped(field, block) for block in value]
    for index, block in enumerate(blocks):
        keys = _THINKING.get(str(block.get("type"))) if isinstance(block, dict) else None
        if not isinstance(block, dict) or keys is None or set(block) != {"type", *keys}:
            raise ValidationError(
                field,
                f"entry {index} must be a thinking block (type, thinking, signature) or a "
                "redacted_thinking block (type, data)",
            )
        if not all(isinstance(block[key], str) for key in keys):
            raise ValidationError(field, f"entry {index}'s {', '.join(sorted(keys))} are text")
    return json_text(field, blocks)


__all__ = [
    "KEYS",
    "MAX_CALLS",
    "MAX_METADATA_BYTES",
    "MAX_TOKENS",
    "MAX_TURN_MESSAGES",
    "MAX_TURN_SIZE",
    "USAGE_KEYS",
    "Draft",
    "drafts",
    "dumped",
    "metadata",
    "usage",
]
