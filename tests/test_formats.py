"""History into the model APIs' shapes, checked against the openai and anthropic packages' own
types, with tool results built by the mcp package and stored through append_turn."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import mcp.types as mcp
import pytest
from anthropic.types import MessageParam, TextBlockParam
from openai.types.chat import ChatCompletionMessageParam
from pydantic import ConfigDict, TypeAdapter

import faceplate_models as fm
from faceplate_models.errors import ValidationError
from faceplate_models.formats import mcp_result, to_anthropic, to_openai

pytestmark = pytest.mark.usefixtures("faceplate_db")

STRICT = ConfigDict(extra="forbid")
OPENAI = TypeAdapter(list[ChatCompletionMessageParam], config=STRICT)
ANTHROPIC = TypeAdapter(list[MessageParam], config=STRICT)
SYSTEM = TypeAdapter(str | list[TextBlockParam], config=STRICT)
PIXEL = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def validated(adapter: TypeAdapter[Any], value: Any) -> Any:
    """Validate `value`, then walk it: pydantic checks Iterable fields only when consumed."""

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list | tuple | Iterator):
            return [walk(v) for v in item]
        return item

    return walk(adapter.validate_python(value))


def call(call_id: str, name: str, **arguments: Any) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


async def a_turn() -> tuple[fm.User, fm.Conversation, list[fm.Message]]:
    """A system prompt, then one turn: two parallel MCP tool calls answered by MCP results
    (one with an image, one an error), and the answer."""
    user = await fm.get_or_create_user(subject_id="formats", email="formats@example.com")
    chat = await fm.create_conversation(user_id=user.id)
    await fm.append_message(
        user_id=user.id, conversation_id=chat.id, role="system", content="You are Faceplate."
    )
    chart = mcp.CallToolResult(
        content=[
            mcp.TextContent(type="text", text="2 open tasks"),
            mcp.ImageContent(type="image", data=PIXEL, mime_type="image/png"),
        ],
        is_error=False,
    )
    failed = mcp.CallToolResult(
        content=[mcp.TextContent(type="text", text="calendar unreachable")], is_error=True
    )
    stored = await fm.append_turn(
        user_id=user.id,
        conversation_id=chat.id,
        messages=[
            {"role": "user", "content": "What is open, and when am I free?"},
            {
                "role": "assistant",
                "tool_calls": [
                    call("call_a", "todo_list", completed=False),
                    call("call_b", "calendar_free"),
                ],
            },
            {
                "role": "tool",
                "tool_results": [mcp_result("call_a", chart), mcp_result("call_b", failed)],
            },
            {"role": "assistant", "content": "Two tasks; the calendar did not answer."},
        ],
    )
    return user, chat, stored


async def test_an_mcp_result_is_stored_as_its_content_blocks() -> None:
    user, chat, stored = await a_turn()
    [tool] = [m for m in stored if m.role is fm.Role.TOOL]
    assert tool.tool_results[0]["content"] == [
        {"type": "text", "text": "2 open tasks"},
        {"type": "image", "data": PIXEL, "mimeType": "image/png"},
    ]
    assert tool.tool_results[1]["is_error"] is True
    history = await fm.get_history(user_id=user.id, conversation_id=chat.id)
    assert [m.id for m in history.items][1:] == [m.id for m in stored]


async def test_to_openai_takes_one_tool_message_per_call() -> None:
    user, chat, _ = await a_turn()
    history = (await fm.get_history(user_id=user.id, conversation_id=chat.id)).items
    messages = validated(OPENAI, to_openai(history))
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
    ]
    assert [m["tool_call_id"] for m in messages if m["role"] == "tool"] == ["call_a", "call_b"]
    assert messages[3]["content"] == "2 open tasks\n[image (image/png)]"
    assert messages[4]["content"] == "Error: calendar unreachable"
    assert messages[2]["content"] is None and len(messages[2]["tool_calls"]) == 2


async def test_to_anthropic_pairs_tool_use_with_tool_result() -> None:
    user, chat, _ = await a_turn()
    await fm.append_message(
        user_id=user.id, conversation_id=chat.id, role="user", content="Thanks. And tomorrow?"
    )
    history = (await fm.get_history(user_id=user.id, conversation_id=chat.id)).items
    arguments = to_anthropic(history)
    assert set(arguments) == {"system", "messages"}
    validated(SYSTEM, arguments["system"])
    messages = validated(ANTHROPIC, arguments["messages"])
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    uses = [b for b in messages[1]["content"] if b["type"] == "tool_use"]
    assert [(b["id"], b["name"], b["input"]) for b in uses] == [
        ("call_a", "todo_list", {"completed": False}),
        ("call_b", "calendar_free", {}),
    ]
    results = messages[2]["content"]
    assert [b["tool_use_id"] for b in results] == ["call_a", "call_b"]
    assert results[0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
    }
    assert results[1]["is_error"] is True
    # The user's next words follow the final answer in their own turn.
    assert messages[4]["content"] == [{"type": "text", "text": "Thanks. And tomorrow?"}]


async def test_a_window_that_begins_inside_a_turn() -> None:
    user, chat, _ = await a_turn()
    # The newest two messages: the results, whose calls are outside the window, and the answer.
    window = (await fm.get_history(user_id=user.id, conversation_id=chat.id, limit=2)).items
    assert validated(OPENAI, to_openai(window)) == [
        {"role": "assistant", "content": "Two tasks; the calendar did not answer."}
    ]
    assert to_anthropic(window)["messages"][0]["role"] == "assistant"


async def test_an_unanswered_call_is_reported_and_can_be_repaired() -> None:
    user = await fm.get_or_create_user(subject_id="crash", email="crash@example.com")
    chat = await fm.create_conversation(user_id=user.id)
    await fm.append_message(user_id=user.id, conversation_id=chat.id, role="user", content="Go")
    await fm.append_message(
        user_id=user.id,
        conversation_id=chat.id,
        role="assistant",
        tool_calls=[call("call_lost", "todo_list")],
    )
    # The backend crashed here, before the tool answered.
    history = (await fm.get_history(user_id=user.id, conversation_id=chat.id)).items
    for convert in (to_openai, to_anthropic):
        with pytest.raises(ValidationError, match="call_lost") as caught:
            convert(history)
        assert caught.value.field == "messages"
    [open_call] = await fm.list_open_tool_calls(user_id=user.id)
    assert (open_call.conversation_id, open_call.call_id) == (chat.id, "call_lost")
    await fm.append_message(
        user_id=user.id,
        conversation_id=chat.id,
        role="tool",
        tool_results=[
            {"tool_call_id": open_call.call_id, "content": "interrupted", "is_error": True}
        ],
    )
    assert await fm.list_open_tool_calls(user_id=user.id) == []
    history = (await fm.get_history(user_id=user.id, conversation_id=chat.id)).items
    validated(OPENAI, to_openai(history))
    validated(ANTHROPIC, to_anthropic(history)["messages"])


def test_any_json_content_becomes_text() -> None:
    message = fm.Message(
        role=fm.Role.TOOL,
        tool_results=[
            {"tool_call_id": "c", "content": {"rows": [1, 2]}},
            {"tool_call_id": "d", "content": "plain"},
            {
                "tool_call_id": "e",
                "content": [{"type": "resource_link", "uri": "file:///a", "name": "a"}],
            },
        ],
    )
    assistant = fm.Message(role=fm.Role.ASSISTANT, tool_calls=[call(c, "t") for c in "cde"])
    tool_messages = to_openai([assistant, message])[1:]
    assert [m["content"] for m in tool_messages] == [
        '{"rows": [1, 2]}',
        "plain",
        "[resource file:///a: a]",
    ]
