"""Retention: deleting what has expired (`purge`), for a scheduler or `faceplate-db purge`.

Three kinds expire (`config.Retention`): conversations in the trash, temporary ones, and,
when FACEPLATE_RETENTION_INACTIVE_DAYS is set, ones without activity for that long (never a
pinned one). Each is found through an index of its own and deleted in batches of at most
`batch` conversations, each batch a short transaction of its own that locks only the rows
it deletes (a user's other conversations answer meanwhile), and whose condition is checked
again as it deletes: a conversation restored, or written to, since it was found stays.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from faceplate_models.config import Retention, load_settings
from faceplate_models.engine import Connection, current
from faceplate_models.errors import ValidationError
from faceplate_models.store._cursors import EARLIEST, LATEST
from faceplate_models.store._rows import now, run
from faceplate_models.store.oauth import EXPIRED_SIGN_INS_SQL
from faceplate_models.store.replies import interrupt_silent_replies
from faceplate_models.validation import whole_number

#: Conversations deleted per statement; each takes its messages with it.
DEFAULT_BATCH: Final = 100
MAX_BATCH: Final = 10_000
# Users read per step of the inactivity sweep.
_USERS_PER_STEP: Final = 1_000

#: Expired conversations of one kind, at most $2 of them, deleted: $1 the cut-off.
PURGE_SQL: Final = {
    "trashed": """DELETE FROM faceplate.conversations WHERE trashed_at < $1 AND id = ANY(ARRAY(
        SELECT id FROM faceplate.conversations WHERE trashed_at < $1
        ORDER BY trashed_at LIMIT $2))""",
    "temporary": """DELETE FROM faceplate.conversations
        WHERE temporary AND created_at < $1 AND id = ANY(ARRAY(
            SELECT id FROM faceplate.conversations WHERE temporary AND created_at < $1
            ORDER BY created_at LIMIT $2))""",
}
#: The users after $1 (at most $2 of them): where a step of the inactivity sweep ends.
USERS_STEP_SQL: Final = """SELECT id FROM (
    SELECT id FROM faceplate.users WHERE id > $1 ORDER BY id LIMIT $2) step
    ORDER BY id DESC LIMIT 1"""
#: Conversations of users in ($1, $2] inactive since before $3, at most $4, deleted: each
#: user's oldest first, from the user's activity index.
PURGE_INACTIVE_SQL: Final = """DELETE FROM faceplate.conversations
    WHERE updated_at < $3 AND pinned_at IS NULL AND id = ANY(ARRAY(
        SELECT c.id FROM faceplate.users u, LATERAL (
            SELECT id FROM faceplate.conversations
            WHERE user_id = u.id AND updated_at < $3 AND pinned_at IS NULL
            ORDER BY updated_at LIMIT $4
        ) c
        WHERE u.id > $1 AND u.id <= $2 LIMIT $4))"""


@dataclass(frozen=True)
class Purged:
    """How many conversations `purge_expired` deleted, by why they expired."""

    trashed: int = 0
    temporary: int = 0
    inactive: int = 0
    #: Not conversations: replies whose writer fell silent, marked interrupted (text kept),
    #: and OAuth sign-ins past their time, deleted.
    interrupted_replies: int = 0
    expired_sign_ins: int = 0

    @property
    def total(self) -> int:
        return self.trashed + self.temporary + self.inactive


async def _batches(sql: str, *args: object) -> int:
    """Run a deleting statement whose last parameter is the batch size until it deletes
    fewer; the number deleted."""
    client, batch, deleted = current(), args[-1], 0
    assert isinstance(batch, int)  # noqa: S101 - the caller passes the size last

    async def delete(conn: Connection) -> int:
        async with client.atomic(conn, long=True):
            status: str = await conn.execute(sql, *args)
        return int(status.split()[-1])

    while True:
        count = await run(delete, user=None, long=True)
        deleted += count
        if count < batch:
            return deleted


async def _step(after: uuid.UUID) -> uuid.UUID | None:
    """The last of the next users of the inactivity sweep, None when none is left."""
    end: uuid.UUID | None = await run(
        lambda conn: conn.fetchval(USERS_STEP_SQL, after, _USERS_PER_STEP), user=None
    )
    return end


async def purge_expired(
    *, retention: Retention | None = None, batch: int = DEFAULT_BATCH, at: datetime | None = None
) -> Purged:
    """Delete every conversation whose retention period has passed (by the deployment's
    FACEPLATE_RETENTION_* settings unless `retention` is given), `batch` at a time, and
    say how many of each kind. `at` is the moment to count from (now by default). It also
    marks interrupted the replies whose writers fell silent, and deletes expired OAuth
    sign-ins."""
    whole_number("batch", batch, 1, MAX_BATCH)
    if at is not None and (
        not isinstance(at, datetime) or at.tzinfo is None or not EARLIEST < at < LATEST
    ):
        raise ValidationError("at", "must be an aware datetime of this era")
    if retention is not None and not isinstance(retention, Retention):
        raise ValidationError("retention", "must be a config.Retention, or None")
    periods = retention or load_settings().retention
    moment = at or now()
    trashed = await _batches(
        PURGE_SQL["trashed"], moment - timedelta(days=periods.trash_days), batch
    )
    temporary = await _batches(
        PURGE_SQL["temporary"], moment - timedelta(days=periods.temporary_days), batch
    )
    inactive = 0
    if periods.inactive_days is not None:
        cutoff, start = moment - timedelta(days=periods.inactive_days), uuid.UUID(int=0)
        while True:
            end = await _step(start)
            if end is None:
                break
            inactive += await _batches(PURGE_INACTIVE_SQL, start, end, cutoff, batch)
            start = end
    interrupted = await interrupt_silent_replies(batch=batch)
    sign_ins = await _batches(EXPIRED_SIGN_INS_SQL, batch)
    return Purged(trashed, temporary, inactive, interrupted, sign_ins)


__all__ = ["DEFAULT_BATCH", "PURGE_INACTIVE_SQL", "PURGE_SQL", "Purged", "purge_expired"]
