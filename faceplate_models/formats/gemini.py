"""Gemini's usage, as an answer's: no converter for its message format lives here yet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faceplate_models.errors import ValidationError
from faceplate_models.formats.shape import dumped


def gemini_usage(usage: Any) -> dict[str, int] | None:
    """Gemini's `usageMetadata` (the REST JSON, the SDK's model, or its snake_case dump) as an
    answer's: its prompt count includes the cached tokens, and its thoughts are billed as
    output beside the candidates."""
    usage = dumped("usage", usage)
    if not usage:
        return None
    if not isinstance(usage, Mapping):
        raise ValidationError("usage", "must be Gemini's usageMetadata, or its dict")

    def count(name: str, snake: str) -> int:
        return int(usage.get(name) or usage.get(snake) or 0)

    cached = count("cachedContentTokenCount", "cached_content_token_count")
    thoughts = count("thoughtsTokenCount", "thoughts_token_count")
    return {
        "input_tokens": count("promptTokenCount", "prompt_token_count") - cached,
        "cached_input_tokens": cached,
        "cache_write_tokens": 0,
        "output_tokens": count("candidatesTokenCount", "candidates_token_count") + thoughts,
        "reasoning_tokens": thoughts,
    }


__all__ = ["gemini_usage"]
