"""Arbitrary text and JSON into append_message: an exact round-trip or ValidationError.

Never a driver error: everything PostgreSQL would refuse is caught before any SQL runs.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget
from faceplate_models.errors import ValidationError

# Every code point, lone surrogates and NUL included.
any_text = st.text(alphabet=st.characters(codec=None, min_codepoint=0), max_size=200)
huge_text = st.builds(
    lambda c, n: c * n, st.sampled_from(["a", "\x00", "é", "\ud83d"]), st.integers(0, 1_100_000)
)
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=30,
)
deep_json = st.integers(0, 120).map(lambda d: _nest(d))


def _nest(depth: int) -> Any:
    value: Any = "leaf"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
async def chat(faceplate_database: DatabaseTarget) -> tuple[Any, Any]:
    owner = await fm.get_or_create_user(subject_id="hypothesis", email="prop@example.com")
    conversation = await fm.create_conversation(user_id=owner.id)
    return owner.id, conversation.id


async def round_trip(chat: tuple[Any, Any], **message: Any) -> None:
    user_id, conversation_id = chat
    try:
        stored = await fm.append_message(
            user_id=user_id, conversation_id=conversation_id, **message
        )
    except ValidationError:
        return
    [fetched] = list(
        (await fm.get_history(user_id=user_id, conversation_id=conversation_id, limit=1)).items
    )
    assert fetched.id == stored.id
    for key, value in message.items():
        if key != "role":
            assert getattr(fetched, key) == value


@PROPERTY
@given(content=any_text | huge_text)
async def test_any_text_round_trips_or_is_rejected(chat: tuple[Any, Any], content: str) -> None:
    await round_trip(chat, role="user", content=content)


@PROPERTY
@given(results=json_values | deep_json)
async def test_any_json_round_trips_or_is_rejected(chat: tuple[Any, Any], results: Any) -> None:
    await round_trip(chat, role="tool", tool_results=results)


@PROPERTY
@given(call_id=any_text, arguments=json_values)
async def test_any_tool_call_round_trips_or_is_rejected(
    chat: tuple[Any, Any], call_id: str, arguments: Any
) -> None:
    calls = [{"id": call_id, "type": "function", "function": {"name": "t", "arguments": arguments}}]
    await round_trip(chat, role="assistant", tool_calls=calls)
