"""Arbitrary and hostile input: an exact round trip, or a `ValidationError` at a bounded cost.

Never a driver error, never another exception: everything PostgreSQL or the JSON encoder
would refuse is caught before any SQL runs, and an oversized value is rejected while it is
walked, before its encoded form exists.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import time
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import faceplate_models as fm
from faceplate_models import store
from faceplate_models.config import DatabaseTarget
from faceplate_models.errors import Conflict, NotFound, SignInRequired, ValidationError
from faceplate_models.ids import uuid7

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
# What a hostile or careless caller passes anywhere: odd numbers, bytes, sets, non-string
# keys, huge integers Python cannot even print, objects of any kind, nested all the ways.
huge_ints = st.builds(lambda e, s: s * 10**e, st.integers(4000, 12000), st.sampled_from([1, -1]))
odd_scalars = (
    json_scalars
    | huge_ints
    | st.binary(max_size=50)
    | st.uuids()
    | st.datetimes()
    | st.decimals(allow_nan=True)
    | st.complex_numbers()
    | st.just(object())
    | st.just(Ellipsis)
    | st.just(-0.0)
)
# Nesting far past the cap, where Python's own recursion limit would be the first to refuse.
very_deep = st.integers(900, 5000).map(lambda d: _nest(d))
hostile = st.recursive(
    odd_scalars | very_deep,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.sets(st.integers(), max_size=3)
        | st.frozensets(st.text(max_size=3), max_size=3)
        | st.dictionaries(any_text | st.integers() | st.none() | st.booleans(), inner, max_size=4)
    ),
    max_leaves=12,
)


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


@PROPERTY
@given(content=any_text | huge_text)
async def test_any_text_round_trips_or_is_rejected(chat: tuple[Any, Any], content: str) -> None:
    user_id, conversation_id = chat
    try:
        stored = await fm.append_message(
            user_id=user_id, conversation_id=conversation_id, role="user", content=content
        )
    except ValidationError:
        return
    [fetched] = (
        await fm.get_history(user_id=user_id, conversation_id=conversation_id, limit=1)
    ).items
    assert (fetched.id, fetched.content) == (stored.id, content)


@PROPERTY
@given(value=json_values | deep_json)
async def test_any_json_round_trips_or_is_rejected(chat: tuple[Any, Any], value: Any) -> None:
    user_id, _ = chat
    try:
        await fm.save_mcp_config(user_id=user_id, name="json", config={"value": value})
    except ValidationError:
        return
    fetched = await fm.get_mcp_config(user_id=user_id, name="json")
    assert fetched.config == {"value": value}


@PROPERTY
@given(call_id=any_text, arguments=st.dictionaries(any_text, json_values, max_size=3))
async def test_any_tool_call_round_trips_or_is_rejected(
    chat: tuple[Any, Any], call_id: str, arguments: dict[str, Any]
) -> None:
    user_id, _ = chat
    conversation = await fm.create_conversation(user_id=user_id)
    try:
        encoded = json.dumps(arguments)
    except (ValueError, UnicodeError):
        return  # not text a model could have produced
    calls = [{"id": call_id, "type": "function", "function": {"name": "t", "arguments": encoded}}]
    try:
        stored = await fm.append_message(
            user_id=user_id, conversation_id=conversation.id, role="assistant", tool_calls=calls
        )
    except ValidationError:
        return
    [fetched] = (await fm.get_history(user_id=user_id, conversation_id=conversation.id)).items
    assert fetched.id == stored.id and fetched.tool_calls == calls


# --- every argument of every function ----------------------------------------------------


def valid_calls(
    user_id: uuid.UUID, conversation_id: uuid.UUID, task_id: uuid.UUID
) -> dict[str, dict[str, Any]]:
    """Arguments each store function accepts, by function name (and, after a comma, a
    second set for the same function)."""
    at = {"user_id": user_id, "conversation_id": conversation_id}
    result = {"tool_call_id": "open", "content": "x"}
    return {
        "get_or_create_user": {"subject_id": "hostile", "email": "hostile@example.com"},
        "get_user": {"user_id": user_id},
        "get_user_by_subject": {"subject_id": "hostile"},
        "delete_user": {"user_id": uuid7(), "revoke": _revoked},
        "create_conversation": {
            "user_id": user_id,
            "title": "t",
            "settings": {"model": "m", "system_prompt": "be brief", "mcp_servers": ["todo"]},
            "metadata": {"k": "v"},
            "conversation_id": None,
            "temporary": False,
        },
        "update_conversation": {
            **at,
            "settings": {"model": "m"},
            "metadata": {"k": 1},
            "replace_metadata": False,
        },
        "get_conversation": at,
        "list_conversations": {
            "user_id": user_id,
            "limit": 5,
            "cursor": None,
            "archived": None,
            "folder_id": None,
            "tag_id": uuid7(),
            "pinned_first": True,
            "trashed": False,
        },
        "rename_conversation": {**at, "title": "t"},
        "delete_conversation": {
            "user_id": user_id,
            "conversation_id": uuid7(),
            "permanently": False,
        },
        "restore_conversation": {"user_id": user_id, "conversation_id": uuid7()},
        "organise_conversation": {
            **at,
            "archived": True,
            "pinned": False,
            "folder_id": None,
            "tag_ids": [],
        },
        "create_folder": {"user_id": user_id, "name": "f", "folder_id": None},
        "list_folders": {"user_id": user_id},
        "rename_folder": {"user_id": user_id, "folder_id": uuid7(), "name": "g"},
        "delete_folder": {"user_id": user_id, "folder_id": uuid7()},
        "create_tag": {"user_id": user_id, "name": "t", "tag_id": None},
        "list_tags": {"user_id": user_id},
        "rename_tag": {"user_id": user_id, "tag_id": uuid7(), "name": "u"},
        "delete_tag": {"user_id": user_id, "tag_id": uuid7()},
        "search_messages": {
            "user_id": user_id,
            "query": "word",
            "limit": 5,
            "cursor": None,
            "conversation_id": conversation_id,
        },
        "share_conversation": {**at, "leaf": None, "live": True},
        "update_share": {"user_id": user_id, "share_id": uuid7(), "leaf": None},
        "revoke_share": {"user_id": user_id, "share_id": uuid7()},
        "list_shares": {"user_id": user_id, "limit": 5, "cursor": None},
        "get_shared": {"token": "A" * 32, "limit": 5, "before": None},
        "rate_message": {
            "user_id": user_id,
            "message_id": uuid7(),
            "rating": 1,
            "reasons": ["wrong"],
            "comment": "c",
        },
        "list_feedback": {
            "since": datetime(2026, 1, 1, tzinfo=UTC),
            "rating": None,
            "limit": 5,
            "cursor": None,
        },
        "purge_expired": {"retention": None, "batch": 10, "at": datetime(2026, 1, 1, tzinfo=UTC)},
        "append_message": {
            **at,
            "role": "user",
            "content": "x",
            "tool_calls": None,
            "after": None,
            "metadata": {"k": "v"},
            "hold": None,
            "message_id": None,
        },
        "append_message, an answer": {
            **at,
            "role": "assistant",
            "content": "x",
            "model": "m",
            "provider": "p",
            "finish_reason": "stop",
            "usage": {"input_tokens": 1, "output_tokens": 2},
            "thinking": [{"type": "thinking", "thinking": "t", "signature": "s"}],
        },
        "append_turn": {
            **at,
            "messages": [{"role": "user", "content": "x"}],
            "turn_id": None,
            "after": None,
            "hold": None,
        },
        "check_turn": {**at, "messages": [{"role": "user", "content": "x"}], "after": None},
        "get_turn": {**at, "turn_id": uuid7()},
        "edit_message": {
            **at,
            "message_id": uuid7(),
            "content": "x",
            "turn_id": None,
            "metadata": None,
        },
        "set_model_price": {
            "provider": "p",
            "model": "m",
            "starts_at": datetime(2026, 1, 1, tzinfo=UTC),
            "input": 1,
            "cached_input": 1,
            "cache_write": 1,
            "output": 1,
        },
        "usage_summary": {
            "user_id": user_id,
            "since": date(2026, 1, 1),
            "until": None,
            "by": "model",
        },
        "set_budget": {"user_id": user_id, "period": "day", "limit": 10},
        "reserve": {"user_id": user_id, "estimate": 1, "ttl": 60, "hold_id": None},
        "release": {"user_id": user_id, "hold": uuid7()},
        "regenerate": {**at, "message_id": uuid7(), "limit": 5},
        "get_siblings": {**at, "message_id": uuid7()},
        "switch_branch": {**at, "message_id": uuid7()},
        "delete_branch": {**at, "message_id": uuid7()},
        "get_tree": {**at, "limit": 5, "cursor": None},
        "get_history": {**at, "limit": 5, "before": None, "after": None, "leaf": None},
        "list_open_tool_calls": {**at, "limit": 5, "leaf": None},
        "read_client": {"user_id": user_id},
        "save_mcp_config": {
            "user_id": user_id,
            "name": "n",
            "config": {},
            "enabled": True,
            "secrets": {"a": "b"},
        },
        "get_mcp_config": {"user_id": user_id, "name": "n", "reveal_secrets": True},
        "list_mcp_configs": {"user_id": user_id, "enabled": None, "reveal_secrets": True},
        "delete_mcp_config": {"user_id": user_id, "name": "missing"},
        "import_mcp_servers": {"user_id": user_id, "document": {"servers": {}}},
        "add_task": {"user_id": user_id, "title": "t", "description": None, "task_id": None},
        "get_task": {"user_id": user_id, "task_id": task_id},
        "list_tasks": {"user_id": user_id, "completed": None, "limit": 5, "cursor": None},
        "update_task": {
            "user_id": user_id,
            "task_id": task_id,
            "title": "t",
            "description": None,
            "completed": False,
        },
        "complete_task": {"user_id": user_id, "task_id": task_id},
        "delete_task": {"user_id": user_id, "task_id": uuid7()},
        "append_message, tool results": {**at, "role": "tool", "tool_results": [result]},
        "start_reply": {
            **at,
            "after": None,
            "turn_id": None,
            "model": "m",
            "provider": "p",
            "metadata": {"k": "v"},
            "flush_ms": 250,
            "flush_bytes": 1024,
        },
        "get_mcp_grant": {"user_id": user_id, "name": "n"},
        "save_mcp_grant": {
            "user_id": user_id,
            "name": "n",
            "generation": 0,
            "access_token": "a",
            "refresh_token": "r",
            "token_type": "Bearer",
            "scope": None,
            "expires_in": 60,
        },
        "refresh_mcp_grant": {
            "user_id": user_id,
            "name": "n",
            "refresh": _refreshed,
            "lease_seconds": 5.0,
        },
        "get_mcp_client": {"server": "https://a.example", "redirect_uri": "r", "metadata": {}},
        "save_mcp_client": {
            "server": "https://a.example",
            "redirect_uri": "r",
            "metadata": {},
            "client_info": {"client_id": "c"},
            "issuer": None,
        },
        "begin_mcp_sign_in": {
            "user_id": user_id,
            "name": "n",
            "state": "s",
            "code_verifier": "v" * 43,
            "seconds": 60,
        },
        "complete_mcp_sign_in": {"user_id": user_id, "state": "s"},
        "import_conversations": {"user_id": user_id, "source": b"[]"},
    }


async def _revoked(name: str, tokens: Any) -> None:
    return None


async def _refreshed(tokens: Any) -> dict[str, Any]:
    return {"access_token": "fresh", "expires_in": 60}


def test_every_store_function_is_covered() -> None:
    functions = {n for n in store.__all__ if inspect.iscoroutinefunction(getattr(store, n))}
    calls = valid_calls(uuid7(), uuid7(), uuid7())
    assert functions == {n for n in calls if "," not in n}
    for name in functions:  # and every argument of each
        parameters = set(inspect.signature(getattr(store, name)).parameters)
        covered = {
            a for label, kwargs in calls.items() if label.split(",")[0] == name for a in kwargs
        }
        assert parameters == covered, name


@pytest.fixture(scope="module")
async def world(chat: tuple[Any, Any]) -> dict[str, dict[str, Any]]:
    user_id, conversation_id = chat
    task = await fm.add_task(user_id=user_id, title="target")
    await fm.append_message(
        user_id=user_id,
        conversation_id=conversation_id,
        role="assistant",
        tool_calls=[
            {"id": "open", "type": "function", "function": {"name": "t", "arguments": "{}"}}
        ],
    )
    return valid_calls(user_id, conversation_id, task.id)


CALLS = sorted(
    (name, argument)
    for name, kwargs in valid_calls(uuid7(), uuid7(), uuid7()).items()
    for argument in kwargs
)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=st.sampled_from(CALLS), value=hostile)
async def test_every_argument_of_every_function_takes_anything(
    world: dict[str, dict[str, Any]], target: tuple[str, str], value: Any
) -> None:
    label, argument = target
    function: Callable[..., Awaitable[Any]] = getattr(fm, label.split(",")[0])
    kwargs = {**world[label], argument: value}
    # Refused before any SQL, or a well-formed call about rows that are not there.
    try:
        await function(**kwargs)
    except ValidationError as exc:
        _carries_nothing(exc)
    except (NotFound, Conflict, SignInRequired):
        pass


def _carries_nothing(exc: ValidationError) -> None:
    """A refusal holds no exception of the parser's, which would hold the input."""
    assert exc.__cause__ is None and exc.__context__ is None, repr(exc.__context__)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(user_id=hostile | st.uuids(), token=hostile)
def test_the_consistency_functions_take_anything(user_id: Any, token: Any) -> None:
    with contextlib.suppress(ValidationError):
        fm.read_after(user_id=user_id, token=token)
    with contextlib.suppress(ValidationError):
        assert fm.consistency_token(user_id=user_id) is None  # no replicas here


# --- what a rejection costs ---------------------------------------------------------------

BIG = 200_000_000


@pytest.mark.parametrize(
    "make",
    [
        lambda: "x" * BIG,
        lambda: ["x"] * (BIG // 8),
        lambda: [{"k": ["a" * 1000] * 1000}] * 200,
        lambda: {"c": "é" * (BIG // 2)},
    ],
    ids=["a 200 MB string", "a 25-million-item list", "200 MB of nesting", "a 200 MB value"],
)
async def test_rejecting_a_huge_value_costs_little(
    chat: tuple[Any, Any], make: Callable[[], Any]
) -> None:
    user_id, _ = chat
    value = make()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ValidationError, match=r"larger than|characters long"):
            await fm.save_mcp_config(user_id=user_id, name="huge", config={"v": value})
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\nrejected in {elapsed * 1000:.1f} ms, allocating at most {peak / 1e6:.2f} MB")
    assert peak < 10_000_000
    assert elapsed < 1.0


async def test_hostile_values_named_by_the_issue(chat: tuple[Any, Any]) -> None:
    user_id, conversation_id = chat
    at = {"user_id": user_id, "conversation_id": conversation_id}
    cases: list[tuple[str, Awaitable[Any]]] = [
        (
            "tool_results",
            fm.append_message(
                **at, role="tool", tool_results=[{"tool_call_id": "open", "content": 10**5000}]
            ),
        ),
        ("email", fm.get_or_create_user(subject_id="i", email="İ" * 300 + "@example.com")),
        ("config", fm.save_mcp_config(user_id=user_id, name="n", config={"n": Decimal("1.5")})),
        ("config", fm.save_mcp_config(user_id=user_id, name="n", config={"n": 2**20000})),
        ("limit", fm.list_tasks(user_id=user_id, limit=10**100)),
        ("cursor", fm.list_tasks(user_id=user_id, cursor="A" * 10_000_000)),
        ("user_id", fm.get_user(user_id="0" * 100_000_000)),
    ]
    for field, call in cases:
        with pytest.raises(ValidationError) as caught:
            await call
        assert caught.value.field == field


async def test_what_does_not_round_trip_is_documented(chat: tuple[Any, Any]) -> None:
    """JSONB keeps numbers as decimals: -0.0 has no sign there (the guide says so)."""
    user_id, _ = chat
    await fm.save_mcp_config(user_id=user_id, name="zero", config={"z": -0.0, "big": 2**80})
    fetched = await fm.get_mcp_config(user_id=user_id, name="zero")
    assert fetched.config == {"z": 0.0, "big": 2**80}
    assert str(fetched.config["z"]) == "0.0"


def _deep_text(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


async def test_any_nesting_anywhere_is_refused_at_little_cost(chat: tuple[Any, Any]) -> None:
    """Nesting past every recursion limit (Python's, the JSON parser's, PostgreSQL's) in each
    place a caller hands over JSON, as values or as text: a `ValidationError` naming the
    field, quickly, never a RecursionError."""
    user_id, conversation_id = chat
    at = {"user_id": user_id, "conversation_id": conversation_id}
    deep = _nest(100_000)

    def call(arguments: str) -> list[dict[str, Any]]:
        return [{"id": "c", "type": "function", "function": {"name": "t", "arguments": arguments}}]

    cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        (
            "tool_results",
            lambda: fm.append_message(
                **at, role="tool", tool_results=[{"tool_call_id": "open", "content": deep}]
            ),
        ),
        (
            "tool_results",
            lambda: fm.append_message(
                **at, role="tool", tool_results=[{"tool_call_id": "open", "content": [deep]}]
            ),
        ),
        (
            "tool_calls",
            lambda: fm.append_message(**at, role="assistant", tool_calls=call(_deep_text(100_000))),
        ),
        (
            "messages[0].tool_calls",
            lambda: fm.append_turn(
                **at, messages=[{"role": "assistant", "tool_calls": call(_deep_text(5000))}]
            ),
        ),
        (
            "document",
            lambda: fm.import_mcp_servers(
                user_id=user_id,
                document=(
                    '{"servers": {"s": {"command": "x", "env": ' + _deep_text(100_000) + "}}}"
                ),
            ),
        ),
        (
            "document",
            lambda: fm.import_mcp_servers(
                user_id=user_id, document={"servers": {"s": {"command": "x", "env": deep}}}
            ),
        ),
        ("metadata", lambda: fm.create_conversation(user_id=user_id, metadata={"k": deep})),
        ("config", lambda: fm.save_mcp_config(user_id=user_id, name="d", config={"k": deep})),
    ]
    for field, make in cases:
        started = time.perf_counter()
        with pytest.raises(ValidationError) as caught:
            await make()
        assert (caught.value.field, time.perf_counter() - started < 1.0) == (field, True)
        _carries_nothing(caught.value)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "[1, NaN]"])
async def test_non_finite_numbers_in_arguments_are_refused(
    chat: tuple[Any, Any], number: str
) -> None:
    """Python's parser takes them, strict parsers (and so the model APIs) refuse them."""
    user_id, conversation_id = chat
    arguments = '{"x": ' + number + "}"
    calls = [{"id": "nan", "type": "function", "function": {"name": "t", "arguments": arguments}}]
    with pytest.raises(ValidationError) as caught:
        await fm.append_message(
            user_id=user_id, conversation_id=conversation_id, role="assistant", tool_calls=calls
        )
    assert caught.value.field == "tool_calls"
    _carries_nothing(caught.value)


async def test_a_refused_import_does_not_keep_its_secrets(chat: tuple[Any, Any]) -> None:
    """An unreadable document's text (its tokens) is not reachable from the error."""
    user_id, _ = chat
    document = '{"servers": {"s": {"command": "x", "env": {"TOKEN": "sk-live-secret"}}'
    with pytest.raises(ValidationError) as caught:
        await fm.import_mcp_servers(user_id=user_id, document=document)
    _carries_nothing(caught.value)
    assert "sk-live-secret" not in repr(caught.value.__dict__) + str(caught.value)
