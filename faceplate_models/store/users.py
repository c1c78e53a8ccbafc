"""Users: the people who sign in through the identity provider."""

from __future__ import annotations

import uuid

import asyncpg
from uuid6 import uuid7

from faceplate_models.engine import Connection
from faceplate_models.errors import Conflict
from faceplate_models.models import SUBJECT_MAX, User
from faceplate_models.store._rows import builder, columns, execute, fetchrow, missing, now, run
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


async def delete_user(*, user_id: uuid.UUID | str) -> None:
    """Delete the user and, by cascade, everything they own.

    A user with a long history takes a while to delete: this runs under the long statement
    timeout (FACEPLATE_DB_LONG_STATEMENT_TIMEOUT) rather than the per-request one.
    """
    uid = as_uuid("user_id", user_id)
    status = await execute("DELETE FROM faceplate.users WHERE id = $1", uid, user=uid, long=True)
    if status == "DELETE 0":
        raise missing("user", uid)


__all__ = [
    "UPSERT_USER_SQL",
    "USER_BY_SUBJECT_SQL",
    "delete_user",
    "get_or_create_user",
    "get_user",
    "get_user_by_subject",
]
