"""A user's data in: the conversations of a ChatGPT, Claude or Open WebUI export (or this
package's own, `export_user`), read as a stream, each stored as a tree of its own.

`import_conversations` reads the export one conversation at a time (`ijson`), so memory is
bounded by the largest conversation, not by the export. Each conversation is detected by its
shape, turned into messages (`_Node`s) with their parents, roles, times and models, and
stored in one transaction: the conversation, its messages placed on the tree as an append
places them (segments, depths, the tool calls open along each path), its tool calls, and
its source (`conversation_sources`), whose unique key makes a second import of the same
conversation add nothing. A conversation that cannot be read or stored fails alone, with
its reason in the report.

`ijson` and `zipfile` are imported where they are read, not with the module: a process
that starts per request should not pay for readers it uses only when importing.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final

from faceplate_models.engine import Connection, current, texts
from faceplate_models.errors import QuotaExceeded, ValidationError
from faceplate_models.formats.shape import KEYS, Draft
from faceplate_models.ids import uuid7
from faceplate_models.models import SOURCE_ID_MAX, TITLE_MAX, Role
from faceplate_models.store import _quotas as quotas
from faceplate_models.store._rows import below_limit, lock_user, missing, run
from faceplate_models.store.users import get_user
from faceplate_models.validation import as_uuid

#: Messages written per statement of a conversation's import.
BATCH: Final = 1000
#: The products whose exports are read, by the name the report and the sources use.
CHATGPT: Final = "chatgpt"
CLAUDE: Final = "claude"
OPEN_WEBUI: Final = "openwebui"
FACEPLATE: Final = "faceplate"
_ROLES: Final = {"user": Role.USER, "human": Role.USER, "assistant": Role.ASSISTANT}
# ChatGPT content that the app does not show: its context and its hidden reasoning.
_HIDDEN_CONTENT: Final = frozenset(
    {"user_editable_context", "model_editable_context", "thoughts", "reasoning_recap"}
)


@dataclass
class _Node:
    """One message of an imported conversation, as its source said it."""

    key: str
    parent: str | None
    fields: dict[str, Any]
    at: datetime | None


@dataclass
class _Conversation:
    source: str
    source_id: str
    title: str | None
    created_at: datetime | None
    updated_at: datetime | None
    nodes: list[_Node]
    current: str | None
    settings: Any = None
    metadata: Any = None
    archived_at: datetime | None = None
    pinned_at: datetime | None = None


@dataclass(frozen=True)
class Imported:
    """One conversation of an import, in its report."""

    source: str
    source_id: str
    title: str | None
    conversation_id: uuid.UUID | None = None
    messages: int = 0
    reason: str | None = None


@dataclass
class ImportReport:
    """What an import did, per conversation: `imported`, `skipped` (imported before: its
    source id is known), `failed` (with the reason)."""

    imported: list[Imported] = field(default_factory=list)
    skipped: list[Imported] = field(default_factory=list)
    failed: list[Imported] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(item.messages for item in self.imported)


# --- reading the products' shapes ----------------------------------------------------------


def _when(value: Any) -> datetime | None:
    """A time as the exports write it: seconds since the epoch, or ISO 8601."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float) or (hasattr(value, "is_finite") and value.is_finite()):
        seconds = float(value)
        if seconds > 1e11:  # milliseconds (Open WebUI's messages, in some versions)
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            found = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return found if found.tzinfo else found.replace(tzinfo=UTC)
    return None


def _text(parts: Iterable[Any]) -> str:
    """ChatGPT's parts as text: strings as they are, anything else named in brackets."""
    shown = []
    for part in parts:
        if isinstance(part, str):
            shown.append(part)
        elif isinstance(part, dict):
            kind = part.get("content_type") or part.get("type") or "attachment"
            pointer = part.get("asset_pointer") or part.get("name") or ""
            shown.append(f"[{kind}{': ' + pointer if pointer else ''}]")
    return "\n".join(piece for piece in shown if piece)


def _chatgpt(item: dict[str, Any]) -> _Conversation:
    """A conversation of ChatGPT's `conversations.json` (or this package's export)."""
    mapping = item.get("mapping")
    if not isinstance(mapping, dict):
        raise ValidationError("mapping", "is missing: not a ChatGPT conversation")
    ours = isinstance(item.get("faceplate"), dict)
    nodes: list[_Node] = []
    kept: dict[str, str | None] = {}  # a node's nearest kept ancestor (itself if kept)
    calls: dict[str, str] = {}  # a kept call's node -> its call id
    for key in _tree_order(mapping):
        node = mapping[key]
        parent = node.get("parent")
        above = kept.get(parent) if isinstance(parent, str) else None
        fields = _chatgpt_message(node.get("message"), ours, calls.get(above or ""))
        if fields is None:
            kept[key] = above
            continue
        kept[key] = key
        for call in fields.get("tool_calls") or ():
            calls[key] = call["id"]
        message = node.get("message") or {}
        nodes.append(_Node(key, above, fields, _when(message.get("create_time"))))
    current = item.get("current_node")
    extra: dict[str, Any] = item["faceplate"] if ours else {}
    return _Conversation(
        source=FACEPLATE if ours else CHATGPT,
        source_id=str(item.get("conversation_id") or item.get("id") or ""),
        title=item.get("title"),
        created_at=_when(item.get("create_time")),
        updated_at=_when(item.get("update_time")),
        nodes=nodes,
        current=kept.get(current) if isinstance(current, str) else None,
        settings=extra.get("settings"),
        metadata=extra.get("metadata"),
        archived_at=_when(extra.get("archived_at")),
        pinned_at=_when(extra.get("pinned_at")),
    )


def _tree_order(mapping: dict[str, Any]) -> list[str]:
    """The mapping's keys, parents before children (siblings by their time)."""

    def time_of(key: str) -> float:
        message = (mapping.get(key) or {}).get("message") or {}
        at = message.get("create_time")
        return float(at) if isinstance(at, int | float) else 0.0

    children: dict[str | None, list[str]] = {}
    for key, node in mapping.items():
        parent = node.get("parent") if isinstance(node, dict) else None
        children.setdefault(parent if parent in mapping else None, []).append(key)
    order: list[str] = []
    stack = sorted(children.get(None, []), key=time_of, reverse=True)
    while stack:
        key = stack.pop()
        order.append(key)
        stack.extend(sorted(children.get(key, []), key=time_of, reverse=True))
    return order


def _chatgpt_message(message: Any, ours: bool, open_call: str | None) -> dict[str, Any] | None:
    """A ChatGPT message as `append_message`'s fields; None for one ChatGPT does not show."""
    if not isinstance(message, dict):
        return None  # the tree's root
    author = message.get("author") or {}
    role = author.get("role")
    content = message.get("content") or {}
    kind = content.get("content_type")
    metadata = message.get("metadata") or {}
    if metadata.get("is_visually_hidden_from_conversation") or kind in _HIDDEN_CONTENT:
        return None
    if ours:
        saved = dict(metadata.get("faceplate") or {})
        parts = content.get("parts") or []
        # What the export kept, as append_message takes it (usage is not counted twice).
        fields = {key: saved.get(key) for key in KEYS - {"role", "content", "usage"}}
        return {"role": role, "content": parts[0] if parts else None, **fields}
    if kind in ("code", "execution_output", "tether_browsing_display", "system_error"):
        text = content.get("text") or content.get("result") or ""
    elif kind == "tether_quote":
        text = "\n".join(filter(None, (content.get("title"), content.get("text"))))
    else:
        text = _text(content.get("parts") or ())
    model = metadata.get("model_slug") or None
    recipient = message.get("recipient") or "all"
    if role == "assistant" and recipient != "all":  # a call of a tool, say python's
        call = {
            "id": f"call_{message.get('id') or uuid7().hex}"[:64],
            "type": "function",
            "function": {
                "name": "".join(c if c.isalnum() or c in "_-" else "_" for c in recipient)[:64],
                "arguments": json.dumps({"input": text}),
            },
        }
        return {"role": Role.ASSISTANT, "tool_calls": [call], "model": model}
    if role == "tool":
        if open_call is not None:
            result = {"tool_call_id": open_call, "content": text or "(no output)"}
            return {"role": Role.TOOL, "tool_results": [result]}
        if not text.strip():
            return None
        name = author.get("name") or "tool"
        return {"role": Role.ASSISTANT, "content": text, "metadata": {"tool": name}}
    if role == "system":
        return {"role": Role.SYSTEM, "content": text} if text.strip() else None
    if role not in _ROLES:
        return None
    if role == "user" and not text.strip():
        text = "(no text)"
    if role == "assistant" and not text.strip():
        return None
    return {"role": _ROLES[role], "content": text, "model": model if role == "assistant" else None}


def _claude(item: dict[str, Any]) -> _Conversation:
    """A conversation of Claude's `conversations.json`."""
    messages = item.get("chat_messages")
    if not isinstance(messages, list):
        raise ValidationError("chat_messages", "is missing: not a Claude conversation")
    nodes: list[_Node] = []
    previous: str | None = None
    known: set[str] = set()
    for number, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        key = str(message.get("uuid") or number)
        role = _ROLES.get(str(message.get("sender")))
        found = message.get("content")
        blocks: list[Any] = found if isinstance(found, list) else []
        text = "\n".join(
            b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"
        ) or str(message.get("text") or "")
        names = [
            str(a.get("file_name") or "file")
            for a in [*(message.get("attachments") or ()), *(message.get("files") or ())]
            if isinstance(a, dict)
        ]
        if names:
            text = "\n".join(filter(None, (text, *(f"[attachment: {n}]" for n in names))))
        if role is None or not text.strip():
            continue
        parent = message.get("parent_message_uuid")
        above = parent if isinstance(parent, str) and parent in known else previous
        nodes.append(
            _Node(key, above, {"role": role, "content": text}, _when(message.get("created_at")))
        )
        known.add(key)
        previous = key
    return _Conversation(
        source=CLAUDE,
        source_id=str(item.get("uuid") or ""),
        title=item.get("name") or None,
        created_at=_when(item.get("created_at")),
        updated_at=_when(item.get("updated_at")),
        nodes=nodes,
        current=previous,
    )


def _open_webui(item: dict[str, Any]) -> _Conversation:
    """A chat of Open WebUI's export (`chat-export-*.json`): its history's message tree."""
    chat = item.get("chat")
    if not isinstance(chat, dict):
        raise ValidationError("chat", "is missing: not an Open WebUI chat")
    kept_history = chat.get("history")
    history: dict[str, Any] = kept_history if isinstance(kept_history, dict) else {}
    found = history.get("messages")
    if isinstance(found, dict):
        raw = list(found.values())
    else:  # an old chat without its tree: the list, one after another
        raw = list(chat.get("messages") or [])
        for previous, message in zip([None, *raw], raw, strict=False):
            if isinstance(message, dict) and "parentId" not in message:
                message["parentId"] = previous.get("id") if isinstance(previous, dict) else None
    by_key = {str(m.get("id")): m for m in raw if isinstance(m, dict)}
    order = _tree_order(
        {
            key: {"parent": m.get("parentId"), "message": {"create_time": m.get("timestamp")}}
            for key, m in by_key.items()
        }
    )
    nodes: list[_Node] = []
    kept: dict[str, str | None] = {}
    for key in order:
        message = by_key[key]
        parent = message.get("parentId")
        above = kept.get(str(parent)) if parent is not None else None
        role = _ROLES.get(str(message.get("role")))
        text = str(message.get("content") or "")
        if role is None or not text.strip():
            kept[key] = above
            continue
        kept[key] = key
        model = message.get("model") if role is Role.ASSISTANT else None
        fields = {"role": role, "content": text, "model": model or None}
        nodes.append(_Node(key, above, fields, _when(message.get("timestamp"))))
    current = history.get("currentId")
    return _Conversation(
        source=OPEN_WEBUI,
        source_id=str(item.get("id") or chat.get("id") or ""),
        title=item.get("title") or chat.get("title") or None,
        created_at=_when(item.get("created_at")),
        updated_at=_when(item.get("updated_at")),
        nodes=nodes,
        current=kept.get(str(current)) if current is not None else None,
        archived_at=_when(item.get("updated_at")) if item.get("archived") else None,
        pinned_at=_when(item.get("updated_at")) if item.get("pinned") else None,
    )


def _read(item: Any) -> _Conversation:
    """One conversation of any export, by its shape."""
    if not isinstance(item, dict):
        raise ValidationError("source", "holds an entry that is not a conversation object")
    if "mapping" in item:
        return _chatgpt(item)
    if "chat_messages" in item:
        return _claude(item)
    if "chat" in item:
        return _open_webui(item)
    raise ValidationError(
        "source", "holds a conversation of no known shape (ChatGPT, Claude, Open WebUI)"
    )


# --- reading the files -------------------------------------------------------------------


def _items(stream: IO[bytes]) -> Iterator[Any]:
    """The elements of a JSON array, one at a time."""
    start = stream.read(64).lstrip()
    stream.seek(0)
    if not start.startswith(b"["):
        raise ValidationError(
            "source", "is not a list of conversations (a JSON array, as the exports write it)"
        )
    import ijson  # type: ignore[import-untyped]

    yield from ijson.items(stream, "item", use_float=True)


def _entries(source: Any) -> Iterator[Any]:
    """Every conversation of the source: a zip as downloaded (ChatGPT's, split into
    `conversations-NNN.json` or not; Claude's; this package's), a JSON file of a
    conversation list, several such files, or the bytes or a binary file of either."""
    if isinstance(source, list | tuple):
        for one in source:
            yield from _entries(one)
        return
    if isinstance(source, bytes | bytearray):
        source = io.BytesIO(bytes(source))
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            found = path.is_file()
        except (OSError, ValueError):
            found = False
        if not found:
            raise ValidationError("source", "names no file that can be read")
        with path.open("rb") as file:
            yield from _entries(file)
        return
    if not hasattr(source, "read"):
        raise ValidationError("source", "must be a path, bytes, a binary file, or a list of them")
    import zipfile

    if zipfile.is_zipfile(source):
        source.seek(0)
        with zipfile.ZipFile(source) as archive:
            names = sorted(
                n
                for n in archive.namelist()
                if Path(n).name == "conversations.json"
                or (Path(n).name.startswith("conversations-") and n.endswith(".json"))
            )
            if not names:
                raise ValidationError("source", "is a zip with no conversations.json")
            for name in names:
                with archive.open(name) as member:
                    yield from _items(member)
        return
    source.seek(0)
    yield from _items(source)


# --- storing a conversation ----------------------------------------------------------------

_SOURCE_SQL: Final = """INSERT INTO faceplate.conversation_sources
        (id, user_id, conversation_id, source, source_id, created_at)
    VALUES ($1, $2, $3, $4, $5, now())
    ON CONFLICT (user_id, source, source_id) DO NOTHING RETURNING id"""
KNOWN_SQL: Final = """SELECT conversation_id FROM faceplate.conversation_sources
    WHERE user_id = $1 AND source = $2 AND source_id = $3"""
_CONVERSATION_SQL: Final = f"""INSERT INTO faceplate.conversations (id, user_id, title,
        active_leaf_id, open_calls, settings, metadata, message_count, archived_at,
        pinned_at, temporary, created_at, updated_at)
    SELECT $2, $1, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, false, $11, $12
    WHERE {below_limit("conversations", "$13")}
    RETURNING id"""
_MESSAGES_SQL: Final = """INSERT INTO faceplate.messages (id, conversation_id, parent_id,
        user_id, role, content, tool_calls, tool_results, depth, segment_id,
        fork_segment_id, open_calls, model, provider, finish_reason, thinking, metadata,
        created_at)
    SELECT m.id, $1, m.parent_id, $2, m.role, m.content, m.tool_calls, m.tool_results,
        m.depth, m.segment_id, m.fork_segment_id, m.open_calls, m.model, m.provider,
        m.finish_reason, m.thinking, m.metadata, m.created_at
    FROM unnest($3::text[]::uuid[], $4::text[]::uuid[], $5::text[], $6::text[],
                $7::text[]::jsonb[], $8::text[]::jsonb[], $9::text[]::int[],
                $10::text[]::uuid[], $11::text[]::uuid[], $12::text[]::jsonb[], $13::text[],
                $14::text[], $15::text[], $16::text[]::jsonb[], $17::text[]::jsonb[],
                $18::text[]::timestamptz[])
        AS m(id, parent_id, role, content, tool_calls, tool_results, depth, segment_id,
             fork_segment_id, open_calls, model, provider, finish_reason, thinking,
             metadata, created_at)"""
_CALLS_SQL: Final = """INSERT INTO faceplate.tool_calls
        (id, conversation_id, user_id, call_id, message_id, result_message_id, created_at)
    SELECT c.id, $1, $2, c.call_id, c.message_id, c.result_message_id, c.created_at
    FROM unnest($3::text[]::uuid[], $4::text[], $5::text[]::uuid[], $6::text[]::uuid[],
                $7::text[]::timestamptz[])
        AS c(id, call_id, message_id, result_message_id, created_at)"""


@dataclass
class _Placed:
    """A message as stored: its row's values."""

    id: uuid.UUID
    draft: Draft
    parent: uuid.UUID | None
    depth: int
    segment: uuid.UUID
    fork: uuid.UUID | None
    opens: dict[str, str]
    at: datetime


def _place(
    conversation: _Conversation,
) -> tuple[list[_Placed], list[tuple[Any, ...]], _Placed | None]:
    """The conversation's messages placed on a tree as an append places them, its tool
    calls, and its active leaf: (messages, calls as (id, call id, message, answer, time),
    the source's current message, else the last; None without messages)."""
    placed: dict[str, _Placed] = {}
    continued: set[uuid.UUID] = set()  # messages whose segment a child continues
    calls: dict[tuple[uuid.UUID, str], list[Any]] = {}
    order: list[_Placed] = []
    last = conversation.created_at or datetime(2000, 1, 1, tzinfo=UTC)
    for node in conversation.nodes:
        where = f"message {node.key!r}: "
        draft = Draft(node.fields, where)
        above = placed.get(node.parent) if node.parent is not None else None
        opens = dict(above.opens) if above else {}
        at = node.at if node.at is not None and node.at > last else last + timedelta(microseconds=1)
        last = at
        message_id = uuid.UUID(str(uuid7()))
        for call in draft.results:
            maker = opens.pop(call, None)
            if maker is None:
                raise ValidationError(f"{where}tool_results", f"{call!r} answers no open call")
            made = calls[(uuid.UUID(maker), call)]
            made[3] = made[3] or message_id  # the first answer, as an append records it
        for call in draft.calls:
            if call in opens:
                raise ValidationError(f"{where}tool_calls", f"{call!r} is still open")
            opens[call] = str(message_id)
            calls[(message_id, call)] = [uuid7(), call, message_id, None, at]
        if above is None:
            depth, segment, fork = 0, message_id, None
        elif above.id in continued:
            depth, segment, fork = above.depth + 1, message_id, above.segment
        else:
            depth, segment, fork = above.depth + 1, above.segment, None
            continued.add(above.id)
        here = _Placed(
            message_id, draft, above.id if above else None, depth, segment, fork, opens, at
        )
        placed[node.key] = here
        order.append(here)
    leaf = placed.get(conversation.current or "") or (order[-1] if order else None)
    return order, [tuple(call) for call in calls.values()], leaf


async def _store(uid: uuid.UUID, conversation: _Conversation) -> Imported:
    """Store one conversation in one transaction; `skipped` if its source is known."""
    messages, calls, leaf = _place(conversation)
    if leaf is None:
        raise ValidationError("source", "the conversation has no message this package can show")
    limits = quotas.limits()
    if len(messages) > limits.messages_per_conversation:
        raise quotas.exceeded("messages_per_conversation", "the imported conversation")
    newest = max(messages[-1].at, conversation.updated_at or messages[-1].at)
    title = str(conversation.title or "").strip()[:TITLE_MAX] or None
    source_id = conversation.source_id[:SOURCE_ID_MAX]
    cid = uuid7()
    client = current()

    async def store(conn: Connection) -> Imported:
        async with client.atomic(conn, long=True):
            if not await lock_user(conn, uid):
                raise missing("user", uid)
            known = await conn.fetchval(KNOWN_SQL, uid, conversation.source, source_id)
            if known is not None:
                return Imported(conversation.source, source_id, title, known)
            stored = await conn.fetchval(
                _CONVERSATION_SQL,
                uid,
                cid,
                title,
                leaf.id,
                len(leaf.opens),
                json.dumps(conversation.settings) if conversation.settings else None,
                json.dumps(conversation.metadata) if conversation.metadata else None,
                len(messages),
                conversation.archived_at,
                conversation.pinned_at,
                conversation.created_at or messages[0].at,
                newest,
                limits.conversations,
            )
            if stored is None:
                raise quotas.exceeded("conversations", f"user {uid}")
            await conn.execute(_SOURCE_SQL, uuid7(), uid, cid, conversation.source, source_id)
            for first in range(0, len(messages), BATCH):
                await conn.execute(
                    _MESSAGES_SQL, cid, uid, *_columns(messages[first : first + BATCH])
                )
            if calls:
                await conn.execute(_CALLS_SQL, cid, uid, *map(texts, zip(*calls, strict=True)))
        return Imported(conversation.source, source_id, title, cid, len(messages))

    return await run(store, user=uid, long=True)


def _columns(batch: Sequence[_Placed]) -> list[list[str | None]]:
    d = [m.draft for m in batch]
    columns: list[list[Any]] = [
        [m.id for m in batch],
        [m.parent for m in batch],
        [x.role.value for x in d],
        [x.content for x in d],
        [x.tool_calls for x in d],
        [x.tool_results for x in d],
        [m.depth for m in batch],
        [m.segment for m in batch],
        [m.fork for m in batch],
        [json.dumps(m.opens) if m.opens else None for m in batch],
        [x.model for x in d],
        [x.provider for x in d],
        [x.finish_reason for x in d],
        [x.thinking for x in d],
        [x.metadata for x in d],
        [m.at for m in batch],
    ]
    return [texts(column) for column in columns]


async def import_conversations(*, user_id: uuid.UUID | str, source: Any) -> ImportReport:
    """Import the conversations of an export into the user's: a ChatGPT export (the zip as
    downloaded, its `conversations.json`, or its split `conversations-NNN.json` files), a
    Claude export, an Open WebUI export, or this package's own (`export_user`), told apart by
    their shape. `source` is a path, bytes, a binary file, or a list of them.

    Branches are kept (a ChatGPT or Open WebUI tree stays a tree; its current node is the
    active leaf), and roles, times, titles, models, tool calls and their results where the
    source has them; what the product does not show (ChatGPT's hidden system and context
    messages, its hidden reasoning) is skipped. A conversation imported before (its source
    id is remembered) is skipped; one that cannot be read or stored fails alone. Returns
    the report, per conversation."""
    import zipfile

    import ijson

    uid = as_uuid("user_id", user_id)
    await get_user(user_id=uid)  # NotFound before anything is read
    report = ImportReport()
    entries = _entries(source)
    while True:
        try:
            item = next(entries)
        except StopIteration:
            break
        except (ijson.JSONError, zipfile.BadZipFile, OSError, UnicodeDecodeError) as exc:
            # The stream is broken from here on: what was read before stays imported.
            reason = f"the export is not valid JSON from here on ({type(exc).__name__})"
            report.failed.append(Imported("?", "?", None, reason=reason))
            break
        source_id = (
            str(item.get("id") or item.get("uuid") or "?") if isinstance(item, dict) else "?"
        )
        title = str(item.get("title") or item.get("name") or "") if isinstance(item, dict) else ""
        try:
            conversation = _read(item)
            done = await _store(uid, conversation)
        except (
            ValidationError,
            QuotaExceeded,
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
        ) as exc:
            reason = exc.problem if isinstance(exc, ValidationError) else str(exc)
            field_name = f"{exc.field}: " if isinstance(exc, ValidationError) else ""
            report.failed.append(
                Imported("?", source_id, title or None, reason=field_name + reason)
            )
            continue
        (report.imported if done.messages else report.skipped).append(done)
    return report


__all__ = [
    "CHATGPT",
    "CLAUDE",
    "FACEPLATE",
    "KNOWN_SQL",
    "OPEN_WEBUI",
    "ImportReport",
    "Imported",
    "import_conversations",
]
