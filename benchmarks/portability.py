"""A user's data in and out, measured: export and import throughput (messages a second) and
how much the process grows while each runs, on one long conversation written by the server."""

from __future__ import annotations

import os
import time
import uuid

import faceplate_models as fm
from faceplate_models.engine import current


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def measure(messages: int) -> list[str]:
    """The rows of the table: export, then import of that export, of `messages` messages."""
    ada = await fm.get_or_create_user(subject_id=f"bench|export|{uuid.uuid4()}", email="e@x.io")
    bob = await fm.get_or_create_user(subject_id=f"bench|import|{uuid.uuid4()}", email="i@x.io")
    chat = await fm.create_conversation(user_id=ada.id, title="a long chat")
    async with current().acquire_connection() as conn:
        # A path of questions and answers of about 60 words each.
        await conn.execute(
            """INSERT INTO faceplate.messages (id, conversation_id, parent_id, user_id, role,
                   content, model, depth, segment_id, created_at)
               SELECT md5($1::text || n)::uuid, $1::uuid,
                      CASE WHEN n > 0 THEN md5($1::text || (n - 1))::uuid END, $2,
                      CASE WHEN n % 2 = 0 THEN 'user' ELSE 'assistant' END,
                      repeat('some words of a chat ', 12) || n,
                      CASE WHEN n % 2 = 1 THEN 'gpt-bench' END, n, md5($1::text || 0)::uuid,
                      now() - interval '1 day' + n * interval '1 millisecond'
               FROM generate_series(0, $3 - 1) n""",
            str(chat.id),
            ada.id,
            messages,
        )
        await conn.execute(
            "UPDATE faceplate.conversations SET message_count = $2 WHERE id = $1",
            chat.id,
            messages,
        )
    before = peak = _rss()
    started = time.perf_counter()
    chunks: list[bytes] = []
    async for chunk in fm.export_user(user_id=ada.id):
        chunks.append(chunk)  # kept for the import; not counted against the export
        peak = max(peak, _rss() - sum(map(len, chunks)))
    exported = time.perf_counter() - started
    grown_out = (peak - before) / 1e6
    export = b"".join(chunks)
    del chunks
    before = peak = _rss()
    started = time.perf_counter()
    report = await fm.import_conversations(user_id=bob.id, source=export)
    imported = time.perf_counter() - started
    grown_in = (_rss() - before) / 1e6
    assert report.messages == messages, report.failed
    await fm.delete_user(user_id=ada.id)
    await fm.delete_user(user_id=bob.id)
    return [
        "",
        f"A user's data in and out: one conversation of {messages:,} messages "
        f"({len(export) / 1e6:.1f} MB zipped):",
        "",
        "| operation | messages/s | the process grew |",
        "| --- | ---: | ---: |",
        f"| export_user | {messages / exported:,.0f} | {grown_out:.1f} MB |",
        f"| import_conversations (that export) | {messages / imported:,.0f} | {grown_in:.1f} MB |",
    ]


__all__ = ["measure"]
