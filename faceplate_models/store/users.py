"""Users: the people who sign in through the identity provider."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Final

import asyncpg

from faceplate_models.engine import Connection, current
from faceplate_models.errors import Conflict, ValidationError
from faceplate_models.ids import uuid7
from faceplate_models.models import SUBJECT_MAX, User
from faceplate_models.store._rows import (
    builder,
    columns,
    fetch,
    fetchrow,
    missing,
    now,
    run,
)
from faceplate_models.store.oauth import GrantTokens, get_mcp_grant
from faceplate_models.validation import as_uuid, email_address, required_text

_COLUMNS = columns(User)
_users = builder(User, _COLUMNS)

#: One round trip for every login: the existing row as it is (no write, no row lock) when
#: the email is unchanged; otherwise the insert, or the update of a changed email. The
#: last column says whether it wrote.
UPSERT_USER_SQL = f"""WITH existing AS (
        SELECT {_COLUMNS} FROM faceplate.users WHERE subject_id = $3
    ), written AS (
        INSERT INTO faceplate.users ({_COLUMNS})
        SELECT $1::uuid, $2::varchar, $3::varchar, $4::timestamptz, $4::timestamptz
        WHERE NOT EXISTS (SELECT 1 FROM existing WHERE email = $2::varchar)
        ON CONFLICT (subject_id) DO UPDATE
            SET email = EXCLUDED.email, updated_at = EXCLUDED.updated_at
            WHERE users.email <> EXCLUDED.email
        RETURNING {_COLUMNS}
    )
    SELECT {_COLUMNS}, true AS wrote FROM written
    UNION ALL SELECT {_COLUMNS}, false FROM existing WHERE NOT EXISTS (SELECT 1 FROM written)"""
USER_BY_SUBJECT_SQL = f"SELECT {_COLUMNS} FROM faceplate.users WHERE subject_id = $1"


async def get_or_create_user(*, subject_id: str, email: str) -> User:
    """The user with this identity-provider subject, created on first login.

    Safe when requests race: exactly one user is created. The email is stored trimmed
    and lower-cased, and updated when the identity provider reports a new one; an email
    that belongs to another subject is a `Conflict`.
    """
    subject = required_text("subject_id", subject_id, SUBJECT_MAX)
    address = email_address(email)
    user_id, at = uuid7(), now()

    async def upsert(conn: Connection) -> tuple[asyncpg.Record, bool]:
        try:
            row = await conn.fetchrow(UPSERT_USER_SQL, user_id, address, subject, at)
        except asyncpg.UniqueViolationError:
            raise Conflict(
                f"email {address} already belongs to another user (a different subject_id)"
            ) from None
        if row is None:  # a racing login inserted it after this statement's snapshot
            row = await conn.fetchrow(USER_BY_SUBJECT_SQL, subject)
            assert row is not None  # noqa: S101 - the conflict proves the row exists
            return row, False
        return row, row["wrote"]

    def written(result: tuple[asyncpg.Record, bool]) -> uuid.UUID | None:
        # A login that wrote nothing leaves the user's reads free to use any replica.
        row, wrote = result
        return row["id"] if wrote else None

    row, _ = await run(upsert, user=written)
    return _users(row)


async def get_user(*, user_id: uuid.UUID | str) -> User:
    """The user with this id."""
    uid = as_uuid("user_id", user_id)
    row = await fetchrow(f"SELECT {_COLUMNS} FROM faceplate.users WHERE id = $1", uid, user=uid)
    if row is None:
        raise missing("user", uid)
    return _users(row)


async def get_user_by_subject(*, subject_id: str) -> User:
    """The user with this identity-provider subject, without creating one."""
    subject = required_text("subject_id", subject_id, SUBJECT_MAX)
    row = await fetchrow(USER_BY_SUBJECT_SQL, subject, user=None)
    if row is None:
        raise missing("user with subject", repr(subject))
    return _users(row)


#: What an erasure counts, by table: the user's rows in each, read by the deleting statement
#: itself (messages and tool calls through their conversations).
_GRANTS_SQL: Final = """SELECT c.name FROM faceplate.mcp_configs c
    JOIN faceplate.oauth_grants g ON g.mcp_config_id = c.id WHERE c.user_id = $1"""
_ERASED_SQL: Final = """SELECT
    (SELECT count(*) FROM faceplate.conversations WHERE user_id = $1) AS conversations,
    (SELECT count(*) FROM faceplate.messages m JOIN faceplate.conversations c
        ON c.id = m.conversation_id WHERE c.user_id = $1) AS messages,
    (SELECT count(*) FROM faceplate.tool_calls t JOIN faceplate.conversations c
        ON c.id = t.conversation_id WHERE c.user_id = $1) AS tool_calls,
    (SELECT count(*) FROM faceplate.tasks WHERE user_id = $1) AS tasks,
    (SELECT count(*) FROM faceplate.mcp_configs WHERE user_id = $1) AS mcp_configs,
    (SELECT count(*) FROM faceplate.oauth_grants g JOIN faceplate.mcp_configs c
        ON c.id = g.mcp_config_id WHERE c.user_id = $1) AS oauth_grants,
    (SELECT count(*) FROM faceplate.folders WHERE user_id = $1) AS folders,
    (SELECT count(*) FROM faceplate.tags WHERE user_id = $1) AS tags,
    (SELECT count(*) FROM faceplate.shares WHERE user_id = $1) AS shares,
    (SELECT count(*) FROM faceplate.feedback WHERE user_id = $1) AS feedback,
    (SELECT count(*) FROM faceplate.usage_days WHERE user_id = $1) AS usage_days,
    (SELECT count(*) FROM faceplate.budgets WHERE user_id = $1) AS budgets"""
# One statement: no lock taken before the delete's own, so it meets other transactions'
# locks in the order a plain delete does (a deadlock is then its to lose, and retried).
_ERASE_SQL: Final = f"""WITH counted AS ({_ERASED_SQL}),
    gone AS (DELETE FROM faceplate.users WHERE id = $1 RETURNING id)
    SELECT counted.* FROM counted, gone"""


async def delete_user(
    *,
    user_id: uuid.UUID | str,
    revoke: Callable[[str, GrantTokens], Awaitable[object]] | None = None,
) -> dict[str, int]:
    """Erase the user: delete the user's row and, by cascade, everything they own, in one
    transaction; returns how many rows of each kind were deleted (docs/guide.md, "A user's
    data in and out", says what goes, and what stays in backups and WAL until they expire).

    `revoke(name, tokens)`, when given, is awaited first for each of the user's OAuth grants
    (your call of the provider's revocation endpoint): best effort, each failure counted in
    `revocations_failed`, none stopping the erasure.

    A user with a long history takes a while to delete: this runs under the long statement
    timeout (FACEPLATE_DB_LONG_STATEMENT_TIMEOUT) rather than the per-request one.
    """
    uid = as_uuid("user_id", user_id)
    if revoke is not None and not callable(revoke):
        raise ValidationError("revoke", "must be an async function of a name and the tokens")
    client = current()
    revoked = failed = 0
    if revoke is not None:
        for row in await fetch(_GRANTS_SQL, uid, user=uid):
            try:
                tokens = await get_mcp_grant(user_id=uid, name=row["name"])
                if tokens is not None:
                    await revoke(row["name"], tokens)
                    revoked += 1
            except Exception:  # best effort: the erasure goes on
                failed += 1

    async def erase(conn: Connection) -> dict[str, int] | None:
        async with client.atomic(conn, long=True):
            counted = await conn.fetchrow(_ERASE_SQL, uid)
        if counted is None:
            return None
        return {"users": 1, **{key: int(value) for key, value in counted.items()}}

    erased = await run(erase, user=uid, long=True)
    if erased is None:
        raise missing("user", uid)
    if revoke is not None:
        erased |= {"revoked": revoked, "revocations_failed": failed}
    return erased


__all__ = [
    "UPSERT_USER_SQL",
    "USER_BY_SUBJECT_SQL",
    "delete_user",
    "get_or_create_user",
    "get_user",
    "get_user_by_subject",
]
