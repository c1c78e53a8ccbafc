"""What each answer cost, and budgets that hold: prices in force, exact integer costs, the
rollup, 50 concurrent reservations against one budget, holds that lapse or are given back;
and the application's own data: settings, metadata, its models."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import faceplate_models as fm
from faceplate_models.errors import BudgetExceeded, Conflict, NotFound, ValidationError
from faceplate_models.ids import uuid7
from faceplate_models.store import MAX_METADATA_BYTES

pytestmark = pytest.mark.usefixtures("faceplate_db")

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
# Micro-units per million tokens: $2.50, $1.25, $3.125 and $10 per million.
PRICE = {
    "input": 2_500_000,
    "cached_input": 1_250_000,
    "cache_write": 3_125_000,
    "output": 10_000_000,
}


async def chat(n: int = 0, **options: Any) -> dict[str, Any]:
    user = await fm.get_or_create_user(subject_id=f"usage|{n}", email=f"usage{n}@example.com")
    conversation = await fm.create_conversation(user_id=user.id, **options)
    return {"user_id": user.id, "conversation_id": conversation.id}


def answer(text: str = "Done.", model: str = "gpt-test", **usage: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text,
        "model": model,
        "provider": "openai",
        "finish_reason": "stop",
        "usage": usage,
    }


async def test_an_answer_says_what_it_was_and_what_it_cost() -> None:
    await fm.set_model_price(provider="openai", model="gpt-test", starts_at=LONG_AGO, **PRICE)
    at = await chat()
    usage: dict[str, Any] = {
        "input_tokens": 1234,
        "cached_input_tokens": 100,
        "cache_write_tokens": 8,
        "output_tokens": 567,
        "reasoning_tokens": 67,
        "latency_ms": 812,
    }
    _, stored = await fm.append_turn(
        **at, messages=[{"role": "user", "content": "Go"}, answer(**usage)]
    )
    # 1234 x 2.5 + 100 x 1.25 + 8 x 3.125 + 567 x 10, in micro-units: exact integers.
    assert stored.cost == 3085 + 125 + 25 + 5670
    assert (stored.model, stored.provider, stored.finish_reason) == ("gpt-test", "openai", "stop")
    assert stored.usage == usage
    [_, shown] = (await fm.get_history(**at)).items
    assert (shown.cost, shown.usage, shown.model) == (stored.cost, usage, "gpt-test")
    # Half a micro-unit rounds to the nearest one, away from zero.
    await fm.set_model_price(
        provider="openai", model="gpt-half", starts_at=LONG_AGO, input=1_500_000,
        cached_input=0, cache_write=0, output=0,
    )  # fmt: skip
    [half] = await fm.append_turn(**at, messages=[answer(model="gpt-half", input_tokens=1)])
    assert half.cost == 2


async def test_a_new_price_applies_from_its_start_and_old_answers_keep_theirs() -> None:
    at = await chat()
    await fm.set_model_price(provider="openai", model="gpt-test", starts_at=LONG_AGO, **PRICE)
    [before] = await fm.append_turn(**at, messages=[answer(output_tokens=1000)])
    later = datetime.now(UTC) + timedelta(milliseconds=50)
    await fm.set_model_price(
        provider="openai", model="gpt-test", starts_at=later, **{**PRICE, "output": 20_000_000}
    )
    [still] = await fm.append_turn(**at, messages=[answer(output_tokens=1000)])
    await asyncio.sleep(0.1)
    [after] = await fm.append_turn(**at, messages=[answer(output_tokens=1000)])
    assert (before.cost, still.cost, after.cost) == (10_000, 10_000, 20_000)
    stored = [m.cost for m in (await fm.get_history(**at)).items]
    assert stored == [10_000, 10_000, 20_000]
    # A model with no price in force: no cost, counted as unpriced.
    [free] = await fm.append_turn(**at, messages=[answer(model="unknown", output_tokens=5)])
    assert free.cost is None
    [by_model] = [
        u
        for u in await fm.usage_summary(user_id=at["user_id"], since=LONG_AGO, by="model")
        if u.key == ("openai", "unknown")
    ]
    assert (by_model.answers, by_model.unpriced, by_model.cost) == (1, 1, 0)


async def test_money_is_refused_as_a_float_or_below_zero() -> None:
    for field, value in (
        ("input", 2.5),
        ("output", -1),
        ("cached_input", True),
        ("cache_write", 10**13),
    ):
        with pytest.raises(ValidationError) as caught:
            await fm.set_model_price(
                provider="p",
                model="m",
                starts_at=LONG_AGO,
                **{**PRICE, field: value},  # type: ignore[arg-type]
            )
        assert caught.value.field == field
    at = await chat()
    for bad in (
        {"input_tokens": -1},
        {"input_tokens": 1.0},
        {"tokens": 3},
        {"output_tokens": 1, "reasoning_tokens": 2},
    ):
        with pytest.raises(ValidationError) as caught:
            await fm.append_turn(**at, messages=[answer(**bad)])
        assert caught.value.field == "messages[0].usage"
    with pytest.raises(ValidationError, match="only an assistant"):
        await fm.append_message(**at, role="user", content="hi", model="m")
    with pytest.raises(ValidationError):
        await fm.set_budget(user_id=at["user_id"], period="week", limit=1)  # type: ignore[arg-type]


async def test_the_summary_reads_the_rollup_by_day_model_and_conversation() -> None:
    await fm.set_model_price(provider="openai", model="gpt-test", starts_at=LONG_AGO, **PRICE)
    first = await chat()
    user = first["user_id"]
    second = {"user_id": user, "conversation_id": (await fm.create_conversation(user_id=user)).id}
    await fm.append_turn(**first, messages=[answer(output_tokens=100), answer(output_tokens=200)])
    await fm.append_turn(**second, messages=[answer(model="gpt-other", output_tokens=7)])
    [today] = await fm.usage_summary(user_id=user, since=date.today() - timedelta(days=1))
    assert today.key == datetime.now(UTC).date()
    assert (today.answers, today.output_tokens, today.cost, today.unpriced) == (3, 307, 3000, 1)
    by_model = await fm.usage_summary(user_id=user, since=LONG_AGO, by="model")
    assert [(u.key, u.answers) for u in by_model] == [
        (("openai", "gpt-test"), 2),
        (("openai", "gpt-other"), 1),
    ]
    by_conversation = await fm.usage_summary(user_id=user, since=LONG_AGO, by="conversation")
    assert [u.key for u in by_conversation] == [first["conversation_id"], second["conversation_id"]]
    # What was spent stays spent: deleting the conversation does not give it back.
    await fm.delete_conversation(**first)
    by_conversation = await fm.usage_summary(user_id=user, since=LONG_AGO, by="conversation")
    assert by_conversation[0].key == first["conversation_id"] and by_conversation[0].cost == 3000
    # Another user sees nothing of it; an empty window is empty.
    stranger = await chat(1)
    assert await fm.usage_summary(user_id=stranger["user_id"], since=LONG_AGO) == []
    assert (
        await fm.usage_summary(user_id=user, since=date(2021, 1, 1), until=date(2021, 2, 1)) == []
    )


async def test_fifty_concurrent_answers_never_take_a_budget_past_its_limit() -> None:
    # Each answer costs exactly what it reserved: 50 micro-units.
    await fm.set_model_price(
        provider="openai", model="gpt-test", starts_at=LONG_AGO,
        input=0, cached_input=0, cache_write=0, output=1_000_000,
    )  # fmt: skip
    at = await chat()
    user = at["user_id"]
    await fm.set_budget(user_id=user, period="month", limit=1000)
    await fm.set_budget(user_id=user, period="day", limit=5000)

    async def one(n: int) -> bool:
        try:
            hold = await fm.reserve(user_id=user, estimate=50)
        except BudgetExceeded:
            return False
        conversation = await fm.create_conversation(user_id=user)
        await fm.append_turn(
            user_id=user,
            conversation_id=conversation.id,
            messages=[{"role": "user", "content": f"q{n}"}, answer(output_tokens=50)],
            hold=hold,
        )
        return True

    results = await asyncio.gather(*(one(n) for n in range(50)))
    assert results.count(True) == 20  # 1000 / 50
    [month] = await fm.usage_summary(user_id=user, since=LONG_AGO, by="model")
    stored = await fm.Message.filter(user_id=user, cost__not_isnull=True)
    assert month.cost == sum(m.cost or 0 for m in stored) == 1000
    assert await fm.Hold.filter(user_id=user).count() == 0  # every hold settled
    with pytest.raises(BudgetExceeded, match="month budget of 1000") as refused:
        await fm.reserve(user_id=user, estimate=1)
    assert "1000 spent" in str(refused.value)


async def test_a_hold_lapses_after_its_ttl_and_release_gives_it_back() -> None:
    at = await chat()
    user = at["user_id"]
    await fm.set_budget(user_id=user, period="day", limit=100)
    hold = await fm.reserve(user_id=user, estimate=100)
    with pytest.raises(BudgetExceeded):
        await fm.reserve(user_id=user, estimate=1)
    await fm.release(user_id=user, hold=hold)
    with pytest.raises(NotFound):
        await fm.release(user_id=user, hold=hold)
    await fm.reserve(user_id=user, estimate=100, ttl=0.3)  # a worker that crashes
    await asyncio.sleep(0.4)
    await fm.reserve(user_id=user, estimate=100)  # the crashed worker's hold has lapsed
    # Another user's hold is not theirs to release; a removed budget limits nothing.
    stranger = await chat(1)
    with pytest.raises(NotFound):
        await fm.release(user_id=stranger["user_id"], hold=hold.id)
    assert await fm.set_budget(user_id=user, period="day", limit=None) is None
    await fm.reserve(user_id=user, estimate=10**9)


async def test_a_reservation_retried_with_its_key_holds_the_money_once() -> None:
    at = await chat()
    user = at["user_id"]
    await fm.set_budget(user_id=user, period="day", limit=100)
    key = uuid7()
    first = await fm.reserve(user_id=user, estimate=60, hold_id=key)
    again = await fm.reserve(user_id=user, estimate=60, hold_id=key)  # after OutcomeUnknown
    assert first.id == again.id == key
    await fm.reserve(user_id=user, estimate=40)  # 60 held, not 120: room for 40 more
    with pytest.raises(ValidationError):
        await fm.reserve(user_id=user, estimate=1, hold_id=uuid.uuid4())


async def test_settings_and_metadata_are_the_applications_own() -> None:
    settings = {"model": "gpt-test", "system_prompt": "Answer in French.", "mcp_servers": ["todo"]}
    at = await chat(settings=settings, metadata={"source": "web"})
    conversation = await fm.get_conversation(**at)
    assert conversation.settings == settings and conversation.metadata == {"source": "web"}
    [listed] = (await fm.list_conversations(user_id=at["user_id"])).items
    assert listed.settings == settings
    # Merged key by key, or replaced; neither is activity.
    merged = await fm.update_conversation(**at, metadata={"pinned_by": "ada"})
    assert merged.metadata == {"source": "web", "pinned_by": "ada"}
    assert merged.updated_at == conversation.updated_at
    replaced = await fm.update_conversation(**at, metadata={"only": 1}, replace_metadata=True)
    assert replaced.metadata == {"only": 1} and replaced.settings == settings
    big = {"k": "x" * (MAX_METADATA_BYTES // 2)}
    await fm.update_conversation(**at, metadata=big, replace_metadata=True)
    with pytest.raises(ValidationError, match="merged") as caught:
        await fm.update_conversation(**at, metadata={"j": "y" * (MAX_METADATA_BYTES // 2)})
    assert caught.value.field == "metadata"
    assert (await fm.get_conversation(**at)).metadata == big  # nothing written
    with pytest.raises(ValidationError):
        await fm.update_conversation(**at, settings={"temperature": 2})
    # A message's metadata, set when it is stored.
    message = await fm.append_message(**at, role="user", content="hi", metadata={"ip": "1.2.3.4"})
    assert (await fm.get_history(**at)).items[0].metadata == message.metadata == {"ip": "1.2.3.4"}


async def test_a_page_carries_the_system_prompt_whatever_its_window() -> None:
    at = await chat(settings={"system_prompt": "Be brief."})
    assert (await fm.get_history(**at)).system == "Be brief."  # the first call of a chat
    for n in range(5):
        await fm.append_turn(**at, messages=[{"role": "user", "content": f"q{n}"}, answer()])
    newest = await fm.get_history(**at, limit=3)
    older = await fm.get_history(**at, limit=3, before=newest.next_cursor)
    assert newest.system == older.system == "Be brief."
    await fm.update_conversation(**at, settings=None)
    assert (await fm.get_history(**at, limit=3)).system is None


async def test_a_users_blank_message_is_refused() -> None:
    at = await chat()
    for blank in ("", "   \n", None):
        with pytest.raises(ValidationError) as caught:
            await fm.append_message(**at, role="user", content=blank)
        assert caught.value.field == "content"


async def test_a_repeated_turn_with_other_usage_is_a_conflict() -> None:
    at = await chat()
    turn_id = uuid.uuid4()
    await fm.append_turn(**at, messages=[answer(output_tokens=1)], turn_id=turn_id)
    await fm.append_turn(**at, messages=[answer(output_tokens=1)], turn_id=turn_id)
    with pytest.raises(Conflict):
        await fm.append_turn(**at, messages=[answer(output_tokens=2)], turn_id=turn_id)
