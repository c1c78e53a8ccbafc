"""Live replies: stored as they are written, seen while they grow, kept through a crash, and
never written by a stale writer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from typing import Any

import pytest
from tortoise import connections

import faceplate_models as fm
from faceplate_models.errors import NotFound, ReplyClosed, ValidationError
from faceplate_models.store import replies

pytestmark = pytest.mark.usefixtures("faceplate_db")


async def chat(n: int = 1) -> tuple[fm.User, fm.Conversation, dict[str, Any]]:
    person = await fm.get_or_create_user(subject_id=f"live|{n}", email=f"l{n}@example.com")
    conversation = await fm.create_conversation(user_id=person.id)
    at: dict[str, Any] = {"user_id": person.id, "conversation_id": conversation.id}
    await fm.append_message(**at, role="user", content="Tell me about Canberra.")
    return person, conversation, at


async def rows(sql: str, *args: object) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await connections.get("default").execute_query_dict(
        sql, list(args)
    )
    return result


@pytest.fixture
def quick() -> Any:
    """Replies that time out in 2 s, so that a silent writer is seen within a test."""
    before = replies._settings
    replies.use(fm.config.Streaming(timeout_s=2, poll_ms=50))
    yield
    replies.use(before)


async def test_a_reply_is_seen_growing_and_finishes_once() -> None:
    ada, conversation, at = await chat()
    reply = await fm.start_reply(**at, flush_bytes=8)
    page = await fm.get_history(**at)
    assert page.items[-1].id == reply.message_id
    assert page.items[-1].status == "streaming" and page.items[-1].content == ""
    await reply.write("Canberra ")  # 9 bytes: flushed at once
    await reply.write("is the")  # waits for the next flush
    page = await fm.get_history(**at)
    assert page.items[-1].content == "Canberra "
    await reply.flush()
    page = await fm.get_history(**at)
    assert page.items[-1].content == "Canberra is the"
    before = (await fm.get_conversation(user_id=ada.id, conversation_id=conversation.id)).updated_at
    done = await reply.finish(
        content="Canberra is the capital.",
        model="m-1",
        finish_reason="stop",
        usage={"input_tokens": 10, "output_tokens": 6},
    )
    assert done.content == "Canberra is the capital." and done.status is None
    assert done.model == "m-1" and done.usage is not None
    after = (await fm.get_conversation(user_id=ada.id, conversation_id=conversation.id)).updated_at
    assert after > before  # the end of a reply is activity
    page = await fm.get_history(**at)
    assert page.items[-1].content == "Canberra is the capital." and page.items[-1].status is None
    assert await rows("SELECT * FROM faceplate.reply_chunks") == []  # the deltas are gone
    [summary] = await fm.usage_summary(user_id=ada.id, since=after, by="conversation")
    assert (summary.key, summary.answers, summary.output_tokens) == (conversation.id, 1, 6)
    with pytest.raises(ReplyClosed, match="ended"):
        await reply.write("more")
    assert await reply.finish() == done  # a finished handle answers with what it stored


async def test_the_final_text_must_extend_what_followers_saw() -> None:
    _, _, at = await chat()
    reply = await fm.start_reply(**at)
    await reply.write("Sydney")
    with pytest.raises(ValidationError, match="content"):
        await reply.finish(content="Canberra")
    done = await reply.finish()
    assert done.content == "Sydney"


async def test_a_follower_sees_every_piece_then_the_end() -> None:
    _, _, at = await chat()
    reply = await fm.start_reply(**at, flush_bytes=1)
    received: list[str] = []

    async def follow() -> None:
        async for piece in fm.follow_reply(user_id=at["user_id"], message_id=reply.message_id):
            received.append(piece)

    follower = asyncio.create_task(follow())
    for word in ("Canberra ", "is ", "the ", "capital"):
        await reply.write(word)
        await asyncio.sleep(0.02)
    await reply.finish(content="Canberra is the capital.", model="m-1")
    await asyncio.wait_for(follower, 10)
    assert "".join(received) == "Canberra is the capital."
    # A reconnecting reader resumes from what it has.
    rest = [
        p
        async for p in fm.follow_reply(user_id=at["user_id"], message_id=reply.message_id, after=9)
    ]
    assert "".join(rest) == "is the capital."


async def test_tool_calls_streamed_after_the_text_pair_with_their_results() -> None:
    _, _, at = await chat()
    reply = await fm.start_reply(**at)
    await reply.write("Let me look.")
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    done = await reply.finish(tool_calls=[call], model="m-1", finish_reason="tool_calls")
    assert done.tool_calls == [call]
    opened = await fm.list_open_tool_calls(**at)
    assert [c.call_id for c in opened] == ["c1"]
    await fm.append_message(
        **at, role="tool", tool_results=[{"tool_call_id": "c1", "content": "9°C"}]
    )
    assert await fm.list_open_tool_calls(**at) == []


async def test_a_failed_reply_keeps_its_text_and_reason() -> None:
    _, _, at = await chat()
    async with await fm.start_reply(**at) as reply:
        await reply.write("Canberra is")
        await reply.fail("provider overloaded (529)")
    page = await fm.get_history(**at)
    last = page.items[-1]
    assert (last.status, last.content, last.failure) == (
        "failed",
        "Canberra is",
        "provider overloaded (529)",
    )
    second = await fm.start_reply(**at)

    async def broken_stream() -> None:
        async with second:
            await second.write("partial")
            raise RuntimeError("the model's stream broke")

    with pytest.raises(RuntimeError):
        await broken_stream()
    page = await fm.get_history(**at)
    assert page.items[-1].status == "failed" and "stream broke" in (page.items[-1].failure or "")


async def test_a_retried_request_takes_over_and_the_stale_writer_is_refused() -> None:
    _, _, at = await chat()
    turn = uuid.uuid4()
    first = await fm.start_reply(**at, turn_id=turn)
    await first.write("Sydney")
    await first.flush()
    second = await fm.start_reply(**at, turn_id=turn)
    assert second.message_id != first.message_id
    with pytest.raises(ReplyClosed, match="taken over"):
        await first.write("x" * 2000)
    with pytest.raises(ReplyClosed):
        await first.finish()
    await second.write("Canberra")
    done = await second.finish()
    # Both attempts are siblings; the first kept its text, marked interrupted.
    siblings = await fm.get_siblings(**at, message_id=done.id)
    assert siblings == [first.message_id, done.id]
    found = await rows(
        "SELECT content, status FROM faceplate.messages WHERE id = ANY($1) ORDER BY id", siblings
    )
    assert found == [
        {"content": "Sydney", "status": "interrupted"},
        {"content": "Canberra", "status": None},
    ]
    # A retry after the turn finished takes nothing over: it is told the answer.
    third = await fm.start_reply(**at, turn_id=turn)
    assert third.done and third.message.id == done.id
    assert await third.finish() == third.message


@pytest.mark.usefixtures("quick")
async def test_a_silent_writer_is_interrupted_its_text_kept() -> None:
    _, _, at = await chat()
    reply = await fm.start_reply(**at, flush_bytes=1)
    await reply.write("Canberra")
    writer = reply._writer
    reply._close()  # the process hangs: no beat, no text
    received = [
        p async for p in fm.follow_reply(user_id=at["user_id"], message_id=reply.message_id)
    ]
    assert "".join(received) == "Canberra"
    page = await fm.get_history(**at)
    assert (page.items[-1].status, page.items[-1].content) == ("interrupted", "Canberra")
    # The same writer, come back after the timeout (a process that was paused), is refused.
    late = replies.ReplyWriter(
        reply.message,
        user_id=at["user_id"],
        writer=writer,
        settings=replies._settings,
        flush_ms=250,
        flush_bytes=1,
    )
    with pytest.raises(ReplyClosed):
        await late.write("more")


@pytest.mark.usefixtures("quick")
async def test_a_writer_that_beats_stays_alive_while_silent() -> None:
    _, _, at = await chat()
    reply = await fm.start_reply(**at)
    await reply.write("thinking")
    await asyncio.sleep(3)  # past the 2 s timeout: the handle beat meanwhile
    done = await reply.finish()
    assert done.content == "thinking" and done.status is None


async def test_bad_input_is_refused_before_any_sql() -> None:
    _, _, at = await chat()
    with pytest.raises(ValidationError, match="flush_ms"):
        await fm.start_reply(**at, flush_ms=0)
    with pytest.raises(ValidationError, match="turn_id"):
        await fm.start_reply(**at, turn_id="nope")
    with pytest.raises(ValidationError, match="after"):
        [p async for p in fm.follow_reply(user_id=at["user_id"], message_id=uuid.uuid4(), after=-1)]
    reply = await fm.start_reply(**at)
    with pytest.raises(ValidationError, match="text"):
        await reply.write(7)  # type: ignore[arg-type]
    bob = await fm.get_or_create_user(subject_id="live|bob", email="bob@example.com")
    with pytest.raises(NotFound):
        [p async for p in fm.follow_reply(user_id=bob.id, message_id=reply.message_id)]
    with pytest.raises(NotFound):
        await fm.start_reply(user_id=bob.id, conversation_id=at["conversation_id"])
    await reply.finish()


async def wal_bytes(work: Any) -> int:
    """The WAL `work` writes, counted from a checkpoint (both sides pay their full pages)."""
    db = connections.get("default")
    await db.execute_script("CHECKPOINT")
    [start] = await rows("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint AS n")
    await work()
    [end] = await rows("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint AS n")
    return int(end["n"]) - int(start["n"])


async def test_a_streamed_reply_writes_at_most_two_and_a_half_times_the_wal_of_its_text() -> None:
    _, _, at = await chat()
    # Incompressible text: random bytes as hex, 8 KB a reply, written 40 characters at a time
    # and flushed every kilobyte, as a model's stream is.
    texts = [os.urandom(4096).hex() for _ in range(50)]

    async def streamed() -> None:
        for body in texts:
            reply = await fm.start_reply(**at, flush_bytes=1024, flush_ms=60_000)
            for i in range(0, len(body), 40):
                await reply.write(body[i : i + 40])
            await reply.finish(model="m-1", finish_reason="stop")

    async def once() -> None:
        for body in texts:
            await fm.append_message(**at, role="assistant", content=body, model="m-1")

    stream, single = await wal_bytes(streamed), await wal_bytes(once)
    ratio = stream / single
    print(f"\nWAL, 50 replies of 8 KB: streamed {stream:,} B, once {single:,} B: {ratio:.2f}x")
    assert ratio <= 2.5


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    import faceplate_models as fm

    async def main():
        await fm.init_db(sys.argv[1])
        reply = await fm.start_reply(
            user_id=sys.argv[2], conversation_id=sys.argv[3], flush_bytes=1
        )
        await reply.write("Canberra is the capital")
        print(reply.message_id, flush=True)
        await asyncio.sleep(3600)  # killed here, mid-stream

    asyncio.run(main())
    """
)


async def test_a_reply_survives_its_writer_being_killed(
    faceplate_database: fm.config.DatabaseTarget,
) -> None:
    _, _, at = await chat()
    env = os.environ | {"FACEPLATE_REPLY_TIMEOUT": "2"}
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            faceplate_database.url(),
            str(at["user_id"]),
            str(at["conversation_id"]),
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert child.stdout is not None
        message_id = uuid.UUID(child.stdout.readline().decode().strip())
        page = await fm.get_history(**at)
        assert (page.items[-1].status, page.items[-1].content) == (
            "streaming",
            "Canberra is the capital",
        )
        started = time.monotonic()
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        received = [p async for p in fm.follow_reply(user_id=at["user_id"], message_id=message_id)]
    finally:
        child.kill()
    assert "".join(received) == "Canberra is the capital"
    assert time.monotonic() - started < 10  # found within its timeout, not hung on it
    page = await fm.get_history(**at)
    assert (page.items[-1].status, page.items[-1].content) == (
        "interrupted",
        "Canberra is the capital",
    )
    # The conversation goes on after it.
    await fm.append_message(**at, role="user", content="And Sydney?")


@pytest.mark.usefixtures("quick")
async def test_purge_marks_silent_replies_interrupted() -> None:
    _, _, at = await chat()
    reply = await fm.start_reply(**at, flush_bytes=1)
    await reply.write("half an answer")
    reply._close()
    await asyncio.sleep(2.2)
    purged = await fm.purge_expired()
    assert purged.interrupted_replies == 1 and purged.total == 0
    found = await rows(
        "SELECT content, status FROM faceplate.messages WHERE id = $1", reply.message_id
    )
    assert found == [{"content": "half an answer", "status": "interrupted"}]
    assert await rows("SELECT * FROM faceplate.reply_chunks") == []


async def test_writes_racing_the_timed_flushes_lose_nothing() -> None:
    _, _, at = await chat()
    reply = await fm.start_reply(**at, flush_ms=10, flush_bytes=100)
    pieces = [f"{n:03d}," for n in range(300)]
    for n, piece in enumerate(pieces):
        await reply.write(piece)
        if n % 7 == 0:
            await asyncio.sleep(0.004)  # the ticker flushes meanwhile
    await reply.flush()
    page = await fm.get_history(**at)
    assert page.items[-1].content == "".join(pieces)
    done = await reply.finish()
    assert done.content == "".join(pieces)


async def test_a_follower_goes_on_when_its_listening_connection_is_killed() -> None:
    _, _, at = await chat()
    reply = await fm.start_reply(**at, flush_bytes=1)
    received: list[str] = []

    async def follow() -> None:
        async for piece in fm.follow_reply(user_id=at["user_id"], message_id=reply.message_id):
            received.append(piece)

    follower = asyncio.create_task(follow())
    await reply.write("before ")
    for _ in range(100):  # the follower is listening
        await asyncio.sleep(0.02)
        if received:
            break
    [listening] = await rows(
        """SELECT pid FROM pg_stat_activity
           WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"""
    )
    await rows("SELECT pg_terminate_backend($1)", listening["pid"])
    await reply.write("after")
    await reply.finish()
    await asyncio.wait_for(follower, 10)  # read again on its bound, without notifications
    assert "".join(received) == "before after"
