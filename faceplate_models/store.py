"""The user-scoped store: everything the chat backend reads and writes, one job per function.

Every function is async and keyword-only and takes the acting `user_id`; a row of another
user is `NotFound`, exactly like a missing one. Arguments are validated before any SQL runs
(`ValidationError` names the field) so a rejected call writes nothing.

Queries are hand-written SQL on the pool's connections: keyset pagination needs row
comparisons Tortoise cannot express, and building the models straight from rows keeps the
hot paths close to the driver. The models stay the public types.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Generic, TypeVar

import asyncpg
from tortoise import connections, fields
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.models import Model
from tortoise.timezone import get_default_timezone
from uuid6 import uuid7

from faceplate_models.engine import Connection, FaceplateClient
from faceplate_models.errors import Conflict, NotFound, ValidationError
from faceplate_models.models import (
    EMAIL_MAX,
    MCP_NAME_MAX,
    SUBJECT_MAX,
    TASK_TITLE_MAX,
    TITLE_MAX,
    Conversation,
    MCPConfig,
    Message,
    Role,
    Task,
    User,
)

M = TypeVar("M", bound=Model)
T = TypeVar("T")

#: Largest text of a message or task description, in characters.
MAX_TEXT_CHARS: Final = 1_000_000
#: Largest JSON value (tool_calls, tool_results, an MCP config), encoded, in bytes.
MAX_JSON_BYTES: Final = 1_000_000
#: Deepest nesting of a JSON value; PostgreSQL's parser has a stack limit well above it.
MAX_JSON_DEPTH: Final = 64
#: Largest page a list function returns.
MAX_PAGE: Final = 1000


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: Default of optional update arguments: "leave as it is", unlike None, which clears.
UNSET: Final[Any] = _Unset()


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of a keyset-paginated listing; pass `next_cursor` back for the next one."""

    items: list[M]
    next_cursor: str | None


# --- validation: pure Python, before any SQL ---------------------------------------------


def _uuid(field: str, value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise ValidationError(field, f"must be a UUID, not {type(value).__name__} {value!r:.60}")


def _text(field: str, value: object, max_chars: int, *, strip: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be a string, not {type(value).__name__}")
    if strip:
        value = value.strip()
    if len(value) > max_chars:
        raise ValidationError(field, f"is {len(value)} characters long; the limit is {max_chars}")
    _check_string(field, value)
    return value


def _check_string(field: str, value: str) -> None:
    if "\x00" in value:
        raise ValidationError(field, "contains a NUL character, which PostgreSQL cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            field, "contains a lone surrogate, which is not valid Unicode text"
        ) from None


def _required_text(field: str, value: object, max_chars: int) -> str:
    text = _text(field, value, max_chars, strip=True)
    if not text:
        raise ValidationError(field, "must not be empty")
    return text


def _optional_text(field: str, value: object, max_chars: int) -> str | None:
    return None if value is None else _text(field, value, max_chars)


def _check_json(field: str, value: object, depth: int = 0) -> bool:
    """Reject what JSONB cannot hold; True when a float needs `_exact_json` to survive."""
    if depth > MAX_JSON_DEPTH:
        raise ValidationError(field, f"is nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool | int):
        return False
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(field, f"holds {value}, which JSON cannot represent")
        return value.is_integer() and abs(value) >= _FLOAT_EXPONENT_FROM
    if isinstance(value, str):
        _check_string(field, value)
        return False
    if isinstance(value, list | tuple):
        # A list, not a generator: any() must not stop before every item is checked.
        return any([_check_json(field, item, depth + 1) for item in value])  # noqa: C419
    if isinstance(value, dict):
        inexact = False
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(
                    field, f"has a {type(key).__name__} key; JSON keys are strings"
                )
            _check_string(field, key)
            inexact = _check_json(field, item, depth + 1) or inexact
        return inexact
    raise ValidationError(field, f"holds a {type(value).__name__}, which is not a JSON value")


# Python writes integral floats from 1e16 up in exponent form ("3.602879701896397e+16"), which
# JSONB stores as a decimal integer, so they would come back as a different int. Such floats
# are written out in full with a ".0", which JSONB keeps, and which reads back exactly.
_FLOAT_EXPONENT_FROM = 1e16


def _exact_json(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= _FLOAT_EXPONENT_FROM:
        return f"{int(value)}.0"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_exact_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k, ensure_ascii=False)}:{_exact_json(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    return json.dumps(value, ensure_ascii=False)


def _json(field: str, value: object) -> str:
    """Validate a JSON value and encode it for a JSONB parameter."""
    if _check_json(field, value):
        encoded = _exact_json(value)
    else:
        encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(encoded.encode("utf-8")) > MAX_JSON_BYTES:
        raise ValidationError(field, f"is larger than {MAX_JSON_BYTES} bytes as JSON")
    return encoded


def _optional_json(field: str, value: object) -> str | None:
    return None if value is None else _json(field, value)


def _limit(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PAGE:
        raise ValidationError("limit", f"must be a whole number from 1 to {MAX_PAGE}")
    return value


def _flag(field: str, value: object, *, optional: bool = False) -> bool | None:
    if (value is None and optional) or isinstance(value, bool):
        return value
    raise ValidationError(field, "must be True or False" + (" or None" if optional else ""))


def _email(value: object) -> str:
    email = _text("email", value, EMAIL_MAX, strip=True).lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email):
        raise ValidationError("email", "is not an email address")
    return email


def _role(value: object) -> Role:
    if isinstance(value, str) and value in _ROLES:
        return Role(value)
    allowed = ", ".join(_ROLES)
    raise ValidationError("role", f"must be one of {allowed}, not {value!r:.40}")


_ROLES = [role.value for role in Role]


def _tool_calls(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError("tool_calls", "must be a non-empty list of tool calls")
    for index, call in enumerate(value):
        call_id = call.get("id") if isinstance(call, dict) else None
        if not isinstance(call_id, str) or not call_id:
            raise ValidationError("tool_calls", f"entry {index} has no string 'id'")
    return _json("tool_calls", value)


# --- cursors -----------------------------------------------------------------------------


def _encode_cursor(at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(field: str, cursor: object) -> tuple[datetime, uuid.UUID]:
    if not isinstance(cursor, str):
        raise ValidationError(field, "must be a cursor string from a previous page")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, row_id = raw.split("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return moment, uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError(field, "is not a cursor this API issued") from None


# --- database access ---------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _run(work: Callable[[Connection], Awaitable[T]]) -> Awaitable[T]:
    """Run `work` on a pooled connection, once more if the connection is lost.

    So every piece of work in this module is written to be repeatable: inserts carry a
    client-generated uuid7 key and skip a key that exists, updates set absolute values,
    upserts go by natural key, and deletes by key.
    """
    client: FaceplateClient = connections.get("default")
    return client.run(work)


def _fetch(sql: str, *args: object) -> Awaitable[list[asyncpg.Record]]:
    return _run(lambda conn: conn.fetch(sql, *args))


def _fetchrow(sql: str, *args: object) -> Awaitable[asyncpg.Record | None]:
    return _run(lambda conn: conn.fetchrow(sql, *args))


def _execute(sql: str, *args: object) -> Awaitable[str]:
    return _run(lambda conn: conn.execute(sql, *args))


def _build(model: type[M]) -> Callable[[Any], M]:
    """A model instance straight from a row whose columns are the model's fields.

    The same instance Tortoise's `_init_from_db` makes, at a fraction of the cost on the hot
    paths: conversions are chosen once per model, and only columns that need one get one.
    """
    conversions: list[tuple[str, Callable[[Any], Any]]] = []
    for field in model._meta.fields_map.values():
        if isinstance(field, fields.DatetimeField):
            conversions.append((field.model_field_name, _utc))
        elif isinstance(field, fields.JSONField):
            conversions.append((field.model_field_name, field.decoder))
        elif isinstance(field, CharEnumFieldInstance):
            conversions.append((field.model_field_name, field.enum_type))
    custom_pk = model._meta.db_pk_column not in model._meta.generated_db_fields
    new = model.__new__

    def build(row: Any) -> M:
        state = dict(row)
        for column, convert in conversions:
            if (value := state[column]) is not None:
                state[column] = convert(value)
        state.update(
            _partial=False, _saved_in_db=True, _custom_generated_pk=custom_pk, _await_when_save={}
        )
        instance = new(model)
        instance.__dict__.update(state)
        return instance

    return build


def _utc(moment: datetime) -> datetime:
    # What Tortoise's DatetimeField does to an aware value: the configured zone (UTC here).
    return moment.astimezone(get_default_timezone())


_users = _build(User)
_conversations = _build(Conversation)
_messages = _build(Message)
_mcp_configs = _build(MCPConfig)
_tasks = _build(Task)


def _page(
    rows: Sequence[asyncpg.Record], limit: int, build: Callable[[asyncpg.Record], M], key: str
) -> Page[M]:
    items = [build(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return Page(items, None)
    last = rows[limit - 1]
    return Page(items, _encode_cursor(last[key], last["id"]))


def _missing(what: str, key: object) -> NotFound:
    return NotFound(f"{what} {key} not found (it does not exist, or it is not this user's)")


# --- users -------------------------------------------------------------------------------

_USER_COLUMNS = "id, email, subject_id, created_at, updated_at"
UPSERT_USER_SQL = f"""INSERT INTO faceplate.users ({_USER_COLUMNS}) VALUES ($1, $2, $3, $4, $4)
    ON CONFLICT (subject_id) DO UPDATE SET email = EXCLUDED.email, updated_at = EXCLUDED.updated_at
      WHERE users.email <> EXCLUDED.email
    RETURNING {_USER_COLUMNS}"""
USER_BY_SUBJECT_SQL = f"SELECT {_USER_COLUMNS} FROM faceplate.users WHERE subject_id = $1"


async def get_or_create_user(*, subject_id: str, email: str) -> User:
    """The user with this identity-provider subject, created on first login.

    Safe when requests race: exactly one user is created. The email is stored trimmed
    and lower-cased, and updated when the identity provider reports a new one.
    """
    subject = _required_text("subject_id", subject_id, SUBJECT_MAX)
    address = _email(email)
    user_id, now = uuid7(), _now()

    async def upsert(conn: Connection) -> asyncpg.Record | None:
        try:
            row = await conn.fetchrow(UPSERT_USER_SQL, user_id, address, subject, now)
        except asyncpg.UniqueViolationError:
            raise Conflict(
                f"email {address} already belongs to another user (a different subject_id)"
            ) from None
        if row is None:  # existing user, email unchanged: the conflict updated nothing
            row = await conn.fetchrow(USER_BY_SUBJECT_SQL, subject)
        return row

    return _users(await _run(upsert))


async def get_user(*, user_id: uuid.UUID | str) -> User:
    """The user with this id."""
    uid = _uuid("user_id", user_id)
    row = await _fetchrow(f"SELECT {_USER_COLUMNS} FROM faceplate.users WHERE id = $1", uid)
    if row is None:
        raise _missing("user", uid)
    return _users(row)


async def delete_user(*, user_id: uuid.UUID | str) -> None:
    """Delete the user and, by cascade, their conversations, messages, MCP configs and tasks."""
    uid = _uuid("user_id", user_id)
    status = await _execute("DELETE FROM faceplate.users WHERE id = $1", uid)
    if status == "DELETE 0":
        raise _missing("user", uid)


# --- conversations -----------------------------------------------------------------------

_CONVERSATION_COLUMNS = "id, user_id, title, created_at, updated_at"
# The listing queries are module constants so that the EXPLAIN tests check these very strings.
CONVERSATIONS_SQL = f"""SELECT {_CONVERSATION_COLUMNS} FROM faceplate.conversations
    WHERE user_id = $1 ORDER BY updated_at DESC, id DESC LIMIT $2"""
CONVERSATIONS_AFTER_SQL = f"""SELECT {_CONVERSATION_COLUMNS} FROM faceplate.conversations
    WHERE user_id = $1 AND (updated_at, id) < ($3, $4) ORDER BY updated_at DESC, id DESC LIMIT $2"""


async def _insert_owned(
    table: str, columns: str, sql: str, uid: uuid.UUID, row_id: uuid.UUID, *args: object
) -> asyncpg.Record:
    """Run `sql`, an INSERT ... RETURNING of row `row_id` owned by `uid` ($1 and $2).

    A missing user is NotFound. An insert that skips an existing key (ON CONFLICT (id) DO
    NOTHING) is a retry whose first attempt landed: the row is read back, not written twice.
    """

    async def insert(conn: Connection) -> asyncpg.Record:
        try:
            row = await conn.fetchrow(sql, uid, row_id, *args)
        except asyncpg.ForeignKeyViolationError:
            raise _missing("user", uid) from None
        if row is None:
            row = await conn.fetchrow(
                f"SELECT {columns} FROM faceplate.{table} WHERE id = $1", row_id
            )
        assert row is not None  # noqa: S101 - the conflict proves the row exists
        return row

    return await _run(insert)


async def create_conversation(
    *, user_id: uuid.UUID | str, title: str | None = None
) -> Conversation:
    """Start a new, empty conversation."""
    uid = _uuid("user_id", user_id)
    name = None if title is None else _required_text("title", title, TITLE_MAX)
    now = _now()
    row = await _insert_owned(
        "conversations",
        _CONVERSATION_COLUMNS,
        f"""INSERT INTO faceplate.conversations ({_CONVERSATION_COLUMNS})
            VALUES ($2, $1, $3, $4, $4) ON CONFLICT (id) DO NOTHING
            RETURNING {_CONVERSATION_COLUMNS}""",
        uid,
        uuid7(),
        name,
        now,
    )
    return _conversations(row)


async def get_conversation(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str
) -> Conversation:
    """One conversation of the user."""
    uid = _uuid("user_id", user_id)
    cid = _uuid("conversation_id", conversation_id)
    row = await _fetchrow(
        f"""SELECT {_CONVERSATION_COLUMNS} FROM faceplate.conversations
            WHERE id = $1 AND user_id = $2""",
        cid,
        uid,
    )
    if row is None:
        raise _missing("conversation", cid)
    return _conversations(row)


async def list_conversations(
    *, user_id: uuid.UUID | str, limit: int = 50, cursor: str | None = None
) -> Page[Conversation]:
    """The user's conversations, latest activity first, `limit` at a time.

    A conversation that gets a new message while someone pages moves to the front; it is
    not shown again on a later page, nor lost, only the page it was on moves.
    """
    uid = _uuid("user_id", user_id)
    size = _limit(limit)
    args: tuple[object, ...] = (uid, size + 1)
    if cursor is not None:
        args = (*args, *_decode_cursor("cursor", cursor))
    rows = await _fetch(CONVERSATIONS_AFTER_SQL if cursor is not None else CONVERSATIONS_SQL, *args)
    return _page(rows, size, _conversations, "updated_at")


async def rename_conversation(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str, title: str | None
) -> Conversation:
    """Give the conversation a new title (None clears it); this counts as activity."""
    uid = _uuid("user_id", user_id)
    cid = _uuid("conversation_id", conversation_id)
    name = None if title is None else _required_text("title", title, TITLE_MAX)
    row = await _fetchrow(
        f"""UPDATE faceplate.conversations SET title = $3, updated_at = GREATEST(updated_at, $4)
            WHERE id = $1 AND user_id = $2 RETURNING {_CONVERSATION_COLUMNS}""",
        cid,
        uid,
        name,
        _now(),
    )
    if row is None:
        raise _missing("conversation", cid)
    return _conversations(row)


async def delete_conversation(
    *, user_id: uuid.UUID | str, conversation_id: uuid.UUID | str
) -> None:
    """Delete the conversation and all its messages."""
    uid = _uuid("user_id", user_id)
    cid = _uuid("conversation_id", conversation_id)
    status = await _execute(
        "DELETE FROM faceplate.conversations WHERE id = $1 AND user_id = $2", cid, uid
    )
    if status == "DELETE 0":
        raise _missing("conversation", cid)


# --- messages ----------------------------------------------------------------------------

_MESSAGE_COLUMNS = "id, conversation_id, role, content, tool_calls, tool_results, created_at"
# Ownership is part of the statement: another user's conversation yields no rows, exactly
# like a missing one.
HISTORY_SQL = f"""SELECT {_MESSAGE_COLUMNS} FROM faceplate.messages
    WHERE conversation_id = (SELECT id FROM faceplate.conversations WHERE id = $1 AND user_id = $2)
    ORDER BY created_at DESC, id DESC LIMIT $3"""
# Ownership and the activity time in one statement, which also locks the conversation.
TOUCH_CONVERSATION_SQL = """UPDATE faceplate.conversations
    SET updated_at = GREATEST(updated_at, $3) WHERE id = $1 AND user_id = $2 RETURNING id"""
APPEND_SQL = f"""INSERT INTO faceplate.messages ({_MESSAGE_COLUMNS})
    VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7) ON CONFLICT (id) DO NOTHING
    RETURNING {_MESSAGE_COLUMNS}"""
MESSAGE_SQL = f"SELECT {_MESSAGE_COLUMNS} FROM faceplate.messages WHERE id = $1"
HISTORY_BEFORE_SQL = f"""SELECT {_MESSAGE_COLUMNS} FROM faceplate.messages
    WHERE conversation_id = (SELECT id FROM faceplate.conversations WHERE id = $1 AND user_id = $2)
      AND (created_at, id) < ($4, $5)
    ORDER BY created_at DESC, id DESC LIMIT $3"""


async def append_message(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    role: Role | str,
    content: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_results: Any = None,
) -> Message:
    """Add a message to the conversation and move the conversation's activity time.

    `content` may be None only for an assistant turn that calls tools or a tool turn that
    carries `tool_results`. `tool_calls` (assistant turns only) is a list of calls, each
    with a string `id`; `tool_results` (tool turns only) is any JSON value.
    """
    uid = _uuid("user_id", user_id)
    cid = _uuid("conversation_id", conversation_id)
    kind = _role(role)
    text = _optional_text("content", content, MAX_TEXT_CHARS)
    calls = _tool_calls(tool_calls)
    results = _optional_json("tool_results", tool_results)
    if calls is not None and kind is not Role.ASSISTANT:
        raise ValidationError("tool_calls", f"only assistant messages call tools, not {kind}")
    if results is not None and kind is not Role.TOOL:
        raise ValidationError("tool_results", f"only tool messages carry results, not {kind}")
    if text is None and calls is None and results is None:
        raise ValidationError("content", "is required unless the message has tool calls or results")
    message_id, now = uuid7(), _now()

    async def append(conn: Connection) -> asyncpg.Record | None:
        async with conn.transaction():
            # The UPDATE proves ownership and locks the conversation, so concurrent appends
            # to one conversation commit in the order of their timestamps. GREATEST keeps a
            # retry from moving the activity time back behind a later append.
            owned = await conn.fetchval(TOUCH_CONVERSATION_SQL, cid, uid, now)
            if owned is None:
                raise _missing("conversation", cid)
            row = await conn.fetchrow(
                APPEND_SQL, message_id, cid, kind.value, text, calls, results, now
            )
            if row is None:  # a retry whose first attempt committed
                row = await conn.fetchrow(MESSAGE_SQL, message_id)
        return row

    return _messages(await _run(append))


async def get_history(
    *,
    user_id: uuid.UUID | str,
    conversation_id: uuid.UUID | str,
    limit: int = 100,
    before: str | None = None,
) -> Page[Message]:
    """The newest `limit` messages before the cursor, oldest first, ready for a model.

    `next_cursor` (pass it as `before=`) leads to the older messages; it is None at the
    start of the conversation.
    """
    uid = _uuid("user_id", user_id)
    cid = _uuid("conversation_id", conversation_id)
    size = _limit(limit)
    args: tuple[object, ...] = (cid, uid, size + 1)
    if before is not None:
        args = (*args, *_decode_cursor("before", before))

    async def read(conn: Connection) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await conn.fetch(
            HISTORY_BEFORE_SQL if before is not None else HISTORY_SQL, *args
        )
        if not rows and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM faceplate.conversations WHERE id = $1 AND user_id = $2)",
            cid,
            uid,
        ):
            raise _missing("conversation", cid)
        return rows

    page = _page(await _run(read), size, _messages, "created_at")
    page.items.reverse()
    return page


# --- MCP configs -------------------------------------------------------------------------

_MCP_COLUMNS = "id, user_id, name, config, enabled, created_at, updated_at"


async def save_mcp_config(
    *, user_id: uuid.UUID | str, name: str, config: dict[str, Any], enabled: bool = True
) -> MCPConfig:
    """Create the user's MCP config of this name, or replace its config and enabled flag."""
    uid = _uuid("user_id", user_id)
    label = _required_text("name", name, MCP_NAME_MAX)
    if not isinstance(config, dict):
        raise ValidationError("config", f"must be a JSON object, not {type(config).__name__}")
    body = _json("config", config)
    on = _flag("enabled", enabled)
    now = _now()
    row = await _insert_owned(
        "mcp_configs",
        _MCP_COLUMNS,
        f"""INSERT INTO faceplate.mcp_configs ({_MCP_COLUMNS})
            VALUES ($2, $1, $3, $4::jsonb, $5, $6, $6)
            ON CONFLICT (user_id, name) DO UPDATE SET config = EXCLUDED.config,
                enabled = EXCLUDED.enabled, updated_at = EXCLUDED.updated_at
            RETURNING {_MCP_COLUMNS}""",
        uid,
        uuid7(),
        label,
        body,
        on,
        now,
    )
    return _mcp_configs(row)


async def list_mcp_configs(
    *, user_id: uuid.UUID | str, enabled: bool | None = None
) -> list[MCPConfig]:
    """The user's MCP configs by name, optionally only the enabled (or disabled) ones."""
    uid = _uuid("user_id", user_id)
    state = _flag("enabled", enabled, optional=True)
    rows = await _fetch(
        f"""SELECT {_MCP_COLUMNS} FROM faceplate.mcp_configs
            WHERE user_id = $1 AND ($2::boolean IS NULL OR enabled = $2) ORDER BY name""",
        uid,
        state,
    )
    return [_mcp_configs(row) for row in rows]


async def delete_mcp_config(*, user_id: uuid.UUID | str, name: str) -> None:
    """Delete the user's MCP config of this name."""
    uid = _uuid("user_id", user_id)
    label = _required_text("name", name, MCP_NAME_MAX)
    status = await _execute(
        "DELETE FROM faceplate.mcp_configs WHERE user_id = $1 AND name = $2", uid, label
    )
    if status == "DELETE 0":
        raise _missing("MCP config", repr(label))


# --- tasks -------------------------------------------------------------------------------

_TASK_COLUMNS = "id, user_id, title, description, completed, created_at, updated_at"


def tasks_sql(by_state: bool, after: bool) -> str:
    """The task listing: $1 user, $2 limit, then the state and the cursor when given.

    Four spellings of one query, so that each matches an index exactly: a generic
    "($3 IS NULL OR completed = $3)" would hide the state from the planner.
    """
    where = ["user_id = $1"]
    if by_state:
        where.append("completed = $3")
    if after:
        first = 4 if by_state else 3
        where.append(f"(created_at, id) > (${first}, ${first + 1})")
    return (
        f"SELECT {_TASK_COLUMNS} FROM faceplate.tasks WHERE {' AND '.join(where)} "
        "ORDER BY created_at, id LIMIT $2"
    )


async def add_task(*, user_id: uuid.UUID | str, title: str, description: str | None = None) -> Task:
    """Add an open task to the user's list."""
    uid = _uuid("user_id", user_id)
    name = _required_text("title", title, TASK_TITLE_MAX)
    text = _optional_text("description", description, MAX_TEXT_CHARS)
    now = _now()
    row = await _insert_owned(
        "tasks",
        _TASK_COLUMNS,
        f"""INSERT INTO faceplate.tasks ({_TASK_COLUMNS})
            VALUES ($2, $1, $3, $4, false, $5, $5) ON CONFLICT (id) DO NOTHING
            RETURNING {_TASK_COLUMNS}""",
        uid,
        uuid7(),
        name,
        text,
        now,
    )
    return _tasks(row)


async def list_tasks(
    *,
    user_id: uuid.UUID | str,
    completed: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[Task]:
    """The user's tasks in the order they were added, optionally only open or only done ones."""
    uid = _uuid("user_id", user_id)
    state = _flag("completed", completed, optional=True)
    size = _limit(limit)
    after = _decode_cursor("cursor", cursor) if cursor is not None else None
    args: list[object] = [uid, size + 1]
    if state is not None:
        args.append(state)
    if after is not None:
        args.extend(after)
    rows = await _fetch(tasks_sql(state is not None, after is not None), *args)
    return _page(rows, size, _tasks, "created_at")


async def update_task(
    *,
    user_id: uuid.UUID | str,
    task_id: uuid.UUID | str,
    title: str = UNSET,
    description: str | None = UNSET,
    completed: bool = UNSET,
) -> Task:
    """Change the given fields of a task; a field not passed keeps its value."""
    uid = _uuid("user_id", user_id)
    tid = _uuid("task_id", task_id)
    changes: dict[str, object] = {}
    if title is not UNSET:
        changes["title"] = _required_text("title", title, TASK_TITLE_MAX)
    if description is not UNSET:
        changes["description"] = _optional_text("description", description, MAX_TEXT_CHARS)
    if completed is not UNSET:
        changes["completed"] = _flag("completed", completed)
    changes["updated_at"] = _now()
    assignments = ", ".join(f"{column} = ${i}" for i, column in enumerate(changes, start=3))
    row = await _fetchrow(
        f"""UPDATE faceplate.tasks SET {assignments}
            WHERE id = $1 AND user_id = $2 RETURNING {_TASK_COLUMNS}""",
        tid,
        uid,
        *changes.values(),
    )
    if row is None:
        raise _missing("task", tid)
    return _tasks(row)


async def complete_task(*, user_id: uuid.UUID | str, task_id: uuid.UUID | str) -> Task:
    """Mark a task done (doing it twice is harmless)."""
    return await update_task(user_id=user_id, task_id=task_id, completed=True)


async def delete_task(*, user_id: uuid.UUID | str, task_id: uuid.UUID | str) -> None:
    """Delete a task."""
    uid = _uuid("user_id", user_id)
    tid = _uuid("task_id", task_id)
    status = await _execute("DELETE FROM faceplate.tasks WHERE id = $1 AND user_id = $2", tid, uid)
    if status == "DELETE 0":
        raise _missing("task", tid)


__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_PAGE",
    "MAX_TEXT_CHARS",
    "UNSET",
    "Page",
    "add_task",
    "append_message",
    "complete_task",
    "create_conversation",
    "delete_conversation",
    "delete_mcp_config",
    "delete_task",
    "delete_user",
    "get_conversation",
    "get_history",
    "get_or_create_user",
    "get_user",
    "list_conversations",
    "list_mcp_configs",
    "list_tasks",
    "rename_conversation",
    "save_mcp_config",
    "update_task",
]
