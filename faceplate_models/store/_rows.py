"""Rows in and out: running the store's work, and models built straight from rows.

Every piece of work runs through the connection layer (`engine`): on a pooled connection
with one retry after a lost connection, or on the caller's transaction when there is one.
So every piece of work in the store is written to be repeatable: inserts carry a
client-generated uuid7 key and skip a key that exists, updates set absolute values,
upserts go by natural key, and deletes by key. With read replicas, a read of the acting
user runs where that user's writes are (`faceplate_models.replicas`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Generic, Literal, TypeGuard, TypeVar, overload

import asyncpg
from tortoise import fields
from tortoise.fields.data import CharEnumFieldInstance
from tortoise.fields.relational import ForeignKeyFieldInstance, RelationalField
from tortoise.models import Model
from tortoise.timezone import get_default_timezone

from faceplate_models import replicas
from faceplate_models.engine import Connection, FaceplateClient, current
from faceplate_models.errors import Conflict, NotFound
from faceplate_models.store import _quotas as quotas

M = TypeVar("M", bound=Model)
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a keyset-paginated listing: `next_cursor` continues in the same direction
    (None when nothing is left)."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class HistoryPage(Page[M]):
    """A page of a conversation's history, oldest first, along one path of its tree.

    `after_cursor` is where to resume once newer messages arrive: pass it as
    `get_history(after=...)` (None for an empty conversation). `system` is the
    conversation's system prompt (from its settings), for the model APIs' converters,
    whichever window of the history the page is.
    """

    system: str | None = None
    # Made on first use: most pages are never resumed from.
    resume: Callable[[], str | None] = field(default=lambda: None, compare=False, repr=False)

    @functools.cached_property
    def after_cursor(self) -> str | None:
        return self.resume()


def columns(model: type[Model]) -> str:
    """The model's columns in the order its fields are declared (a foreign key `user` is the
    column `user_id`), for the store's whole-row SQL."""
    names: list[str] = []
    for name, model_field in model._meta.fields_map.items():
        if isinstance(model_field, ForeignKeyFieldInstance):
            names.append(f"{name}_id")
        elif not isinstance(model_field, RelationalField) and name not in names:
            names.append(model_field.source_field or name)
    return ", ".join(names)


def now() -> datetime:
    """The time a write records, aware and in UTC."""
    return datetime.now(UTC)


def alone(client: object) -> TypeGuard[FaceplateClient]:
    """Whether the store's work runs outside the caller's transaction, on a pooled
    connection: there a single statement commits by itself, in one round trip."""
    return isinstance(client, FaceplateClient)


def run(
    work: Callable[[Connection], Awaitable[T]],
    *,
    user: uuid.UUID | Callable[[T], uuid.UUID | None] | None,
    read: bool = False,
    long: bool = False,
    conversation: uuid.UUID | None = None,
) -> Awaitable[T]:
    """Run repeatable `work` for the acting `user`: on the caller's transaction, or on a
    pooled connection (a replica's, for a `read`, when replicas are configured).

    For a write, `user` may be a function of the work's result: the user whose reads must
    see the write, or None when nothing was written. Before it takes a pooled connection,
    the call passes its user's gate and, for work that takes `conversation`'s row lock,
    that conversation's (`engine.gates`).
    """
    client = current()
    router = replicas.router()
    if isinstance(client, FaceplateClient):
        return _pooled(client, router, work, user, read, long, conversation)
    if router is not None and not read and isinstance(user, uuid.UUID):
        router.wrote(user, None)  # known only when the caller commits
    return client.run(work, long=long, write=not read)


async def _pooled(
    client: FaceplateClient,
    router: replicas.Replicas | None,
    work: Callable[[Connection], Awaitable[T]],
    user: uuid.UUID | Callable[[T], uuid.UUID | None] | None,
    read: bool,
    long: bool,
    conversation: uuid.UUID | None,
) -> T:
    acting = user if isinstance(user, uuid.UUID) else None
    async with client.admit(user=acting, conversation=conversation):
        if router is None:
            return await client.run(work, long=long, write=not read)
        if read:
            assert not callable(user)  # noqa: S101 - a read names its user
            return await router.read(user, work)
        return await router.write(user, work, long)


def fetch(sql: str, *args: object, user: uuid.UUID | None) -> Awaitable[list[asyncpg.Record]]:
    """Read rows."""
    return run(lambda conn: conn.fetch(sql, *args), user=user, read=True)


def fetchrow(sql: str, *args: object, user: uuid.UUID | None) -> Awaitable[asyncpg.Record | None]:
    """Read a row."""
    return run(lambda conn: conn.fetchrow(sql, *args), user=user, read=True)


def write_row(
    sql: str, *args: object, user: uuid.UUID, conversation: uuid.UUID | None = None
) -> Awaitable[asyncpg.Record | None]:
    """Write, returning a row (`conversation`: the conversation whose row it locks)."""
    return run(lambda conn: conn.fetchrow(sql, *args), user=user, conversation=conversation)


def execute(
    sql: str,
    *args: object,
    user: uuid.UUID,
    long: bool = False,
    conversation: uuid.UUID | None = None,
) -> Awaitable[str]:
    """Write, returning the command's status (`conversation`: the one whose row it locks).

    A `long` statement (a delete that cascades through a whole history) needs the long
    statement timeout, which only SET LOCAL gives it: outside the caller's transaction it
    is sent with that SET as one simple query, which the server runs as one transaction in
    one round trip; its arguments, keys only, are written into it as literals.
    """
    client = current()
    if not long:
        return run(lambda conn: conn.execute(sql, *args), user=user, conversation=conversation)
    if alone(client):
        bounds = client.transaction_bounds(long=True)
        script = f"{bounds};{_with_keys(sql, args)}"
        return run(
            lambda conn: conn.execute(script), user=user, long=True, conversation=conversation
        )

    async def in_transaction(conn: Connection) -> str:
        async with client.atomic(conn, long=True):
            status: str = await conn.execute(sql, *args)
        return status

    return run(in_transaction, user=user, long=True, conversation=conversation)


def _with_keys(sql: str, keys: Sequence[object]) -> str:
    """`sql` with its parameters ($1, $2, ...) replaced by `keys`, as uuid literals: a UUID's
    text is hex digits and dashes only, so nothing in it can end the literal."""
    for number in range(len(keys), 0, -1):  # $10 before $1
        key = keys[number - 1]
        if not isinstance(key, uuid.UUID):
            raise TypeError(f"parameter ${number} of a long statement must be a key, not {key!r}")
        sql = sql.replace(f"${number}", f"'{key}'::uuid")
    return sql


async def delete_owned(table: str, what: str, key: uuid.UUID, uid: uuid.UUID) -> None:
    """Delete row `key` of `table` if it is `uid`'s; else `NotFound` naming it a `what`."""
    status = await execute(
        f"DELETE FROM faceplate.{table} WHERE id = $1 AND user_id = $2", key, uid, user=uid
    )
    if status == "DELETE 0":
        raise missing(what, key)


#: The SQLSTATE of the schema's functions (migration 15) for a row that is not the user's:
#: its MESSAGE says what it is, its DETAIL the key.
NOT_THEIRS: Final = "FP404"


def not_theirs(exc: BaseException) -> NotFound | None:
    """The `NotFound` a function of the schema raised, or None for any other error."""
    if getattr(exc, "sqlstate", None) != NOT_THEIRS:
        return None
    return missing(str(exc.args[0]), uuid.UUID(getattr(exc, "detail", "")))


def missing(what: str, key: object) -> NotFound:
    """The error for a row that does not exist or is another user's (the same words)."""
    return NotFound(f"{what} {key} not found (it does not exist, or it is not this user's)")


class Builder(Generic[M]):
    """Makes model instances from rows of `columns` (in that order).

    An instance is the one Tortoise's `_init_from_db` makes (a test compares them, tzinfo
    included), at a fraction of the cost: a function generated once per model and query
    shape fills the instance's `__dict__` with one dict literal, converting only the
    columns that need it (datetimes to the configured zone, JSON, enums). This is the
    store's hottest code: a page of history is a hundred rows. The function is made on
    first use, once Tortoise has finished the models and read the configured zone.
    """

    def __init__(
        self,
        model: type[M],
        columns: str,
        *,
        extra: tuple[str, ...] = (),
        given: tuple[str, ...] = (),
        convert: dict[str, Callable[[Any], Any]] | None = None,
    ) -> None:
        self.model = model
        self.columns = [column.strip() for column in columns.split(",")]
        # Computed columns after the model's (a message's siblings), kept as they come
        # unless `convert` has a function for one.
        self.extra = extra
        self.convert = convert or {}
        # Fields the caller knows, passed to `many` rather than fetched with every row.
        self.given = given
        self._build: Callable[..., M] | None = None

    def __call__(self, row: Any) -> M:
        return (self._build or self._compile())(row)

    def many(self, rows: Sequence[Any], *given: object) -> list[M]:
        build = self._build or self._compile()
        if given:
            return [build(row, *given) for row in rows]
        return list(map(build, rows))

    def _compile(self) -> Callable[[Any], M]:
        meta = self.model._meta
        # object.__setattr__: Tortoise's Model.__setattr__ costs half a microsecond a row.
        scope: dict[str, Any] = {
            "new": self.model.__new__,
            "model": self.model,
            "set": object.__setattr__,
        }
        entries = []
        for index, column in enumerate(self.columns):
            name = meta.fields_db_projection_reverse.get(column, column)
            field = meta.fields_map[name]
            value = f"row[{index}]"
            convert = None
            if isinstance(field, fields.DatetimeField):
                # What DatetimeField does to an aware value: the configured zone (UTC).
                scope["zone"] = get_default_timezone()
                convert = f"{value}.astimezone(zone)"
            elif isinstance(field, fields.JSONField):
                scope[f"decode_{index}"] = field.decoder
                convert = f"decode_{index}({value})"
            elif isinstance(field, CharEnumFieldInstance):
                scope[f"enum_{index}"] = {member.value: member for member in field.enum_type}
                convert = f"enum_{index}[{value}]"
            if convert is not None and field.null:
                convert = f"None if {value} is None else {convert}"
            entries.append(f"{name!r}: {convert or value}")
        for index, name in enumerate(self.extra, len(self.columns)):
            if name in self.convert:
                scope[f"convert_{index}"] = self.convert[name]
                entries.append(f"{name!r}: convert_{index}(row[{index}])")
            else:
                entries.append(f"{name!r}: row[{index}]")
        entries += [f"{name!r}: given_{index}" for index, name in enumerate(self.given)]
        # Without some of the model's fields it is a partial instance, as `.only()` makes.
        partial = set(meta.db_fields) - set(self.columns) - set(self.given)
        custom_pk = meta.db_pk_column not in meta.generated_db_fields
        entries += [
            f"'_partial': {bool(partial)}",
            "'_saved_in_db': True",
            f"'_custom_generated_pk': {custom_pk}",
            "'_await_when_save': {}",
        ]
        # The helpers are default arguments: local names are the fastest to look up.
        helpers = ", ".join(f"{name}={name}" for name in scope)
        given = "".join(f"given_{index}, " for index in range(len(self.given)))
        source = (
            f"def build(row, {given}{helpers}):\n"
            "    instance = new(model)\n"
            f"    set(instance, '__dict__', {{{', '.join(entries)}}})\n"
            "    return instance\n"
        )
        exec(source, scope)  # noqa: S102 - the source is made here, from the model's fields
        self._build = scope["build"]
        return self._build


def builder(
    model: type[M],
    columns: str,
    *,
    extra: tuple[str, ...] = (),
    given: tuple[str, ...] = (),
    convert: dict[str, Callable[[Any], Any]] | None = None,
) -> Builder[M]:
    """A `Builder` of `model` instances from rows of `columns` (then `extra` ones, through
    `convert`'s function where it has one), with the fields `given` passed to `many`."""
    return Builder(model, columns, extra=extra, given=given, convert=convert)


def within_budget(
    select: str, *, columns: str, order: str, budget: str, keep: int = 1, first: str = ""
) -> str:
    """`select`'s rows (with a `size` column, in bytes) in `order`, ending once their sizes
    pass `budget` (a parameter; the first `keep` rows are always returned), so that a page
    of large rows costs its reader a bounded amount of memory. Each row says how many rows
    there were before the cut (`available`: `cut` reads it); `first` adds a column that only
    the first row carries."""
    return f"""SELECT {columns}, available{first} FROM (
        SELECT s.*, sum(s.size) OVER w AS running, row_number() OVER w AS place,
            count(*) OVER () AS available
        FROM ({select}) s WINDOW w AS (ORDER BY {order} ROWS UNBOUNDED PRECEDING)
    ) budgeted WHERE running - size < {budget} OR place <= {keep} ORDER BY {order}"""


def cut(rows: Sequence[asyncpg.Record]) -> bool:
    """Whether `within_budget` left rows at the server: the page goes on after its last."""
    return bool(rows) and rows[0]["available"] > len(rows)


def page(
    rows: Sequence[asyncpg.Record],
    limit: int,
    build: Builder[M],
    cursor: Callable[[datetime, uuid.UUID], str],
    key: str,
) -> Page[M]:
    """The first `limit` rows as models; a cursor at the last when a row lies beyond (or
    was left beyond the byte budget)."""
    items = build.many(rows[:limit])
    if len(rows) <= limit and not cut(rows):
        return Page(items, None)
    last = rows[:limit][-1]
    return Page(items, cursor(last[key], last["id"]))


#: The user's row, locked against the writes that must see every row the user has: budget
#: reservations, and creates that count the user's rows against a limit.
LOCK_USER_SQL: Final = "SELECT id FROM faceplate.users WHERE id = $1 FOR NO KEY UPDATE"


@overload
async def locking(conn: Connection, sql: str, *args: object) -> asyncpg.Record | None: ...
@overload
async def locking(
    conn: Connection, sql: str, *args: object, rows: Literal[True]
) -> list[asyncpg.Record]: ...
async def locking(conn: Connection, sql: str, *args: object, rows: bool = False) -> Any:
    """The row (or all `rows`) of `sql`, a statement that locks, waited for at most the lock
    wait (`LockTimeout` after it)."""
    client = current()
    read = conn.fetch if rows else conn.fetchrow
    try:
        return await read(sql, *args, timeout=client.lock_wait)
    except TimeoutError:  # asyncpg has asked the server to cancel the wait
        raise client.waited_too_long() from None


async def lock_user(conn: Connection, uid: uuid.UUID) -> bool:
    """Lock the user's row, within the lock wait; whether the user exists. What the
    transaction reads next, in statements of its own, sees every row the user has."""
    return await locking(conn, LOCK_USER_SQL, uid) is not None


def below_limit(table: str, limit: str) -> str:
    """SQL: the user ($1), their row locked (by `faceplate.below_limit`, migration 15), has
    fewer than `limit` (a parameter) rows in `table`, counted after the lock and no further
    than the limit: concurrent creates count each other, and a check costs what the limit
    allows and no more. NULL (nothing inserted) when the user does not exist."""
    return f"faceplate.below_limit('{table}', $1, {limit})"


async def insert_owned(
    table: str,
    columns: str,
    sql: str,
    uid: uuid.UUID,
    row_id: uuid.UUID,
    *args: object,
    limit: str | None = None,
    then: Callable[[Connection], Awaitable[tuple[object, ...]]] | None = None,
    duplicate: Callable[[], Exception] | None = None,
) -> asyncpg.Record:
    """Run `sql`, an INSERT ... RETURNING of row `row_id` owned by `uid` ($1 and $2).

    A missing user is NotFound. An insert that skips an existing key (ON CONFLICT (id) DO
    NOTHING) is a retry (of this call's, or of the caller's with the same key) whose first
    attempt landed: the row is read back, not written twice. A key another user's row has,
    or a row of another kind, is a Conflict. With `limit` (a field of `Limits`), `sql`
    takes the limit as its last parameter and inserts nothing at it (`below_limit`, which
    locks the user's row: concurrent creates count each other), and a refused insert is
    `QuotaExceeded`: one statement, one round trip. `then(conn)`, called in a transaction
    after the user's row is locked, gives the parameters that follow `args` (what depends
    on the row as stored). `duplicate()` is the error of a row that would repeat another's
    unique value (a folder's name, say).
    """
    client = current()
    cap = () if limit is None else (getattr(quotas.limits(), limit),)

    async def insert(conn: Connection) -> asyncpg.Record:
        more = () if then is None else await then(conn)
        try:
            row = await conn.fetchrow(sql, uid, row_id, *args, *more, *cap)
        except asyncpg.ForeignKeyViolationError:
            raise missing("user", uid) from None
        except asyncpg.UniqueViolationError:
            if duplicate is None:
                raise
            raise duplicate() from None
        if row is None:  # a retry whose first attempt landed, a limit, or no such user
            row = await conn.fetchrow(_KEPT_SQL.format(columns=columns, table=table), row_id, uid)
            if row is not None and row["id"] is None:
                raise missing("user", uid)
            if row is None and limit is not None:
                raise quotas.exceeded(limit, f"user {uid}")
        if row is None or row["user_id"] != uid:
            raise Conflict(f"the key {row_id} is taken by another row: make a new uuid7")
        return row

    async def locked(conn: Connection) -> asyncpg.Record:
        async with client.atomic(conn):
            if not await lock_user(conn, uid):
                raise missing("user", uid)
            return await insert(conn)

    return await run(insert if then is None else locked, user=uid)


# The row of a key, and whether its user exists: a row of NULLs when the user does not.
_KEPT_SQL: Final = """SELECT k.* FROM (SELECT 1) AS one
    LEFT JOIN (SELECT {columns} FROM faceplate.{table} WHERE id = $1) AS k ON true
    WHERE k.id IS NOT NULL OR NOT EXISTS (SELECT 1 FROM faceplate.users WHERE id = $2)"""


__all__ = [
    "LOCK_USER_SQL",
    "NOT_THEIRS",
    "Builder",
    "HistoryPage",
    "Page",
    "alone",
    "below_limit",
    "builder",
    "columns",
    "cut",
    "delete_owned",
    "execute",
    "fetch",
    "fetchrow",
    "insert_owned",
    "lock_user",
    "locking",
    "missing",
    "not_theirs",
    "now",
    "page",
    "run",
    "within_budget",
    "write_row",
]
