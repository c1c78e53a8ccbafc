"""Live replies: an assistant's answer stored as it is written, read while it grows.

`start_reply` appends the assistant message at once, marked 'streaming', with a `replies`
row that names its one writer (the handle) and how long that writer counts as alive. The
handle's `write` buffers text and stores it as deltas (`reply_chunks`, one row per flush,
never a rewrite of the message), at least every `flush_ms` or `flush_bytes`; each flush
also beats. `finish` writes the final message once, in one transaction with its tool
calls, usage and the conversation's activity, and drops the deltas; `fail` keeps the text
so far with the reason. A writer that stops beating for `timeout_s` is interrupted: its
text is kept, and whoever notices first (a follower, a retry taking over, `purge`) marks
it. Every write names its writer and how much it has stored, so a stale writer (the reply
ended, was taken over by a `start_reply` with the same `turn_id`, or timed out) is refused
with `ReplyClosed`, and a flush retried after a lost connection is not stored twice.

Readers: `get_history` shows a streaming message with its text so far and its `status`;
`follow_reply` yields new text as it lands, woken by NOTIFY (each flush notifies the
reply's channel) or, behind a transaction pooler, by reading again every `poll_ms`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Final

import asyncpg

from faceplate_models.config import Streaming
from faceplate_models.engine import Connection, FaceplateClient, current, texts
from faceplate_models.errors import FaceplateError, NotFound, ReplyClosed, ValidationError
from faceplate_models.formats.shape import Draft
from faceplate_models.ids import uuid7
from faceplate_models.models import Message, ReplyStatus, Role
from faceplate_models.store._rows import execute, fetchrow, locking, missing, now, run, write_row
from faceplate_models.store.messages import (
    COLUMNS,
    _after,
    _append,
    _hold,
    cost_sql,
    messages_of,
    money_sql,
)
from faceplate_models.validation import MAX_TEXT_CHARS, as_uuid, text, whole_number

# The settings `init_db` installed; the defaults until then.
_settings = Streaming()


def use(settings: Streaming) -> None:
    """Install how replies are flushed, timed out and followed (`init_db` does)."""
    global _settings
    _settings = settings


STREAMING: Final = ReplyStatus.STREAMING.value

# The deltas of messages `ended` names become its text, and are dropped; `{status}` says why.
_SETTLE = """, settled AS (
        UPDATE faceplate.messages m SET status = 'interrupted', content = (
            SELECT string_agg(c.text, '' ORDER BY c.at) FROM faceplate.reply_chunks c
            WHERE c.message_id = m.id)
        FROM ended WHERE m.id = ended.message_id AND m.status = 'streaming'
    ), dropped AS (
        DELETE FROM faceplate.reply_chunks c USING ended WHERE c.message_id = ended.message_id
    )"""
#: What a page of history shows of a message: a streaming one's text so far, and as
#: 'interrupted' one whose writer has fallen silent (before anyone marks it).
LIVE_CONTENT: Final = """CASE WHEN m.status = 'streaming' THEN array_to_string(ARRAY(
        SELECT c.text FROM faceplate.reply_chunks c WHERE c.message_id = m.id ORDER BY c.at
    ), '') ELSE m.content END"""
LIVE_STATUS: Final = """CASE WHEN m.status = 'streaming' AND NOT EXISTS (
        SELECT 1 FROM faceplate.replies r
        WHERE r.message_id = m.id AND r.live_until > clock_timestamp())
    THEN 'interrupted' ELSE m.status END"""

# The newest attempt at a turn: $1 conversation, $2 turn, $3 user.
_ATTEMPT_SQL: Final = f"""SELECT {", ".join(f"m.{c}" for c in COLUMNS.split(", "))}
    FROM faceplate.replies r JOIN faceplate.messages m ON m.id = r.message_id
    WHERE r.conversation_id = $1 AND r.turn_id = $2 AND r.user_id = $3
    ORDER BY r.created_at DESC LIMIT 1"""
# The reply's row, with the turn's earlier attempts taken over (interrupted, their text kept):
# $1 message, $2 user, $3 conversation, $4 turn, $5 writer, $6 the timeout in seconds.
_BEGIN_SQL: Final = f"""WITH ended AS (
        UPDATE faceplate.replies SET live_until = NULL
        WHERE conversation_id = $3 AND turn_id = $4 AND user_id = $2 AND message_id <> $1
          AND live_until IS NOT NULL
        RETURNING message_id
    ){_SETTLE}
    INSERT INTO faceplate.replies
        (message_id, user_id, conversation_id, turn_id, writer, length, live_until, created_at)
    VALUES ($1, $2, $3, $4, $5, 0, clock_timestamp() + $6 * interval '1 second',
            clock_timestamp())
    ON CONFLICT (message_id) DO NOTHING"""
# A flush: $1 message, $2 user, $3 writer, $4 the characters stored so far, $5 the text and
# $6 its characters, $7 the timeout in seconds, $8 the channel, $9 the chunk's id. No row:
# refused.
FLUSH_SQL: Final = """WITH r AS (
        UPDATE faceplate.replies
        SET length = length + $6, live_until = clock_timestamp() + $7 * interval '1 second'
        WHERE message_id = $1 AND user_id = $2 AND writer = $3 AND length = $4
          AND live_until > clock_timestamp()
        RETURNING message_id
    ), c AS (
        INSERT INTO faceplate.reply_chunks (id, message_id, at, text)
        SELECT $9, $1, $4, $5 FROM r
    )
    SELECT pg_notify($8, '') FROM r"""
_BEAT_SQL: Final = """UPDATE faceplate.replies
    SET live_until = clock_timestamp() + $4 * interval '1 second'
    WHERE message_id = $1 AND user_id = $2 AND writer = $3 AND live_until > clock_timestamp()"""
# Why a write was refused, or that its earlier attempt landed: $1 message, $2 user.
_STATE_SQL: Final = """SELECT r.writer, r.length, r.live_until IS NULL AS ended,
        r.live_until <= clock_timestamp() AS silent, m.status, m.failure
    FROM faceplate.replies r JOIN faceplate.messages m ON m.id = r.message_id
    WHERE r.message_id = $1 AND r.user_id = $2"""
# The conversation's row locked (the order every append takes), and the reply's place:
# $1 message, $2 user.
_LOCK_SQL: Final = """SELECT c.id AS conversation_id, c.updated_at, m.open_calls,
        EXISTS (SELECT 1 FROM faceplate.messages k WHERE k.parent_id = m.id AND k.user_id = $2)
            AS answered
    FROM faceplate.conversations c JOIN faceplate.messages m ON m.conversation_id = c.id
    WHERE m.id = $1 AND m.user_id = $2 AND c.user_id = $2
    FOR NO KEY UPDATE OF c"""
_END_PARAMETERS: Final = 19


def _end_sql(money: bool) -> str:
    """The end of a reply, one statement: $1 conversation, $2 user, $3 the time, $4 the
    message, $5 the writer, $6-$13 its content, tool calls, model, provider, finish reason,
    usage, thinking and metadata, $14 the calls open after it (JSON) and $15 their number,
    $16, $17 the ids of its calls' rows and its call ids, $18 its status (None: complete)
    and $19 the failure; with `money`, the hold and usage rows from $20 (`money_sql`)."""
    cost = f"CASE WHEN m.usage IS NOT NULL THEN {cost_sql('$3')} END" if money else "NULL"
    settles = money_sql(_END_PARAMETERS + 1) if money else ""
    return f"""WITH ended AS (
        UPDATE faceplate.replies SET live_until = NULL
        WHERE message_id = $4 AND user_id = $2 AND writer = $5
          AND live_until > clock_timestamp()
        RETURNING message_id
    ), new_messages AS (
        UPDATE faceplate.messages AS t SET content = $6, tool_calls = $7::jsonb,
            model = m.model, provider = m.provider, finish_reason = $10, usage = m.usage,
            cost = {cost}, thinking = $12::jsonb, metadata = $13::jsonb,
            open_calls = $14::jsonb, status = $18, failure = $19
        FROM (SELECT $11::jsonb AS usage, $9::text AS provider, $8::text AS model) m, ended
        WHERE t.id = ended.message_id AND t.user_id = $2
        RETURNING {", ".join(f"t.{c}" for c in COLUMNS.split(", "))}
    ), new_calls AS (
        INSERT INTO faceplate.tool_calls
            (id, conversation_id, user_id, call_id, message_id, result_message_id, created_at)
        SELECT c.id, $1, $2, c.call_id, $4, NULL, $3
        FROM unnest($16::text[]::uuid[], $17::text[]) AS c(id, call_id)
        WHERE EXISTS (SELECT 1 FROM new_messages)
    ), dropped AS (
        DELETE FROM faceplate.reply_chunks
        WHERE message_id = $4 AND EXISTS (SELECT 1 FROM new_messages)
    ), touched AS (
        UPDATE faceplate.conversations SET updated_at = $3,
            open_calls = CASE WHEN active_leaf_id = $4 THEN $15 ELSE open_calls END
        WHERE id = $1 AND user_id = $2 AND EXISTS (SELECT 1 FROM new_messages){settles}
    )
    SELECT {COLUMNS} FROM new_messages"""


END_SQL: Final = {money: _end_sql(money) for money in (False, True)}
# What a follower reads: $1 message, $2 user, $3 the characters it has.
FOLLOW_SQL: Final = """SELECT m.status, r.live_until > clock_timestamp() AS live,
        extract(epoch FROM r.live_until - clock_timestamp()) AS left_s,
        CASE WHEN m.status = 'streaming' THEN (
            SELECT string_agg(CASE WHEN c.at < $3 THEN substr(c.text, $3 - c.at + 1)
                                   ELSE c.text END, '' ORDER BY c.at)
            FROM faceplate.reply_chunks c
            WHERE c.message_id = m.id AND c.at + char_length(c.text) > $3)
        ELSE substr(m.content, $3 + 1) END AS text
    FROM faceplate.messages m LEFT JOIN faceplate.replies r ON r.message_id = m.id
    WHERE m.id = $1 AND m.user_id = $2"""
# Interrupt replies whose writers fell silent: one ($1, of user $2), or a batch of $1.
_INTERRUPT_ONE_SQL: Final = f"""WITH ended AS (
        UPDATE faceplate.replies SET live_until = NULL
        WHERE message_id = $1 AND user_id = $2 AND live_until <= clock_timestamp()
        RETURNING message_id
    ){_SETTLE}
    SELECT count(*) FROM ended"""
INTERRUPT_SQL: Final = f"""WITH ended AS (
        UPDATE faceplate.replies SET live_until = NULL
        WHERE message_id IN (
            SELECT m.id FROM faceplate.messages m JOIN faceplate.replies r ON r.message_id = m.id
            WHERE m.status = 'streaming' AND r.live_until <= clock_timestamp() LIMIT $1
            FOR UPDATE OF r SKIP LOCKED)
        RETURNING message_id
    ){_SETTLE}
    SELECT count(*) FROM ended"""


def channel(message_id: uuid.UUID) -> str:
    """The NOTIFY channel of a reply's flushes."""
    return f"faceplate_reply_{message_id.hex}"


class ReplyWriter:
    """The writer of one live reply, from `start_reply`: `write` its text as it comes,
    then `finish` or `fail` it. As an async context manager, an exception inside the block
    fails the reply with the exception's type as the reason; a block that ends without
    `finish` fails it too ("ended without finish")."""

    def __init__(
        self,
        message: Message,
        *,
        user_id: uuid.UUID,
        writer: uuid.UUID | None,
        settings: Streaming,
        flush_ms: int,
        flush_bytes: int,
    ) -> None:
        self.message = message
        self._uid = user_id
        self._writer = writer
        self._timeout = settings.timeout_s
        self._flush_s = flush_ms / 1000
        self._flush_bytes = flush_bytes
        self._written: list[str] = []  # everything written, for the final text
        self._chars = 0
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._stored = 0  # characters stored as deltas
        self._last = time.monotonic()
        self._lock = asyncio.Lock()
        self._failure: BaseException | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        if writer is not None:
            self._ticker = asyncio.get_running_loop().create_task(
                _tick(weakref.ref(self), self._wake)
            )

    @property
    def message_id(self) -> uuid.UUID:
        return uuid.UUID(str(self.message.id))

    @property
    def done(self) -> bool:
        """Whether the reply has ended: finished, failed, or found finished by a retry."""
        return self._writer is None

    @property
    def text(self) -> str:
        """Everything this handle has written."""
        return "".join(self._written)

    async def write(self, text_: str) -> None:
        """Add text; it is stored once `flush_bytes` of it wait or `flush_ms` have passed."""
        self._check_open()
        piece = text("text", text_, MAX_TEXT_CHARS)
        if self._chars + len(piece) > MAX_TEXT_CHARS:
            raise ValidationError("text", f"the reply would pass {MAX_TEXT_CHARS} characters")
        if not piece:
            return
        self._written.append(piece)
        self._chars += len(piece)
        if not self._pending:
            self._wake.set()  # the ticker counts `flush_ms` from now
        self._pending.append(piece)
        self._pending_bytes += len(piece.encode("utf-8", "surrogatepass"))
        if self._pending_bytes >= self._flush_bytes:
            await self.flush()

    async def flush(self) -> None:
        """Store what waits now (a beat, when nothing does)."""
        self._check_open()
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        assert self._writer is not None  # noqa: S101 - checked by every caller
        self._last = time.monotonic()
        if not self._pending:
            status = await execute(
                _BEAT_SQL, self.message_id, self._uid, self._writer, self._timeout, user=self._uid
            )
            if status == "UPDATE 0":
                await self._refused()
            return
        # What waits now: a write may add more while this flush is on its way.
        count = len(self._pending)
        piece = "".join(self._pending[:count])
        mid, writer = self.message_id, self._writer
        rows = await run(
            lambda conn: conn.fetch(
                FLUSH_SQL,
                mid,
                self._uid,
                writer,
                self._stored,
                piece,
                len(piece),
                self._timeout,
                channel(mid),
                uuid7(),
            ),
            user=self._uid,
        )
        if not rows and not await self._landed(len(piece)):
            await self._refused()
        self._stored += len(piece)
        del self._pending[:count]
        self._pending_bytes -= len(piece.encode("utf-8", "surrogatepass"))

    async def _landed(self, chars: int) -> bool:
        """Whether a flush that came back empty was an earlier attempt's, which landed."""
        row = await fetchrow(_STATE_SQL, self.message_id, self._uid, user=self._uid)
        return bool(
            row is not None
            and row["writer"] == self._writer
            and row["length"] == self._stored + chars
            and not row["ended"]
        )

    async def _refused(self) -> None:
        row = await fetchrow(_STATE_SQL, self.message_id, self._uid, user=self._uid)
        self._close()
        if row is None:
            raise NotFound(
                f"reply {self.message_id} is gone (its branch or conversation was deleted)"
            )
        if row["writer"] != self._writer or (row["ended"] and row["status"] == "interrupted"):
            why = "taken over by another start_reply for the same turn, or interrupted"
        elif row["ended"]:
            why = f"already {row['status'] or 'finished'}"
        else:
            why = f"interrupted: its writer was silent for more than {self._timeout} s"
        raise ReplyClosed(f"reply {self.message_id} refuses this writer: {why}")

    def _check_open(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        if self._writer is None:
            raise ReplyClosed(f"reply {self.message_id} has ended: nothing more can be written")

    async def _due(self) -> float:
        """Flush (and beat) if it is time; the seconds until it is next time."""
        due = self._flush_s if self._pending else self._timeout / 3
        wait = self._last + due - time.monotonic()
        if wait <= 0:
            async with self._lock:
                if self._writer is not None:
                    await self._flush()
            wait = self._flush_s if self._pending else self._timeout / 3
        return wait

    def _close(self) -> None:
        self._writer = None
        if self._ticker is not None and self._ticker is not asyncio.current_task():
            self._ticker.cancel()

    async def finish(
        self,
        *,
        content: str | None = None,
        tool_calls: list[dict[str, Any]] | None = None,
        model: str | None = None,
        provider: str | None = None,
        finish_reason: str | None = None,
        usage: Mapping[str, int] | None = None,
        thinking: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        hold: Any = None,
    ) -> Message:
        """Store the final message, once: `content` (None: the text written; given, it must
        begin with it, which followers have seen) and what the answer was, as
        `append_message` takes them; `hold` settles a budget's hold. The conversation's
        activity moves. Returns the message as stored."""
        if self._writer is None and self.message.status is None and self._failure is None:
            return self.message  # a retried request's handle, found finished
        self._check_open()
        written = self.text
        final = written if content is None else content
        if content is not None and not content.startswith(written):
            raise ValidationError(
                "content", "must begin with the text written, which followers have seen already"
            )
        draft = Draft(
            {
                "role": Role.ASSISTANT,
                "content": final if final or not tool_calls else None,
                "tool_calls": tool_calls,
                "model": model if model is not None else self.message.model,
                "provider": provider if provider is not None else self.message.provider,
                "finish_reason": finish_reason,
                "usage": usage,
                "thinking": thinking,
                "metadata": metadata if metadata is not None else self.message.metadata,
            }
        )
        return await self._end(draft, None, None, _hold(hold))

    async def fail(self, reason: str) -> Message:
        """End the reply as failed, with `reason` stored and the text written kept."""
        self._check_open()
        why = text("reason", reason, 2000, strip=True)
        draft = Draft(
            {
                "role": Role.ASSISTANT,
                "content": self.text,
                "model": self.message.model,
                "provider": self.message.provider,
                "metadata": self.message.metadata,
            }
        )
        return await self._end(draft, ReplyStatus.FAILED.value, why, None)

    async def _end(
        self, draft: Draft, status: str | None, failure: str | None, hold: uuid.UUID | None
    ) -> Message:
        assert self._writer is not None  # noqa: S101 - checked by _check_open
        async with self._lock:
            client = current()
            mid, uid, writer = self.message_id, self._uid, self._writer
            money = draft.usage is not None or hold is not None

            async def end(conn: Connection) -> asyncpg.Record | None:
                async with client.atomic(conn):
                    row = await locking(conn, _LOCK_SQL, mid, uid)
                    if row is None:
                        raise missing("reply", mid)
                    opens = dict(json.loads(row["open_calls"] or "{}"))
                    for call in draft.calls:
                        if call in opens:
                            raise ValidationError(
                                "tool_calls", f"call id {call!r} is still open on this branch"
                            )
                        opens[call] = str(mid)
                    if draft.calls and row["answered"]:
                        raise ValidationError(
                            "tool_calls",
                            "the reply has messages after it: its calls would be "
                            "answered out of order",
                        )
                    at = max(now(), row["updated_at"] + timedelta(microseconds=1))
                    values: tuple[object, ...] = (
                        row["conversation_id"],
                        uid,
                        at,
                        mid,
                        writer,
                        draft.content,
                        draft.tool_calls,
                        draft.model,
                        draft.provider,
                        draft.finish_reason,
                        draft.usage_json,
                        draft.thinking,
                        draft.metadata,
                        json.dumps(opens) if opens else None,
                        len(opens),
                        texts(uuid7() for _ in draft.calls),
                        list(draft.calls),
                        status,
                        failure,
                    )
                    if money:
                        answered = [(draft.provider or "", draft.model)] if draft.usage else []
                        values += (
                            hold,
                            texts(uuid7() for _ in answered),
                            [p for p, _ in answered],
                            [m for _, m in answered],
                            texts(uuid7() for _ in answered),
                        )
                    return await conn.fetchrow(END_SQL[money], *values)

            row = await run(end, user=uid, conversation=self.message.conversation_id)
            if row is None:
                state = await fetchrow(_STATE_SQL, mid, uid, user=uid)
                landed = (
                    state is not None
                    and state["writer"] == writer
                    and state["ended"]
                    and state["status"] == status
                )
                if not landed:
                    await self._refused()
                row = await fetchrow(
                    f"SELECT {COLUMNS} FROM faceplate.messages WHERE id = $1 AND user_id = $2",
                    mid,
                    uid,
                    user=uid,
                )
                assert row is not None  # noqa: S101 - its reply row is there
            self.message = messages_of(row)
            self._close()
            return self.message

    async def __aenter__(self) -> ReplyWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._writer is None:
            return
        if isinstance(exc, ReplyClosed):
            self._close()
            return
        reason = "ended without finish" if exc is None else f"{type(exc).__name__}: {exc}"
        try:
            await self.fail(reason[:2000])
        except FaceplateError:
            self._close()  # the block's own error says more; the reply times out
            if exc is None:
                raise


async def _tick(handle: weakref.ref[ReplyWriter], wake: asyncio.Event) -> None:
    """A writer's flushes once `flush_ms` has passed, and its beats (a third of the timeout),
    for as long as it is open. It holds the writer only weakly: a writer dropped without
    `finish` stops beating, and its reply is interrupted after the timeout, as a crash's."""
    while (writer := handle()) is not None and not writer.done:
        wake.clear()
        try:
            wait = await writer._due()
        except Exception as exc:  # kept for the writer's next call
            writer._failure = exc
            return
        del writer
        with contextlib.suppress(TimeoutError):  # woken early by the first text to wait
            await asyncio.wait_for(wake.wait(), wait)


async def start_reply(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    after: uuid.UUID | str | None = None,
    turn_id: uuid.UUID | str | None = None,
    model: str | None = None,
    provider: str | None = None,
    metadata: dict[str, Any] | None = None,
    flush_ms: int | None = None,
    flush_bytes: int | None = None,
) -> ReplyWriter:
    """Store an assistant message at once, marked as being written ('streaming'), after the
    active leaf (or after message `after`), and return its writer.

    `turn_id` (the request's id) makes a retried request take over: its earlier attempt, if
    still being written or interrupted, is ended as interrupted (its text kept; its writer
    refused from then on) and the new one is stored as its sibling; if the earlier attempt
    finished, the handle returned is `done` and holds it. `flush_ms` and `flush_bytes`
    override the deployment's FACEPLATE_REPLY_FLUSH_MS and _BYTES for this reply. Call it
    outside `in_transaction()`: each flush commits on its own, for followers to see.
    """
    uid = as_uuid("user_id", user_id)
    cid = as_uuid("conversation_id", conversation_id)
    place = _after(after)
    turn = as_uuid("turn_id", turn_id) if turn_id is not None else None
    settings = _settings
    every = settings.flush_ms if flush_ms is None else flush_ms
    size = settings.flush_bytes if flush_bytes is None else flush_bytes
    whole_number("flush_ms", every, *Streaming.RANGES["flush_ms"])
    whole_number("flush_bytes", size, *Streaming.RANGES["flush_bytes"])
    draft = Draft(
        {
            "role": Role.ASSISTANT,
            "content": "",
            "model": model,
            "provider": provider,
            "metadata": metadata,
        }
    )
    writer = uuid7()
    root = False
    if turn is not None:
        earlier = await fetchrow(_ATTEMPT_SQL, cid, turn, uid, user=uid)
        if earlier is not None and earlier["status"] is None:
            message = messages_of(earlier)
            return ReplyWriter(
                message,
                user_id=uid,
                writer=None,
                settings=settings,
                flush_ms=every,
                flush_bytes=size,
            )
        if earlier is not None:
            place, root = earlier["parent_id"], earlier["parent_id"] is None

    async def begin(conn: Connection, rows: list[asyncpg.Record]) -> None:
        await conn.execute(_BEGIN_SQL, rows[0]["id"], uid, cid, turn, writer, settings.timeout_s)

    [message] = await _append(uid, cid, [draft], None, after=place, root=root, live=begin)
    return ReplyWriter(
        message, user_id=uid, writer=writer, settings=settings, flush_ms=every, flush_bytes=size
    )


async def follow_reply(
    *, user_id: uuid.UUID | str, message_id: uuid.UUID | str, after: int = 0
) -> AsyncIterator[str]:
    """Yield a reply's text as it lands, from character `after` (what the reader has, say
    the length of the `content` `get_history` showed), and end when the reply does:
    finished, failed, or interrupted (a writer silent past the timeout, which this marks).
    A complete message yields its text from `after` and ends."""
    uid = as_uuid("user_id", user_id)
    mid = as_uuid("message_id", message_id)
    whole_number("after", after, 0, MAX_TEXT_CHARS, " of characters")
    client = current().root
    settings = _settings
    assert isinstance(client, FaceplateClient)  # noqa: S101 - current().root is the pool's
    pooled = client.options.pooled
    # Without LISTEN, the poll interval; with it, a notification wakes the follower, and the
    # bound only covers a notification lost.
    poll = settings.poll_ms / 1000 if pooled else max(settings.poll_ms / 1000, 2.0)
    seen = after
    waking: contextlib.AbstractAsyncContextManager[asyncio.Event] = (
        contextlib.nullcontext(asyncio.Event()) if pooled else client.listener.wake_on(channel(mid))
    )
    async with waking as woken:
        while True:
            woken.clear()
            row = await fetchrow(FOLLOW_SQL, mid, uid, seen, user=uid)
            if row is None:
                raise missing("message", mid)
            if row["text"]:
                yield row["text"]
                seen += len(row["text"])
            if row["status"] != STREAMING:
                return
            if not row["live"]:  # silent past the timeout, or taken over: mark it, say the rest
                await write_row(_INTERRUPT_ONE_SQL, mid, uid, user=uid)
                rest = await fetchrow(FOLLOW_SQL, mid, uid, seen, user=uid)
                if rest is not None and rest["text"]:
                    yield rest["text"]
                return
            # Woken by a flush's NOTIFY; else read again after the poll interval (and by the
            # time the writer would count as silent, at the latest).
            left = float(row["left_s"] or 0) + 0.05
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=min(poll, left))


async def interrupt_silent_replies(*, batch: int = 100) -> int:
    """Mark interrupted every reply whose writer fell silent past the timeout (their text
    kept), in batches; how many. `purge_expired` calls it."""
    total = 0
    while True:
        count = await run(lambda conn: conn.fetchval(INTERRUPT_SQL, batch), user=None)
        total += int(count or 0)
        if not count or count < batch:
            return total


__all__ = [
    "END_SQL",
    "FLUSH_SQL",
    "FOLLOW_SQL",
    "INTERRUPT_SQL",
    "LIVE_CONTENT",
    "LIVE_STATUS",
    "ReplyWriter",
    "channel",
    "follow_reply",
    "interrupt_silent_replies",
    "start_reply",
    "use",
]
