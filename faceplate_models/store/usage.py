"""Usage, prices and budgets: what each answer cost, and limits that hold under concurrency.

Money is whole micro-units of one currency (an int: no float anywhere). A price is per
million tokens and in force from its `starts_at` until the next one; an answer's cost is
computed when it is stored, from the price in force then, and kept when prices change.
Every answer's usage is also summed, in the same transaction, into two rollups, per day and
model (what summaries by day or model, and budgets, read: a few rows a day, however many
conversations) and per day, conversation and model (summaries by conversation), never the
messages; both outlive a deleted conversation: what was spent stays spent.

A budget limits a user's spending per UTC day or month. `reserve` takes a hold of an
estimate under a lock of the user's row, refusing it (`BudgetExceeded`) when what the
period spent, plus the holds still running, plus the estimate would pass a limit; the
answer stored with `hold=` settles it in its own transaction (its cost replaces the
estimate), `release` gives it back, and a hold a crashed worker left lapses after its ttl.
An answer that costs more than its hold is still recorded: it was produced; the budget
then refuses further holds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal

import asyncpg

from faceplate_models.engine import Connection
from faceplate_models.errors import BudgetExceeded, ValidationError
from faceplate_models.ids import uuid7
from faceplate_models.models import (
    MODEL_NAME_MAX,
    PROVIDER_MAX,
    Budget,
    Hold,
    ModelPrice,
    UsageTotals,
)
from faceplate_models.store._rows import builder, columns, fetch, missing, now, run
from faceplate_models.validation import as_uuid, new_key, required_text

#: Largest price per million tokens, and largest budget: a trillion micro-units.
MAX_MONEY: Final = 10**12
#: Longest a hold lasts, in seconds: a day.
MAX_TTL: Final = 86_400
PERIODS: Final = ("day", "month")
GROUPINGS: Final = ("day", "model", "conversation")

_PRICE_COLUMNS: Final = columns(ModelPrice)
_prices = builder(ModelPrice, _PRICE_COLUMNS)
_BUDGET_COLUMNS: Final = columns(Budget)
_budgets = builder(Budget, _BUDGET_COLUMNS)
_HOLD_COLUMNS: Final = columns(Hold)
_holds = builder(Hold, _HOLD_COLUMNS)

SET_PRICE_SQL: Final = f"""INSERT INTO faceplate.model_prices ({_PRICE_COLUMNS})
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (provider, model, starts_at) DO UPDATE SET input = EXCLUDED.input,
        cached_input = EXCLUDED.cached_input, cache_write = EXCLUDED.cache_write,
        output = EXCLUDED.output
    RETURNING {_PRICE_COLUMNS}"""
#: What a usage row sums, in the order `Usage` takes them.
COUNTERS: Final = tuple(UsageTotals._meta.fields_map)
_SUMS: Final = ", ".join(f"sum({name}) AS {name}" for name in COUNTERS)
#: A user's usage over days [$2, $3), by day, by model or by conversation.
USAGE_SQL: Final = {
    by: f"""SELECT {key}, {_SUMS} FROM faceplate.{table}
        WHERE user_id = $1 AND day >= $2 AND day < $3 GROUP BY {key}"""
    for by, key, table in (
        ("day", "day", "usage_days"),
        ("model", "provider, model", "usage_days"),
        ("conversation", "conversation_id", "usage_rollups"),
    )
}
SET_BUDGET_SQL: Final = f"""INSERT INTO faceplate.budgets ({_BUDGET_COLUMNS})
    VALUES ($3, $1, $2, $4, $5, $5)
    ON CONFLICT (user_id, period) DO UPDATE SET spend_limit = EXCLUDED.spend_limit,
        updated_at = EXCLUDED.updated_at
    RETURNING {_BUDGET_COLUMNS}"""
_DROP_BUDGET_SQL: Final = "DELETE FROM faceplate.budgets WHERE user_id = $1 AND period = $2"
#: A user's reservations queue on the user's row (one row, so no order to deadlock on); the
#: check reads after it, in a statement of its own (a statement that waited for a row lock
#: reads a snapshot older than the wait). No key update: inserts that refer to the user
#: (their foreign keys take a key share) do not wait for it.
_NO_HOLD: Final = ", ".join(
    f"NULL::{kind}" for kind in ("uuid", "uuid", "bigint", "timestamptz", "timestamptz")
)
# $1 user, $2 hold id, $3 estimate, $4 now, $5 expiry, $6 today, $7 the month's first day.
# $2 is the hold's key: a hold already taken with it (a retry whose first attempt landed)
# is returned as it is, and nothing is taken again.
RESERVE_SQL: Final = f"""WITH before AS (
        SELECT {_HOLD_COLUMNS} FROM faceplate.holds WHERE id = $2 AND user_id = $1
    ), spent AS (
        SELECT b.period, b.spend_limit, coalesce((
            SELECT sum(r.cost) FROM faceplate.usage_days r
            WHERE r.user_id = $1
              AND r.day >= CASE b.period WHEN 'day' THEN $6::date ELSE $7::date END
        ), 0) AS spent
        FROM faceplate.budgets b WHERE b.user_id = $1
    ), held AS (
        SELECT coalesce(sum(amount), 0) AS held FROM faceplate.holds
        WHERE user_id = $1 AND expires_at > $4
    ), refused AS (
        SELECT spent.*, held.held FROM spent, held
        WHERE spent + held + $3 > spend_limit AND NOT EXISTS (SELECT 1 FROM before)
    ), taken AS (
        INSERT INTO faceplate.holds ({_HOLD_COLUMNS})
        SELECT $2, $1, $3, $5, $4
        WHERE NOT EXISTS (SELECT 1 FROM refused) AND NOT EXISTS (SELECT 1 FROM before)
        RETURNING {_HOLD_COLUMNS}
    )
    SELECT taken.*, NULL AS period, NULL::bigint AS spend_limit, NULL::bigint AS spent,
           NULL::bigint AS held FROM taken
    UNION ALL
    SELECT before.*, NULL, NULL, NULL, NULL FROM before
    UNION ALL
    SELECT {_NO_HOLD}, period, spend_limit, spent, held FROM refused"""
# The user's row locked first, then RESERVE_SQL: one round trip (migration 15's function
# runs the same text, which a test compares). No row: no such user.
LOCKED_RESERVE_SQL: Final = "SELECT * FROM faceplate.reserve($1, $2, $3, $4, $5, $6, $7)"
RELEASE_SQL: Final = "DELETE FROM faceplate.holds WHERE id = $1 AND user_id = $2"


@dataclass(frozen=True)
class Usage:
    """A user's answers over a window, summed for one day, model or conversation."""

    key: date | tuple[str, str] | uuid.UUID  # the day, (provider, model) or conversation
    answers: int
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost: int  # micro-units
    unpriced: int  # answers whose model had no price in force


def _money(field: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        kind = "a float" if isinstance(value, float) else type(value).__name__
        raise ValidationError(
            field, f"must be a whole number of micro-units (an int), not {kind}: money is exact"
        )
    if not 0 <= value <= MAX_MONEY:
        raise ValidationError(field, f"must be from 0 to {MAX_MONEY} micro-units")
    return value


def _moment(field: str, value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise ValidationError(field, "must be a timezone-aware datetime")
    if not datetime(1970, 1, 1, tzinfo=UTC) <= value < datetime(9999, 1, 1, tzinfo=UTC):
        raise ValidationError(field, "is outside the years this package stores")
    return value


def _day(field: str, value: object) -> date:
    """A UTC day: a date, or an aware datetime (its UTC date)."""
    if isinstance(value, datetime):
        return _moment(field, value).astimezone(UTC).date()
    if isinstance(value, date):
        return value
    raise ValidationError(field, "must be a date, or a timezone-aware datetime")


async def set_model_price(
    *,
    provider: str,
    model: str,
    starts_at: datetime,
    input: int,
    cached_input: int,
    cache_write: int,
    output: int,
) -> ModelPrice:
    """Record what a model costs from `starts_at` on, in micro-units per million tokens
    (uncached input, input read from cache, input written to cache, output with reasoning).
    The same model and moment again replaces that price. Answers already stored keep the
    cost they were stored with. Not a user's: an operator's, for every user."""
    args = (
        uuid7(),
        required_text("provider", provider, PROVIDER_MAX),
        required_text("model", model, MODEL_NAME_MAX),
        _moment("starts_at", starts_at),
        _money("input", input),
        _money("cached_input", cached_input),
        _money("cache_write", cache_write),
        _money("output", output),
        now(),
    )
    row = await run(lambda conn: conn.fetchrow(SET_PRICE_SQL, *args), user=None)
    assert row is not None  # noqa: S101 - an upsert returns its row
    return _prices(row)


async def usage_summary(
    *,
    user_id: uuid.UUID | str,
    since: date | datetime,
    until: date | datetime | None = None,
    by: Literal["day", "model", "conversation"] = "day",
) -> list[Usage]:
    """The user's answers and their cost, from UTC day `since` up to `until` (excluded;
    default: through today), summed by day, by model or by conversation, in that order
    (most expensive first for models and conversations). Read from the rollup the appends
    keep, so it costs the days and models of the window, not the messages. Not a page: the
    window bounds it."""
    uid = as_uuid("user_id", user_id)
    first = _day("since", since)
    last = _day("until", until) if until is not None else now().date() + timedelta(days=1)
    if by not in GROUPINGS:
        raise ValidationError("by", f"must be one of {', '.join(GROUPINGS)}")
    rows = await fetch(USAGE_SQL[by], uid, first, last, user=uid)

    def key(row: asyncpg.Record) -> date | tuple[str, str] | uuid.UUID:
        if by == "model":
            return (row["provider"], row["model"])
        return row["day" if by == "day" else "conversation_id"]  # type: ignore[no-any-return]

    found = [Usage(key(row), *(int(row[name]) for name in COUNTERS)) for row in rows]
    if by == "day":
        return sorted(found, key=lambda u: str(u.key))
    return sorted(found, key=lambda u: (-u.cost, str(u.key)))


def _period(value: object) -> str:
    if value not in PERIODS:
        raise ValidationError("period", f"must be one of {', '.join(PERIODS)}")
    return str(value)


async def set_budget(
    *, user_id: uuid.UUID | str, period: Literal["day", "month"], limit: int | None
) -> Budget | None:
    """Limit the user's spending per UTC day or month to `limit` micro-units (None removes
    that budget). Holds and answers already made count against it at once."""
    uid = as_uuid("user_id", user_id)
    kind = _period(period)
    if limit is None:
        await run(lambda conn: conn.execute(_DROP_BUDGET_SQL, uid, kind), user=uid)
        return None
    amount = _money("limit", limit)

    async def upsert(conn: Connection) -> asyncpg.Record:
        try:
            row = await conn.fetchrow(SET_BUDGET_SQL, uid, kind, uuid7(), amount, now())
        except asyncpg.ForeignKeyViolationError:
            raise missing("user", uid) from None
        assert row is not None  # noqa: S101 - an upsert returns its row
        return row

    return _budgets(await run(upsert, user=uid))


def _periods_at(moment: datetime) -> tuple[date, date]:
    today = moment.astimezone(UTC).date()
    return today, today.replace(day=1)


async def reserve(
    *,
    user_id: uuid.UUID | str,
    estimate: int,
    ttl: float = 600,
    hold_id: uuid.UUID | str | None = None,
) -> Hold:
    """Hold `estimate` micro-units of the user's budgets for an answer being produced, for at
    most `ttl` seconds; `BudgetExceeded` when what the period spent, plus the running holds,
    plus the estimate would pass a budget's limit. Settle it with `append_turn(...,
    hold=...)`, or give it back with `release`. A user without budgets gets a hold too.
    `hold_id`, a uuid7 the caller made, makes the call repeatable: a retry with it returns
    the hold taken the first time instead of holding the money twice."""
    uid = as_uuid("user_id", user_id)
    amount = _money("estimate", estimate)
    if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not 0 < ttl <= MAX_TTL:
        raise ValidationError("ttl", f"must be a number of seconds from 0 to {MAX_TTL}")
    key = new_key("hold_id", hold_id)
    at = now()
    args = (uid, key, amount, at, at + timedelta(seconds=ttl), *_periods_at(at))
    rows = await run(lambda conn: conn.fetch(LOCKED_RESERVE_SQL, *args), user=uid)
    if not rows:
        raise missing("user", uid)
    refused = [row for row in rows if row["period"] is not None]
    if refused:
        row = refused[0]
        raise BudgetExceeded(
            f"holding {amount} more would take the user past their {row['period']} budget of "
            f"{row['spend_limit']}: {row['spent']} spent this {row['period']} and {row['held']} "
            "held for answers being produced"
        )
    return _holds(rows[0])


async def release(*, user_id: uuid.UUID | str, hold: Hold | uuid.UUID | str) -> None:
    """Give a hold back (an answer that failed or was cancelled); settled or lapsed is
    `NotFound`."""
    uid = as_uuid("user_id", user_id)
    hid = as_uuid("hold", getattr(hold, "id", hold))
    status = await run(lambda conn: conn.execute(RELEASE_SQL, hid, uid), user=uid)
    if status == "DELETE 0":
        raise missing("hold", hid)


__all__ = [
    "GROUPINGS",
    "LOCKED_RESERVE_SQL",
    "MAX_MONEY",
    "PERIODS",
    "RESERVE_SQL",
    "USAGE_SQL",
    "Usage",
    "release",
    "reserve",
    "set_budget",
    "set_model_price",
    "usage_summary",
]
