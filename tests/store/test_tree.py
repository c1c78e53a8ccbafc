"""Conversations as trees, as a chat backend drives them: edit, regenerate, "< 2/3 >",
branches that race, paths paged both ways, deleting a branch, tool calls along paths, and
what the ORM may do to messages."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from tortoise.exceptions import IntegrityError

import faceplate_models as fm
from faceplate_models.errors import NotFound, ValidationError

pytestmark = pytest.mark.usefixtures("faceplate_db")


def call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "t", "arguments": "{}"}}


def result(call_id: str) -> dict[str, Any]:
    return {"tool_call_id": call_id, "content": "ok"}


async def chat(n: int = 0) -> dict[str, Any]:
    user = await fm.get_or_create_user(subject_id=f"tree|{n}", email=f"tree{n}@example.com")
    conversation = await fm.create_conversation(user_id=user.id)
    return {"user_id": user.id, "conversation_id": conversation.id}


async def path(at: dict[str, Any], **options: Any) -> list[str | None]:
    return [m.content for m in (await fm.get_history(**at, **options)).items]


async def say(at: dict[str, Any], *texts: str, **options: Any) -> list[fm.Message]:
    roles = ["user", "assistant"]
    messages = [{"role": roles[i % 2], "content": text} for i, text in enumerate(texts)]
    return await fm.append_turn(**at, messages=messages, **options)


async def test_edit_regenerate_and_switch_as_a_chat_client_does() -> None:
    at = await chat()
    _, a1 = await say(at, "Plan a trip", "Lyon?")
    q2, a2 = await say(at, "By train", "TGV, 2 h")

    # Edit the second question: a sibling, the new active leaf; the old branch stays.
    q2b = await fm.edit_message(**at, message_id=q2.id, content="By bike")
    assert q2b.parent_id == a1.id == q2.parent_id
    assert await path(at) == ["Plan a trip", "Lyon?", "By bike"]
    [*_, shown] = (await fm.get_history(**at)).items
    assert (shown.sibling_index, shown.sibling_count) == (2, 2)
    assert await fm.get_siblings(**at, message_id=q2.id) == [q2.id, q2b.id]

    # Answer it, then regenerate the answer: the old answer is never resent.
    [b1] = await fm.append_turn(**at, messages=[{"role": "assistant", "content": "3 days"}])
    asked, history = await fm.regenerate(**at, message_id=b1.id)
    assert asked.id == q2b.id
    assert [m.content for m in history.items] == ["Plan a trip", "Lyon?", "By bike"]
    again = [{"role": "assistant", "content": "2 days, downhill"}]
    [b2] = await fm.append_turn(**at, messages=again, after=asked.id)
    assert b2.parent_id == q2b.id
    page = await fm.get_history(**at)
    assert [(m.content, m.sibling_index, m.sibling_count) for m in page.items] == [
        ("Plan a trip", 1, 1),
        ("Lyon?", 1, 1),
        ("By bike", 2, 2),
        ("2 days, downhill", 2, 2),
    ]

    # "<" on the question: the newest leaf under the first version.
    assert await fm.switch_branch(**at, message_id=q2.id) == a2.id
    assert await path(at) == ["Plan a trip", "Lyon?", "By train", "TGV, 2 h"]
    # The conversation's place in the listing is not activity.
    before = await fm.get_conversation(**at)
    assert await fm.switch_branch(**at, message_id=q2b.id) == b2.id
    assert (await fm.get_conversation(**at)).updated_at == before.updated_at
    # An append follows the active leaf.
    await say(at, "Thanks")
    assert (await path(at))[-2:] == ["2 days, downhill", "Thanks"]
    # Any message ends a path of its own.
    assert await path(at, leaf=a1.id) == ["Plan a trip", "Lyon?"]


async def test_the_first_message_can_be_edited_and_roots_count_as_siblings() -> None:
    at = await chat()
    [q] = await say(at, "Hello")
    q2 = await fm.edit_message(**at, message_id=q.id, content="Hi")
    assert q2.parent_id is None and q2.depth == 0
    [shown] = (await fm.get_history(**at)).items
    assert (shown.content, shown.sibling_index, shown.sibling_count) == ("Hi", 2, 2)
    assert await fm.get_siblings(**at, message_id=q2.id) == [q.id, q2.id]


async def test_only_a_users_message_is_edited_and_only_an_answer_regenerated() -> None:
    at = await chat()
    q, a = await say(at, "Question", "Answer")
    with pytest.raises(ValidationError, match="regenerate") as edited:
        await fm.edit_message(**at, message_id=a.id, content="x")
    assert edited.value.field == "message_id"
    with pytest.raises(ValidationError, match="edit_message"):
        await fm.regenerate(**at, message_id=q.id)
    other = await chat(1)
    for function in (fm.edit_message, fm.regenerate, fm.switch_branch, fm.delete_branch):
        kwargs: dict[str, Any] = {"content": "x"} if function is fm.edit_message else {}
        with pytest.raises(NotFound):  # another user's message is a missing one
            await function(**other, message_id=a.id, **kwargs)


async def test_appends_racing_on_one_leaf_land_one_after_the_other() -> None:
    at = await chat()
    await say(at, "start")
    stored = await asyncio.gather(
        *(fm.append_message(**at, role="user", content=f"m{n}") for n in range(12))
    )
    page = (await fm.get_history(**at)).items
    assert len(page) == 13 and {m.id for m in stored} <= {m.id for m in page}
    assert all(m.sibling_count == 1 for m in page)
    assert [m.depth for m in page] == list(range(13))


async def test_branches_racing_after_one_message_become_siblings() -> None:
    at = await chat()
    [q] = await say(at, "Question")
    answers = await asyncio.gather(
        *(fm.append_message(**at, role="assistant", content=f"a{n}", after=q.id) for n in range(6))
    )
    assert sorted(await fm.get_siblings(**at, message_id=q.id)) == [q.id]
    siblings = await fm.get_siblings(**at, message_id=answers[0].id)
    assert sorted(siblings) == sorted(a.id for a in answers) and siblings == sorted(siblings)
    newest = max(answers, key=lambda m: (m.created_at, m.id))
    [*_, shown] = (await fm.get_history(**at)).items
    assert shown.id == newest.id and shown.sibling_count == 6
    assert shown.sibling_index == siblings.index(shown.id) + 1


async def test_a_long_path_with_many_branches_pages_both_ways() -> None:
    at = await chat()
    main: list[fm.Message] = []
    for n in range(60):
        main += await say(at, f"q{n}", f"a{n}")
        if n % 5 == 0:  # a regenerated answer, then back to the main line
            await fm.append_message(**at, role="assistant", content=f"alt{n}", after=main[-2].id)
            await fm.switch_branch(**at, message_id=main[-1].id)
    expected = [m.content for m in main]
    assert await path(at, limit=1000) == expected

    seen: list[str | None] = []
    before = None
    while True:
        page = await fm.get_history(**at, limit=7, before=before)
        seen[:0] = [m.content for m in page.items]
        if page.next_cursor is None:
            break
        before = page.next_cursor
    assert seen == expected
    by_content = {m.content: m for m in (await fm.get_history(**at, limit=1000)).items}
    assert by_content["a10"].sibling_count == 2 and by_content["a11"].sibling_count == 1

    # Forward from the start, as a client that reconnects catches up.
    first = await fm.get_history(**at, limit=1000)
    oldest = await fm.get_history(**at, limit=3, leaf=main[2].id)
    forward: list[str | None] = [m.content for m in oldest.items]
    after = oldest.after_cursor
    while after is not None:
        page = await fm.get_history(**at, limit=11, after=after)
        forward += [m.content for m in page.items]
        after = page.next_cursor
    assert forward == expected == [m.content for m in first.items]


async def test_a_forward_cursor_off_the_active_path_is_refused() -> None:
    at = await chat()
    q, _ = await say(at, "q", "a")
    page = await fm.get_history(**at)
    await fm.edit_message(**at, message_id=q.id, content="q2")
    with pytest.raises(ValidationError, match="not on this path") as caught:
        await fm.get_history(**at, after=page.after_cursor)
    assert caught.value.field == "after"


async def test_delete_branch_moves_the_leaf_and_takes_the_tool_calls() -> None:
    at = await chat()
    [q] = await say(at, "q")
    keep = await fm.append_turn(
        **at,
        messages=[
            {"role": "assistant", "tool_calls": [call("c1")]},
            {"role": "tool", "tool_results": [result("c1")]},
            {"role": "assistant", "content": "kept"},
        ],
    )
    gone = await fm.append_turn(
        **at,
        after=q.id,
        messages=[
            {"role": "assistant", "tool_calls": [call("c1")]},  # the same id, another branch
            {"role": "tool", "tool_results": [result("c1")]},
            {"role": "assistant", "content": "gone"},
        ],
    )
    assert await fm.ToolCall.filter(call_id="c1").count() == 2
    assert await fm.delete_branch(**at, message_id=gone[0].id) == 3
    assert await path(at) == ["q", None, None, "kept"]
    assert (await fm.get_conversation(**at)).active_leaf_id == keep[-1].id
    assert await fm.ToolCall.filter(call_id="c1").count() == 1
    # Deleting the first message empties the conversation.
    assert await fm.delete_branch(**at, message_id=q.id) == 4
    assert await path(at) == []
    with pytest.raises(NotFound):
        await fm.delete_branch(**at, message_id=q.id)


async def test_delete_branch_keeps_a_leaf_outside_it() -> None:
    at = await chat()
    [q] = await say(at, "q")
    [a1] = await fm.append_turn(**at, messages=[{"role": "assistant", "content": "a1"}])
    [a2] = await fm.append_turn(**at, messages=[{"role": "assistant", "content": "a2"}], after=q.id)
    await fm.switch_branch(**at, message_id=a1.id)
    assert await fm.delete_branch(**at, message_id=a2.id) == 1
    assert await path(at) == ["q", "a1"]


async def test_tool_calls_pair_along_their_own_path() -> None:
    at = await chat()
    [q] = await say(at, "Look it up")
    [made] = await fm.append_turn(
        **at, messages=[{"role": "assistant", "tool_calls": [call("call_0")]}]
    )
    assert [c.call_id for c in await fm.list_open_tool_calls(**at)] == ["call_0"]
    # A regenerated answer numbers its calls from call_0 again, on its own branch.
    [again] = await fm.append_turn(
        **at, after=q.id, messages=[{"role": "assistant", "tool_calls": [call("call_0")]}]
    )
    open_here = await fm.list_open_tool_calls(**at)
    assert [(c.call_id, c.message_id) for c in open_here] == [("call_0", again.id)]
    open_there = await fm.list_open_tool_calls(**at, leaf=made.id)
    assert [(c.call_id, c.message_id) for c in open_there] == [("call_0", made.id)]
    # A result answers the call on its own path only.
    [answer] = await fm.append_turn(
        **at, messages=[{"role": "tool", "tool_results": [result("call_0")]}]
    )
    assert await fm.list_open_tool_calls(**at) == []
    assert len(await fm.list_open_tool_calls(**at, leaf=made.id)) == 1
    stored = await fm.ToolCall.get(message_id=again.id)
    assert stored.result_message_id == answer.id
    assert (await fm.ToolCall.get(message_id=made.id)).result_message_id is None
    # Once answered, an id may be used again on the same path.
    await fm.append_message(**at, role="assistant", tool_calls=[call("call_0")])
    # Across the user's conversations, only active paths count.
    assert [c.call_id for c in await fm.list_open_tool_calls(user_id=at["user_id"])] == ["call_0"]


async def test_check_turn_validates_as_append_turn_and_writes_nothing() -> None:
    at = await chat()
    [q] = await say(at, "q")
    await fm.append_message(**at, role="assistant", tool_calls=[call("c")])
    ok = [{"role": "tool", "tool_results": [result("c")]}]
    await fm.check_turn(**at, messages=ok)  # valid: no error
    with pytest.raises(ValidationError, match="answers no tool call open") as caught:
        await fm.check_turn(**at, messages=ok, after=q.id)  # on that branch nothing is open
    assert caught.value.field == "tool_results"
    assert "Key (" not in str(caught.value) and "constraint" not in str(caught.value)
    with pytest.raises(NotFound):
        await fm.check_turn(**at, messages=ok, after=uuid.uuid4())
    assert len((await fm.get_history(**at)).items) == 2


async def test_the_tree_view_pages_every_message() -> None:
    at = await chat()
    [q, _] = await say(at, "q", "a")
    await fm.edit_message(**at, message_id=q.id, content="q2")
    nodes: list[fm.TreeNode] = []
    cursor = None
    while True:
        page = await fm.get_tree(**at, limit=2, cursor=cursor)
        nodes += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert [(n.parent_id, n.role) for n in nodes] == [
        (None, "user"),
        (q.id, "assistant"),
        (None, "user"),
    ]


async def test_what_the_orm_may_and_may_not_do_to_messages() -> None:
    at = await chat()
    [q] = await say(at, "q")
    made, answered = await fm.append_turn(
        **at,
        messages=[
            {"role": "assistant", "tool_calls": [call("c")]},
            {"role": "tool", "tool_results": [result("c")]},
        ],
    )
    # A message with replies cannot be deleted alone: the tree would have a hole.
    with pytest.raises(IntegrityError):
        await fm.Message.filter(id=made.id).delete()
    # A leaf can: its answer gone, the call is unanswered again, in the table and on the path.
    await fm.Message.filter(id=answered.id).delete()
    assert (await fm.ToolCall.get(message_id=made.id)).result_message_id is None
    assert [c.call_id for c in await fm.list_open_tool_calls(**at)] == ["c"]
    # The call goes with the message that made it.
    await fm.Message.filter(id=made.id).delete()
    assert await fm.ToolCall.filter(conversation_id=at["conversation_id"]).count() == 0
    assert await path(at) == ["q"]
    assert q.id == (await fm.get_history(**at)).items[0].id
