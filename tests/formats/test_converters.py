"""History into the model APIs' shapes, checked against the openai and anthropic packages' own
types, with tool results built by the mcp package and stored through append_turn."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import mcp.types as mcp
import pytest
from anthropic.types import Message as AnthropicMessage, MessageParam, TextBlockParam
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic.alias_generators import to_camel

import faceplate_models as fm
from faceplate_models.errors import ValidationError
from faceplate_models.formats import (
    from_anthropic,
    from_openai,
    gemini_usage,
    mcp_result,
    to_anthropic,
    to_openai,
)

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


async def test_a_window_that_begins_inside_a_turn_is_aligned_for_both_apis() -> None:
    user, chat, _ = await a_turn()
    await fm.append_message(
        user_id=user.id, conversation_id=chat.id, role="user", content="And tomorrow?"
    )
    # The newest three messages: the results, whose calls are outside the window, the
    # answer, and the user's next question. Both APIs want a user's message first.
    window = (await fm.get_history(user_id=user.id, conversation_id=chat.id, limit=3)).items
    assert [m.role for m in window] == ["tool", "assistant", "user"]
    assert validated(OPENAI, to_openai(window)) == [{"role": "user", "content": "And tomorrow?"}]
    anthropic = to_anthropic(window)["messages"]
    assert validated(ANTHROPIC, anthropic) == [
        {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]}
    ]
    anthropic_rules(anthropic)


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
    asked = fm.Message(role=fm.Role.USER, content="Show me.")
    assistant = fm.Message(role=fm.Role.ASSISTANT, tool_calls=[call(c, "t") for c in "cde"])
    tool_messages = to_openai([asked, assistant, message])[2:]
    assert [m["content"] for m in tool_messages] == [
        '{"rows": [1, 2]}',
        "plain",
        "[resource file:///a: a]",
    ]


def anthropic_rules(messages: list[dict[str, Any]]) -> None:
    """What the Messages API refuses and its types do not say: a first turn not the user's,
    two turns of one role in a row, an empty turn, a tool_use not answered in the next turn."""
    assert messages and messages[0]["role"] == "user"
    for before, after in itertools.pairwise(messages):
        assert before["role"] != after["role"]
    for turn in messages:
        assert turn["content"], turn
    for number, turn in enumerate(messages):
        used = {b["id"] for b in turn["content"] if b["type"] == "tool_use"}
        if used:
            answered = {
                b["tool_use_id"]
                for b in messages[number + 1]["content"]
                if b["type"] == "tool_result"
            }
            assert used <= answered


def openai_rules(messages: list[dict[str, Any]]) -> None:
    """Each tool message answers a call of the assistant message before it."""
    calls: set[str] = set()
    for message in messages:
        if message["role"] == "assistant":
            calls = {c["id"] for c in message.get("tool_calls") or ()}
        elif message["role"] == "tool":
            assert message["tool_call_id"] in calls
        assert message.get("content") is not None or message.get("tool_calls")


def completion(**message: Any) -> ChatCompletion:
    return ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1_760_000_000,
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls" if "tool_calls" in message else "stop",
                    "message": {"role": "assistant", "content": None, **message},
                }
            ],
            "usage": {
                "prompt_tokens": 1000,
                "completion_tokens": 50,
                "total_tokens": 1050,
                "prompt_tokens_details": {"cached_tokens": 400},
                "completion_tokens_details": {"reasoning_tokens": 10},
            },
        }
    )


async def test_an_openai_tool_loop_goes_from_the_api_to_the_store_and_back() -> None:
    user = await fm.get_or_create_user(subject_id="loop", email="loop@example.com")
    chat = await fm.create_conversation(user_id=user.id, settings={"system_prompt": "Be brief."})
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": chat.id}
    first = from_openai(completion(tool_calls=[call("call_a", "todo_list", open=True)]))
    assert first[0]["usage"] == {
        "input_tokens": 600,  # cached tokens are counted once, as cached
        "cached_input_tokens": 400,
        "cache_write_tokens": 0,
        "output_tokens": 50,
        "reasoning_tokens": 10,
    }
    result = {"role": "tool", "tool_results": [{"tool_call_id": "call_a", "content": "renew"}]}
    final = from_openai(completion(content="Renew the passport."), latency_ms=900)
    await fm.append_turn(
        **at, messages=[{"role": "user", "content": "What is open?"}, *first, result, *final]
    )
    page = await fm.get_history(**at)
    assert (
        page.items[1].model == "gpt-4o-2024-08-06" and page.items[1].finish_reason == "tool_calls"
    )
    assert page.items[-1].usage["latency_ms"] == 900
    sent = validated(OPENAI, to_openai(page.items, page.system))
    assert sent[0] == {"role": "system", "content": "Be brief."}
    openai_rules(sent)
    anthropic = to_anthropic(page.items, page.system)
    validated(ANTHROPIC, anthropic["messages"])
    anthropic_rules(anthropic["messages"])
    assert anthropic["system"] == "Be brief."


ANTHROPIC_REPLY: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-test",
    "content": [
        {"type": "thinking", "thinking": "The list is in the todo tool.", "signature": "c2ln"},
        {"type": "redacted_thinking", "data": "cmVkYWN0ZWQ="},
        {"type": "text", "text": "Checking your list."},
        {"type": "tool_use", "id": "toolu_1", "name": "todo_list", "input": {"open": True}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 30,
        "output_tokens": 20,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 5,
    },
}


async def test_anthropic_thinking_is_stored_and_sent_back_first_with_its_signature() -> None:
    user = await fm.get_or_create_user(subject_id="think", email="think@example.com")
    chat = await fm.create_conversation(user_id=user.id)
    at: dict[str, Any] = {"user_id": user.id, "conversation_id": chat.id}
    [reply] = from_anthropic(AnthropicMessage.model_validate(ANTHROPIC_REPLY))
    assert reply["usage"] == {
        "input_tokens": 30,
        "cached_input_tokens": 100,
        "cache_write_tokens": 5,
        "output_tokens": 20,
        "reasoning_tokens": 0,
    }
    assert reply["tool_calls"][0]["function"] == {
        "name": "todo_list",
        "arguments": '{"open": true}',
    }
    result = {"role": "tool", "tool_results": [{"tool_call_id": "toolu_1", "content": "renew"}]}
    await fm.append_turn(**at, messages=[{"role": "user", "content": "Open?"}, reply, result])
    page = await fm.get_history(**at)
    assert page.items[1].thinking == ANTHROPIC_REPLY["content"][:2]
    arguments = to_anthropic(page.items)
    validated(ANTHROPIC, arguments["messages"])
    anthropic_rules(arguments["messages"])
    answer = arguments["messages"][1]["content"]
    assert answer[:2] == ANTHROPIC_REPLY["content"][:2]  # first, unchanged
    assert [b["type"] for b in answer[2:]] == ["text", "tool_use"]
    sent = to_openai(page.items)
    assert all("thinking" not in json.dumps(m) for m in sent)
    openai_rules(validated(OPENAI, sent))


def test_the_converters_take_the_dicts_append_turn_takes() -> None:
    turn = [
        {"role": "user", "content": "What is open?"},
        {"role": "assistant", "tool_calls": [call("c1", "todo_list")]},
        {"role": "tool", "tool_results": [{"tool_call_id": "c1", "content": "renew"}]},
        {"role": "assistant", "content": "Renew the passport."},
    ]
    sent = validated(OPENAI, to_openai(turn, system="Be brief."))
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant"]
    anthropic_rules(validated(ANTHROPIC, to_anthropic(turn)["messages"]))
    with pytest.raises(ValidationError) as caught:
        to_openai([{"role": "user", "content": " "}])
    assert caught.value.field == "messages[0].content"
    nan = [
        {
            "role": "assistant",
            "tool_calls": [
                {**call("c", "t"), "function": {"name": "t", "arguments": '{"x": NaN}'}}
            ],
        }
    ]
    with pytest.raises(ValidationError, match="finite"):
        to_anthropic(nan)


class GeminiUsage(BaseModel):
    """Shaped as google-genai's `UsageMetadata`: snake_case fields, camelCase aliases."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)
    prompt_token_count: int | None = None
    cached_content_token_count: int | None = None
    candidates_token_count: int | None = None
    thoughts_token_count: int | None = None


def test_gemini_usage_counts_each_token_once() -> None:
    rest = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 300,
        "candidatesTokenCount": 80,
        "thoughtsTokenCount": 20,
    }
    counted = {
        "input_tokens": 700,
        "cached_input_tokens": 300,
        "cache_write_tokens": 0,
        "output_tokens": 100,
        "reasoning_tokens": 20,
    }
    sdk = GeminiUsage.model_validate(rest)
    assert gemini_usage(rest) == counted
    assert gemini_usage(sdk) == counted
    assert gemini_usage(sdk.model_dump()) == counted  # the snake_case dump
    assert gemini_usage(None) is None
    with pytest.raises(ValidationError, match="usage"):
        gemini_usage("1000 tokens")
