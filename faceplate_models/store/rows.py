"""Rows in and out: running the store's work, and models built straight from rows.

Every piece of work runs through the connection layer (`engine`): on a pooled connection
with one retry after a lost connection, or on the caller's transaction when there is one.
So every piece of work in the store is written to be repeatable: inserts carry a
client-generated uuid7 key and skip a key that exists, updates set absolute values,
upserts go by natural key, and deletes by key. With read replicas, a read of the acting
user runs where that user's writes are (`faceplate_models.replicas`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import asyncpg
from tortoise import fields
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.models import Model
from tortoise.timezone import get_default_timezone

from faceplate_models import replicas
from faceplate_models.engine import Connection, FaceplateClient, current
from faceplate_models.errors import NotFound

M = TypeVar("M", bound=Model)
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of a keyset-paginated listing.

    `next_cursor` continues in the same direction (None when nothing is left). For a
    conversation's history, `after_cursor` is where to resume once newer messages arrive:
    pass it as `get_history(after=...)` (None for an empty conversation).
    """

    items: list[M]
    next_cursor: str | None
    after_cursor: str | None = None


def now() -> datetime:
    """The time a write records, aware and in UTC."""
    return datetime.now(UTC)


def run(
    work: Callable[[Connection], Awaitable[T]],
    *,
    user: uuid.UUID | Callable[[T], uuid.UUID | None] | None,
    read: bool = False,
    long: bool = False,
) -> Awaitable[T]:
    """Run repeatable `work` for the acting `user`: on the caller's transaction, or on a
    pooled connection (a replica's, for a `read`, when replicas are configured).

    For a write, `user` may be a function of the work's result: the user whose reads must
    see the write, or None when nothing was written.
    """
    client = current()
    router = replicas.router()
    if router is None:
        return client.run(work, long=long)
    if isinstance(client, FaceplateClient):
        if read:
            assert not callable(user)  # noqa: S101 - a read names its user
            return router.read(user, work)
        return router.write(user, work, long)
    if not read and isinstance(user, uuid.UUID):  # known only when the caller commits
        router.wrote(user, None)
    return client.run(work, long=long)


def fetch(sql: str, *args: object, user: uuid.UUID | None) -> Awaitable[list[asyncpg.Record]]:
    """Read rows."""
    return run(lambda conn: conn.fetch(sql, *args), user=user, read=True)


def fetchrow(sql: str, *args: object, user: uuid.UUID | None) -> Awaitable[asyncpg.Record | None]:
    """Read a row."""
    return run(lambda conn: conn.fetchrow(sql, *args), user=user, read=True)


def write_row(sql: str, *args: object, user: uuid.UUID) -> Awaitable[asyncpg.Record | None]:
    """Write, returning a row."""
    return run(lambda conn: conn.fetchrow(sql, *args), user=user)


def execute(sql: str, *args: object, user: uuid.UUID, long: bool = False) -> Awaitable[str]:
    """Write, returning the command's status."""
    return run(lambda conn: conn.execute(sql, *args), user=user, long=long)


def missing(what: str, key: object) -> NotFound:
    """The error for a row that does not exist or is another user's (the same words)."""
    return NotFound(f"{what} {key} not found (it does not exist, or it is not this user's)")


def builder(model: type[M]) -> Callable[[Any], M]:
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


def page(
    rows: Sequence[asyncpg.Record],
    limit: int,
    build: Callable[[asyncpg.Record], M],
    cursor: Callable[[datetime, uuid.UUID], str],
    key: str,
) -> Page[M]:
    """The first `limit` rows as models; a cursor at the last when a row lies beyond."""
    items = [build(row) for row in rows[:limit]]
    if len(rows) <= limit:
        return Page(items, None)
    last = rows[limit - 1]
    return Page(items, cursor(last[key], last["id"]))


async def insert_owned(
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
            raise missing("user", uid) from None
        if row is None:
            row = await conn.fetchrow(
                f"SELECT {columns} FROM faceplate.{table} WHERE id = $1", row_id
            )
        assert row is not None  # noqa: S101 - the conflict proves the row exists
        return row

    return await run(insert, user=uid)


__all__ = [
    "Page",
    "builder",
    "execute",
    "fetch",
    "fetchrow",
    "insert_owned",
    "missing",
    "now",
    "page",
    "run",
    "write_row",
]
