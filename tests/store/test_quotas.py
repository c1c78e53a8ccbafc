"""Tenant limits: one user cannot fill the database. Each create counts the user's rows of
its kind under the user's row lock (a conversation's messages, under the conversation's), so
50 concurrent creators stop exactly at the limit, and the refusal is `QuotaExceeded` (429)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Sequence
from typing import Any

import pytest

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget, Limits, load_settings
from faceplate_models.errors import ConfigError, QuotaExceeded
from faceplate_models.testing import connect

LIMITS = Limits(conversations=20, tasks=20, mcp_configs=5, messages_per_conversation=30)


@pytest.fixture
async def limited(faceplate_db: DatabaseTarget, restore_db: DatabaseTarget) -> None:
    await fm.init_db(
        faceplate_db.url(), settings=dataclasses.replace(load_settings(), limits=LIMITS)
    )


async def outcomes(calls: Sequence[Awaitable[Any]]) -> tuple[int, int]:
    """(stored, refused) of calls run at once; any other error fails the test."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    others = [r for r in results if isinstance(r, BaseException) and r not in refused]
    assert not others, others
    return len(results) - len(refused), len(refused)


@pytest.mark.usefixtures("limited")
async def test_fifty_concurrent_creators_stop_exactly_at_each_limit() -> None:
    ada = await fm.get_or_create_user(subject_id="quota", email="quota@example.com")
    me: dict[str, Any] = {"user_id": ada.id}
    assert await outcomes([fm.create_conversation(**me) for _ in range(50)]) == (20, 30)
    assert await outcomes([fm.add_task(**me, title=f"t{i}") for i in range(50)]) == (20, 30)
    saves = [fm.save_mcp_config(**me, name=f"s{i}", config={}) for i in range(50)]
    assert await outcomes(saves) == (5, 45)
    listed = await fm.list_mcp_configs(**me)
    assert len(listed) == 5
    # At the limit, a config already stored can still be replaced; a new name cannot.
    await fm.save_mcp_config(**me, name=listed[0].name, config={"url": "https://x"})
    with pytest.raises(QuotaExceeded, match="FACEPLATE_MAX_MCP_CONFIGS") as caught:
        await fm.save_mcp_config(**me, name="one more", config={})
    assert "5 mcp configs" in str(caught.value)
    # A retry of a create that was stored is not a new row: the limit does not refuse it.
    tasks = (await fm.list_tasks(**me)).items
    again = await fm.add_task(**me, title=tasks[0].title, task_id=tasks[0].id)
    assert again.id == tasks[0].id
    # Room again after a delete; another user is not counted against this one.
    await fm.delete_task(**me, task_id=tasks[0].id)
    await fm.add_task(**me, title="after a delete")
    bob = await fm.get_or_create_user(subject_id="quota-2", email="quota2@example.com")
    await fm.create_conversation(user_id=bob.id)


@pytest.mark.usefixtures("limited")
async def test_messages_per_conversation_stop_at_the_limit_and_count_deletes(
    faceplate_db: DatabaseTarget,
) -> None:
    ada = await fm.get_or_create_user(subject_id="quota", email="quota@example.com")
    chat = await fm.create_conversation(user_id=ada.id)
    at: dict[str, Any] = {"user_id": ada.id, "conversation_id": chat.id}
    appends = [fm.append_message(**at, role="user", content=f"m{i}") for i in range(50)]
    assert await outcomes(appends) == (30, 20)
    with pytest.raises(QuotaExceeded, match="FACEPLATE_MAX_MESSAGES_PER_CONVERSATION"):
        await fm.append_turn(**at, messages=[{"role": "user", "content": "x"}])
    history = (await fm.get_history(**at)).items
    assert await fm.delete_branch(**at, message_id=history[-2].id) == 2
    assert await outcomes(
        [fm.append_message(**at, role="user", content="n") for _ in range(3)]
    ) == (
        2,
        1,
    )
    # A conversation the previous release wrote has no count yet: it is counted once.
    conn = await connect(faceplate_db)
    try:
        await conn.execute(
            "UPDATE faceplate.conversations SET message_count = NULL WHERE id = $1", chat.id
        )
        with pytest.raises(QuotaExceeded):
            await fm.append_message(**at, role="user", content="over")
        await fm.delete_branch(**at, message_id=(await fm.get_history(**at)).items[-1].id)
        await fm.append_message(**at, role="user", content="counted again")
        count = await conn.fetchval(
            "SELECT message_count FROM faceplate.conversations WHERE id = $1", chat.id
        )
        stored = await conn.fetchval(
            "SELECT count(*) FROM faceplate.messages WHERE conversation_id = $1", chat.id
        )
    finally:
        await conn.close()
    assert count == stored == 30


@pytest.mark.parametrize("variable", sorted(Limits.VARIABLES.values()))
def test_each_limit_is_a_setting_checked_at_load(variable: str) -> None:
    assert load_settings({variable: "7"}).limits != Limits()
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match=variable):
            load_settings({variable: bad})
