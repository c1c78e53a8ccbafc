"""A user's data in and out: exports of ChatGPT, Claude and Open WebUI in their published
shapes imported as trees, idempotently, a conversation failing alone; this package's own
export read back; memory bounded both ways; erasure counted."""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

import ijson  # type: ignore[import-untyped]
import pytest
from tortoise import connections

import faceplate_models as fm
from faceplate_models.errors import NotFound, ValidationError
from faceplate_models.store import imports

pytestmark = pytest.mark.usefixtures("faceplate_db")

T0 = 1_700_000_000.0


def node(
    key: str,
    parent: str | None,
    children: list[str],
    role: str | None,
    content: dict[str, Any] | None = None,
    *,
    at: float = 0,
    model: str | None = None,
    recipient: str = "all",
    hidden: bool = False,
    name: str | None = None,
) -> dict[str, Any]:
    """A node of ChatGPT's `mapping`, as its export writes it."""
    message = None
    if role is not None:
        metadata: dict[str, Any] = {"model_slug": model} if model else {}
        if hidden:
            metadata["is_visually_hidden_from_conversation"] = True
        message = {
            "id": key,
            "author": {"role": role, "name": name, "metadata": {}},
            "create_time": T0 + at,
            "update_time": None,
            "content": content or {"content_type": "text", "parts": [""]},
            "status": "finished_successfully",
            "end_turn": True,
            "weight": 1.0,
            "metadata": metadata,
            "recipient": recipient,
        }
    return {"id": key, "message": message, "parent": parent, "children": children}


def text(*parts: Any) -> dict[str, Any]:
    return {"content_type": "text", "parts": list(parts)}


# A branched conversation (the question edited: two versions, each answered), a hidden
# system message, an image with its question, code run by the python tool and its output,
# and an answer with no model.
CHATGPT_BRANCHED = {
    "title": "Trip to Canberra",
    "create_time": T0,
    "update_time": T0 + 100,
    "mapping": {
        "root": node("root", None, ["sys"], None),
        "sys": node("sys", "root", ["q1", "q1b"], "system", text(""), at=1, hidden=True),
        "q1": node("q1", "sys", ["a1"], "user", text("What is the capital?"), at=2),
        "a1": node("a1", "q1", [], "assistant", text("Sydney."), at=3, model="gpt-4o"),
        "q1b": node("q1b", "sys", ["a1b"], "user", text("What is Australia's capital?"), at=4),
        "a1b": node("a1b", "q1b", ["q2"], "assistant", text("Canberra."), at=5, model="gpt-4o"),
        "q2": node(
            "q2",
            "a1b",
            ["code"],
            "user",
            {
                "content_type": "multimodal_text",
                "parts": [
                    {"content_type": "image_asset_pointer", "asset_pointer": "file-service://f1"},
                    "How far is this from there?",
                ],
            },
            at=6,
        ),
        "code": node(
            "code",
            "q2",
            ["out"],
            "assistant",
            {"content_type": "code", "language": "python", "text": "print(286)"},
            at=7,
            model="gpt-4o",
            recipient="python",
        ),
        "out": node(
            "out",
            "code",
            ["a2"],
            "tool",
            {"content_type": "execution_output", "text": "286"},
            at=8,
            name="python",
        ),
        "a2": node("a2", "out", [], "assistant", text("About 286 km."), at=9),
    },
    "moderation_results": [],
    "current_node": "a2",
    "plugin_ids": None,
    "conversation_id": "67a1c0de-0000-4000-8000-000000000001",
    "conversation_template_id": None,
    "gizmo_id": None,
    "is_archived": False,
    "safe_urls": [],
    "default_model_slug": "gpt-4o",
    "id": "67a1c0de-0000-4000-8000-000000000001",
}


def chatgpt_simple(n: int) -> dict[str, Any]:
    return {
        "title": f"Chat {n}",
        "create_time": T0 + n,
        "update_time": T0 + n + 2,
        "mapping": {
            "r": node("r", None, ["u"], None),
            "u": node("u", "r", ["a"], "user", text(f"question {n}"), at=n),
            "a": node("a", "u", [], "assistant", text(f"answer {n}"), at=n + 1, model="o3"),
        },
        "current_node": "a",
        "conversation_id": f"chat-{n}",
        "id": f"chat-{n}",
    }


CLAUDE = [
    {
        "uuid": "c1a0de00-0000-4000-8000-000000000001",
        "name": "Sourdough",
        "created_at": "2025-03-01T10:00:00.000000Z",
        "updated_at": "2025-03-01T10:05:00.000000Z",
        "account": {"uuid": "acc"},
        "chat_messages": [
            {
                "uuid": "m1",
                "text": "How long do I proof it?",
                "content": [{"type": "text", "text": "How long do I proof it?"}],
                "sender": "human",
                "created_at": "2025-03-01T10:00:00.000000Z",
                "updated_at": "2025-03-01T10:00:00.000000Z",
                "attachments": [],
                "files": [{"file_name": "starter.jpg"}],
            },
            {
                "uuid": "m2",
                "text": "",
                "content": [
                    {"type": "text", "text": "About 4 hours at room temperature."},
                    {"type": "tool_use", "name": "web_search", "input": {}},
                ],
                "sender": "assistant",
                "created_at": "2025-03-01T10:00:05.000000Z",
                "updated_at": "2025-03-01T10:00:05.000000Z",
                "attachments": [],
                "files": [],
            },
        ],
    }
]

OPEN_WEBUI = [
    {
        "id": "owui-1",
        "user_id": "u",
        "title": "Regex help",
        "chat": {
            "id": "",
            "title": "Regex help",
            "models": ["llama3:8b"],
            "history": {
                "messages": {
                    "x1": {
                        "id": "x1",
                        "parentId": None,
                        "childrenIds": ["x2", "x3"],
                        "role": "user",
                        "content": "Match an email?",
                        "timestamp": 1710000000,
                    },
                    "x2": {
                        "id": "x2",
                        "parentId": "x1",
                        "childrenIds": [],
                        "role": "assistant",
                        "content": "Use \\\\S+@\\\\S+.",
                        "model": "llama3:8b",
                        "timestamp": 1710000005,
                    },
                    "x3": {
                        "id": "x3",
                        "parentId": "x1",
                        "childrenIds": [],
                        "role": "assistant",
                        "content": "Try [^@]+@[^@]+",
                        "model": "mistral:7b",
                        "timestamp": 1710000009,
                    },
                },
                "currentId": "x3",
            },
            "messages": [],
            "timestamp": 1710000000000,
        },
        "updated_at": 1710000009,
        "created_at": 1710000000,
        "archived": False,
        "pinned": True,
        "meta": {"tags": []},
        "folder_id": None,
    }
]


async def user(n: int = 0) -> fm.User:
    return await fm.get_or_create_user(subject_id=f"port|{n}", email=f"p{n}@example.com")


def zipped(files: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, value in files.items():
            archive.writestr(name, json.dumps(value))
    return buffer.getvalue()


async def path_of(ada: fm.User, conversation_id: Any) -> list[fm.Message]:
    page = await fm.get_history(user_id=ada.id, conversation_id=conversation_id, limit=100)
    return page.items


async def test_a_branched_chatgpt_conversation_becomes_a_tree() -> None:
    ada = await user()
    export = zipped({"conversations.json": [CHATGPT_BRANCHED], "user.json": {}})
    report = await fm.import_conversations(user_id=ada.id, source=export)
    assert report.failed == [] and len(report.imported) == 1
    [done] = report.imported
    assert (done.source, done.messages) == ("chatgpt", 8)
    shown = await path_of(ada, done.conversation_id)
    assert [(m.role, m.content) for m in shown] == [
        ("user", "What is Australia's capital?"),
        ("assistant", "Canberra."),
        ("user", "[image_asset_pointer: file-service://f1]\nHow far is this from there?"),
        ("assistant", None),
        ("tool", None),
        ("assistant", "About 286 km."),
    ]
    assert [m.model for m in shown] == [None, "gpt-4o", None, "gpt-4o", None, None]
    assert (
        shown[3].tool_calls is not None and shown[3].tool_calls[0]["function"]["name"] == "python"
    )
    assert shown[4].tool_results == [
        {"tool_call_id": shown[3].tool_calls[0]["id"], "content": "286"}
    ]
    # The first version of the question is a sibling, one switch away; times are the source's.
    assert shown[0].sibling_count == 2
    assert shown[0].created_at.timestamp() == pytest.approx(T0 + 4)
    conversation = await fm.get_conversation(
        user_id=ada.id, conversation_id=done.conversation_id or ""
    )
    assert conversation.title == "Trip to Canberra"
    assert conversation.updated_at.timestamp() == pytest.approx(T0 + 100)
    # Appending goes on from the current node.
    more = await fm.append_message(
        user_id=ada.id, conversation_id=done.conversation_id or "", role="user", content="Thanks"
    )
    assert more.parent_id == shown[-1].id


async def test_importing_twice_adds_nothing_and_a_bad_conversation_fails_alone() -> None:
    ada = await user()
    split = zipped(
        {
            "conversations-000.json": [chatgpt_simple(1), chatgpt_simple(2)],
            "conversations-001.json": [chatgpt_simple(3), {"mapping": "broken", "id": "bad"}],
        }
    )
    first = await fm.import_conversations(user_id=ada.id, source=split)
    assert [i.source_id for i in first.imported] == ["chat-1", "chat-2", "chat-3"]
    assert [(f.source_id, "mapping" in (f.reason or "")) for f in first.failed] == [("bad", True)]
    again = await fm.import_conversations(user_id=ada.id, source=split)
    assert again.imported == [] and [s.source_id for s in again.skipped] == [
        "chat-1",
        "chat-2",
        "chat-3",
    ]
    listed = await fm.list_conversations(user_id=ada.id)
    assert len(listed.items) == 3


async def test_claude_and_open_webui_exports() -> None:
    ada = await user()
    claude = await fm.import_conversations(user_id=ada.id, source=json.dumps(CLAUDE).encode())
    [done] = claude.imported
    shown = await path_of(ada, done.conversation_id)
    assert [(m.role, m.content) for m in shown] == [
        ("user", "How long do I proof it?\n[attachment: starter.jpg]"),
        ("assistant", "About 4 hours at room temperature."),
    ]
    webui = await fm.import_conversations(user_id=ada.id, source=json.dumps(OPEN_WEBUI).encode())
    [chat] = webui.imported
    shown = await path_of(ada, chat.conversation_id)
    # The current answer is the regenerated one, by another model; both are kept.
    assert [(m.content, m.model) for m in shown] == [
        ("Match an email?", None),
        ("Try [^@]+@[^@]+", "mistral:7b"),
    ]
    assert shown[1].sibling_count == 2
    found = await fm.get_conversation(user_id=ada.id, conversation_id=chat.conversation_id or "")
    assert found.pinned_at is not None


async def test_the_own_export_reads_back_as_it_was(tmp_path: Any) -> None:
    ada = await user()
    chat = await fm.create_conversation(
        user_id=ada.id, title="Round trip", settings={"model": "m"}, metadata={"k": 1}
    )
    at: dict[str, Any] = {"user_id": ada.id, "conversation_id": chat.id}
    await fm.append_message(**at, role="user", content="Weather?")
    call = {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
    await fm.append_message(**at, role="assistant", tool_calls=[call], model="m", provider="p")
    await fm.append_message(
        **at, role="tool", tool_results=[{"tool_call_id": "c1", "content": "9"}]
    )
    await fm.append_message(**at, role="assistant", content="9 degrees.", model="m")
    await fm.regenerate(**at, message_id=(await path_of(ada, chat.id))[-1].id)
    await fm.append_message(**at, role="assistant", content="Nine degrees.", model="m2")
    await fm.add_task(user_id=ada.id, title="Buy a coat")
    await fm.save_mcp_config(
        user_id=ada.id, name="w", config={"command": "w"}, secrets={"env.KEY": "s3cret"}
    )
    target = tmp_path / "export.zip"
    with target.open("wb") as file:
        async for chunk in fm.export_user(user_id=ada.id):
            file.write(chunk)
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
        assert {"conversations.json", "tasks.json", "mcp_configs.json", "user.json"} <= names
        assert b"s3cret" not in b"".join(archive.read(n) for n in names)
        [exported] = json.loads(archive.read("conversations.json"))
        assert exported["current_node"] == str((await path_of(ada, chat.id))[-1].id)
        assert len(exported["mapping"]) == 5  # "9 degrees." and its regenerated sibling
        assert json.loads(archive.read("tasks.json"))[0]["title"] == "Buy a coat"
    bob = await user(2)
    report = await fm.import_conversations(user_id=bob.id, source=target)
    [back] = report.imported
    assert (back.source, back.messages) == ("faceplate", 5)
    before = [(m.role, m.content, m.model, m.tool_calls) for m in await path_of(ada, chat.id)]
    after = [
        (m.role, m.content, m.model, m.tool_calls) for m in await path_of(bob, back.conversation_id)
    ]
    assert after == before
    copy = await fm.get_conversation(user_id=bob.id, conversation_id=back.conversation_id or "")
    assert (copy.settings, copy.metadata) == ({"model": "m"}, {"k": 1})


async def test_bad_sources_are_refused() -> None:
    ada = await user()
    for bad in (42, "/no/such/file.json", zipped({"other.json": []})):
        with pytest.raises(ValidationError, match="source"):
            await fm.import_conversations(user_id=ada.id, source=bad)
    hostile = b'[{"what": 1}, 7, {"mapping": {"a": 5}}, {"chat_messages": [3]}, [1]'
    report = await fm.import_conversations(user_id=ada.id, source=hostile)
    # Each entry fails alone, and the last, where the JSON breaks off, ends the import.
    assert len(report.failed) == 6 and report.imported == []
    assert "not valid JSON" in (report.failed[-1].reason or "")
    with pytest.raises(NotFound):
        await fm.import_conversations(user_id=fm.User().id, source=b"[]")
    rows = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM faceplate.conversations"
    )
    assert rows == [{"n": 0}]


def rss() -> int:
    """This process's resident memory, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_exporting_a_million_messages_stays_within_50_mb(tmp_path: Any) -> None:
    # A million on the server CI names (PostgreSQL 15), a hundred thousand on the embedded
    # one: the same bound, the heavy load on one server only.
    count = 1_000_000 if os.environ.get("FACEPLATE_TEST_DATABASE_URL") else 100_000
    ada = await user()
    chat = await fm.create_conversation(user_id=ada.id, title="long")
    db = connections.get("default")
    # One path of `count` messages, written by the server (ids from their number), a
    # hundred thousand per statement: each well within the statement's time bound.
    for first in range(0, count, 100_000):
        await db.execute_query(
            """INSERT INTO faceplate.messages (id, conversation_id, parent_id, user_id, role,
                   content, depth, segment_id, created_at)
               SELECT md5('m' || n)::uuid, $1,
                      CASE WHEN n > 0 THEN md5('m' || (n - 1))::uuid END, $2,
                      CASE WHEN n % 2 = 0 THEN 'tool' ELSE 'system' END,
                      repeat('word ', 40) || n, n, md5('m0')::uuid,
                      now() - interval '1 day' + n * interval '1 millisecond'
               FROM generate_series($3::int, $4::int) n""",
            [chat.id, ada.id, first, first + 99_999],
        )
    await db.execute_query(
        "UPDATE faceplate.conversations SET message_count = $2 WHERE id = $1", [chat.id, count]
    )
    target = tmp_path / "export.zip"
    before = peak = rss()
    written = 0
    with target.open("wb") as file:
        async for chunk in fm.export_user(user_id=ada.id):
            file.write(chunk)
            written += len(chunk)
            peak = max(peak, rss())
    grown = (peak - before) / 1e6
    print(f"\nexported {count:,} messages ({written / 1e6:.0f} MB zipped): grew {grown:.1f} MB")
    assert grown < 50
    with zipfile.ZipFile(target) as archive, archive.open("conversations.json") as member:
        assert sum(1 for _ in ijson.kvitems(member, "item.mapping")) == count


def test_reading_a_500_mb_export_stays_within_50_mb(tmp_path: Any) -> None:
    # Written conversation by conversation: 500 MB of ChatGPT-shaped JSON.
    target = tmp_path / "conversations.json"
    one = json.dumps(chatgpt_simple(1) | {"title": "x" * 50_000})
    count = 500_000_000 // len(one)
    with target.open("w") as file:
        file.write("[" + one)
        for _ in range(count - 1):
            file.write("," + one)
        file.write("]")
    before = peak = rss()
    read = 0
    for item in imports._entries(target):
        read += 1
        peak = max(peak, rss())
        del item
    grown = (peak - before) / 1e6
    print(
        f"\nread {target.stat().st_size / 1e6:.0f} MB, {read:,} conversations: grew {grown:.1f} MB"
    )
    assert read == count and grown < 50
