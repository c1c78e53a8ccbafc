"""The floor: asyncpg alone, running the store's own SQL, rows as dicts with JSON decoded."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from benchmarks.common import POOL, next_cursor, position
from faceplate_models.config import DatabaseTarget, Retention
from faceplate_models.ids import uuid7
from faceplate_models.store import (
    _cursors as cursors,
    conversations,
    feedback,
    history,
    messages,
    oauth,
    organise,
    replies,
    retention as retention_sql,
    search,
    shares,
    tasks,
    usage,
    users,
)
from faceplate_models.store.retention import Purged
from faceplate_models.validation import MAX_PAGE_BYTES


async def _kept(conn: asyncpg.Connection) -> None:
    """No reset when a connection goes back: asyncpg's default (RESET ALL, UNLISTEN, ...) is a
    round trip on every release, which this hand-written code, like the store, never needs."""


class Raw:
    """Hand-written asyncpg on a pool of the same size: the least any layer can cost."""

    name = "raw asyncpg"

    def __init__(self, target: DatabaseTarget) -> None:
        self.target = target
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        t = self.target
        self.pool = await asyncpg.create_pool(
            host=t.host,
            port=t.port,
            user=t.user,
            password=t.password,
            database=t.database,
            min_size=5,
            max_size=POOL,
            reset=_kept,
        )

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def server_version(self) -> str:
        assert self.pool is not None
        version: str = await self.pool.fetchval("SHOW server_version")
        return version

    @staticmethod
    def _message(row: asyncpg.Record) -> dict[str, Any]:
        message = dict(row)
        for column in ("tool_calls", "tool_results"):
            if message[column] is not None:
                message[column] = json.loads(message[column])
        return message

    async def _append(
        self, user_id: uuid.UUID, conversation_id: uuid.UUID, drafts: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The store's turn, by hand: one call of the schema's function, which locks, places,
        writes and commits in one round trip. After the active leaf, with no turn id, as the
        suite appends."""
        assert self.pool is not None
        # Arrays travel as text[], as the store sends them (`faceplate_models.engine.texts`).
        ids = [str(uuid7()) for _ in drafts]
        priced = list(
            dict.fromkeys((d.get("provider") or "", d["model"]) for d in drafts if d.get("usage"))
        )
        answers = [[r["tool_call_id"] for r in d.get("tool_results") or ()] for d in drafts]
        calls = [[c["id"] for c in d.get("tool_calls") or ()] for d in drafts]
        values: tuple[Any, ...] = (
            conversation_id,
            user_id,
            messages.LEAF,
            None,
            None,  # no turn id: the caller gave none
            10_000_000,
            datetime.now(UTC),
            ids,
            [d["role"] for d in drafts],
            [d.get("content") for d in drafts],
            [json.dumps(d["tool_calls"]) if d.get("tool_calls") else None for d in drafts],
            [json.dumps(d["tool_results"]) if d.get("tool_results") else None for d in drafts],
            [d.get("model") for d in drafts],
            [d.get("provider") for d in drafts],
            [d.get("finish_reason") for d in drafts],
            [json.dumps(d["usage"]) if d.get("usage") else None for d in drafts],
            [None for _ in drafts],
            [None for _ in drafts],
            [None for _ in drafts],  # complete messages, none streamed
            [json.dumps(a) for a in answers],
            [json.dumps(c) for c in calls],
            [str(uuid7()) for c in calls for _ in c],
            None,  # no hold: the suite reserves nothing for its turns
            [str(uuid7()) for _ in priced],
            [provider for provider, _ in priced],
            [model for _, model in priced],
            [str(uuid7()) for _ in priced],
            False,
        )
        rows = await self.pool.fetch(messages.APPEND_SQL, *values)
        if not rows:
            raise LookupError(conversation_id)
        return [self._message(row) for row in rows]

    async def append_message(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, role: str, content: str
    ) -> dict[str, Any]:
        [message] = await self._append(
            user_id, conversation_id, [{"role": role, "content": content}]
        )
        return message

    async def append_turn(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, messages: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return await self._append(user_id, conversation_id, messages)

    async def get_history(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        limit: int = 100,
        before: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        assert self.pool is not None
        after = position(before, cursors.HISTORY, user_id, conversation_id)
        args: list[Any] = [conversation_id, user_id, limit + 1]
        direction = history.NEWEST if after is None else history.BEFORE
        if after is not None:
            args.append(after[1])
        args.append(MAX_PAGE_BYTES)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(history.PATH_SQL[direction, False], *args)
        items = sorted((self._message(row) for row in rows), key=lambda m: m["depth"])
        if len(items) <= limit:
            return items, None
        items = items[-limit:]
        first = items[0]
        cursor = cursors.encode(
            cursors.HISTORY, user_id, conversation_id, first["created_at"], first["id"]
        )
        return items, cursor

    async def switch_branch(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID
    ) -> uuid.UUID:
        assert self.pool is not None
        leaf: uuid.UUID = await self.pool.fetchval(
            history.SWITCH_SQL, conversation_id, user_id, message_id
        )
        return leaf

    async def get_siblings(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, message_id: uuid.UUID
    ) -> list[uuid.UUID]:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(history.SIBLINGS_SQL, conversation_id, user_id, message_id)
        return [row["id"] for row in rows]

    async def list_conversations(
        self,
        *,
        user_id: uuid.UUID,
        limit: int = 50,
        cursor: str | None = None,
        archived: bool | None = False,
        folder_id: uuid.UUID | None = None,
        tag_id: uuid.UUID | None = None,
        pinned_first: bool = False,
        trashed: bool = False,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The store's listing, first pages only for the filtered ones (the suite's)."""
        assert self.pool is not None
        filters = (archived, folder_id, tag_id, pinned_first, trashed)
        if filters == (False, None, None, False, False):
            return await self._conversations(user_id, limit, cursor)
        kinds = (
            (cursors.PINNED, cursors.CONVERSATIONS) if pinned_first else (cursors.CONVERSATIONS,)
        )
        chosen = [value for value in (folder_id, tag_id) if value]
        found: list[tuple[str, asyncpg.Record]] = []
        async with self.pool.acquire() as conn:
            for kind in kinds:
                sql = conversations.listing_sql(
                    archived=archived,
                    pinned=(kind == cursors.PINNED) if pinned_first else None,
                    folder=folder_id is not None,
                    tag=tag_id is not None,
                    trashed=trashed,
                )
                rows = await conn.fetch(
                    sql, user_id, limit + 1 - len(found), *chosen, MAX_PAGE_BYTES
                )
                found += [(kind, row) for row in rows]
                if len(found) > limit:
                    break
        if len(found) <= limit:
            return [dict(row) for _, row in found], None
        kind, last = found[limit - 1]
        at = last["trashed_at" if trashed else "updated_at"]
        return [dict(row) for _, row in found[:limit]], cursors.encode(
            kind, user_id, filters, at, last["id"]
        )

    async def _conversations(
        self, user_id: uuid.UUID, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        assert self.pool is not None
        after = position(cursor, cursors.CONVERSATIONS, user_id, None)
        async with self.pool.acquire() as conn:
            if after is None:
                rows = await conn.fetch(
                    conversations.CONVERSATIONS_SQL, user_id, limit + 1, MAX_PAGE_BYTES
                )
            else:
                rows = await conn.fetch(
                    conversations.CONVERSATIONS_AFTER_SQL,
                    user_id,
                    limit + 1,
                    *after,
                    MAX_PAGE_BYTES,
                )
        return [dict(row) for row in rows[:limit]], next_cursor(
            rows, limit, cursors.CONVERSATIONS, user_id, None, "updated_at"
        )

    async def search_messages(
        self, *, user_id: uuid.UUID, query: str, limit: int = 20
    ) -> tuple[list[dict[str, Any]], str | None]:
        assert self.pool is not None
        start = search.bucket(datetime.now(UTC) + timedelta(days=1))
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                search.SEARCH_SQL, user_id, query, limit + 1, cursors.LATEST, uuid.UUID(int=0),
                start, search.token(user_id), f"{search.token(user_id)}.",
            )  # fmt: skip
        hits = [dict(row) for row in rows[:limit]]
        if len(rows) <= limit:
            return hits, None
        last = hits[-1]
        scope = (query, None)
        return hits, cursors.encode(cursors.SEARCH, user_id, scope, last["at"], last["id"])

    async def organise_conversation(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, pinned: bool
    ) -> dict[str, Any]:
        assert self.pool is not None
        row = await self.pool.fetchrow(
            organise.ORGANISE_SQL, conversation_id, user_id, False, None, True, pinned,
            False, None, False, None, datetime.now(UTC),
        )  # fmt: skip
        assert row is not None
        return dict(row)

    async def get_shared(self, *, token: str) -> tuple[list[dict[str, Any]], str | None]:
        assert self.pool is not None
        digest = hashlib.sha256(token.encode()).digest()
        async with self.pool.acquire() as conn:
            share = await conn.fetchrow(shares.SHARED_SQL, digest)
        assert share is not None
        assert hmac.compare_digest(bytes(share["token_hash"]), digest)
        return await self.get_history(
            user_id=share["user_id"], conversation_id=share["conversation_id"]
        )

    async def rate_message(
        self, *, user_id: uuid.UUID, message_id: uuid.UUID, rating: int, reasons: list[str]
    ) -> dict[str, Any]:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                feedback.RATE_SQL, user_id, message_id, uuid7(), rating, json.dumps(reasons),
                None, datetime.now(UTC),
            )  # fmt: skip
        assert row is not None
        return dict(row)

    async def list_feedback(
        self, *, since: datetime, limit: int = 50
    ) -> tuple[list[dict[str, Any]], str | None]:
        assert self.pool is not None
        sql = feedback.feedback_sql(by_rating=False, after=False)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(sql, since, limit + 1, MAX_PAGE_BYTES)
        items = [dict(row) for row in rows[:limit]]
        if len(rows) <= limit:
            return items, None
        last = items[-1]
        scope = (since.isoformat(), None)
        return items, cursors.encode(
            cursors.FEEDBACK, uuid.UUID(int=0), scope, last["updated_at"], last["id"]
        )

    async def purge_expired(self, *, retention: Retention, at: datetime) -> Purged:
        assert self.pool is not None
        deleted = {}
        async with self.pool.acquire() as conn:
            for kind, days in (
                ("trashed", retention.trash_days),
                ("temporary", retention.temporary_days),
            ):
                status = await conn.execute(
                    retention_sql.PURGE_SQL[kind], at - timedelta(days=days), 100
                )
                deleted[kind] = int(status.split()[-1])
            # The same sweeps as the store's: silent live replies, expired sign-ins.
            interrupted = await conn.fetchval(replies.INTERRUPT_SQL, 100)
            status = await conn.execute(oauth.EXPIRED_SIGN_INS_SQL, 100)
        return Purged(
            **deleted, interrupted_replies=interrupted, expired_sign_ins=int(status.split()[-1])
        )

    async def list_tasks(
        self, *, user_id: uuid.UUID, completed: bool, limit: int = 50
    ) -> tuple[list[dict[str, Any]], str | None]:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                tasks.tasks_sql(True, False), user_id, limit + 1, completed, MAX_PAGE_BYTES
            )
        return [dict(row) for row in rows[:limit]], next_cursor(
            rows, limit, cursors.TASKS, user_id, completed, "created_at"
        )

    async def usage_summary(
        self, *, user_id: uuid.UUID, since: Any, by: str = "day"
    ) -> list[dict[str, Any]]:
        assert self.pool is not None
        until = datetime.now(UTC).date() + timedelta(days=1)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(usage.USAGE_SQL[by], user_id, since, until)
        found = [dict(row) for row in rows]
        return sorted(found, key=lambda r: (-r["cost"], str((r["provider"], r["model"]))))

    async def reserve(self, *, user_id: uuid.UUID, estimate: int, ttl: float) -> dict[str, Any]:
        assert self.pool is not None
        at = datetime.now(UTC)
        today = at.date()
        rows = await self.pool.fetch(
            usage.LOCKED_RESERVE_SQL, user_id, uuid7(), estimate, at,
            at + timedelta(seconds=ttl), today, today.replace(day=1),
        )  # fmt: skip
        if rows[0]["period"] is not None:
            raise LookupError("budget exceeded")
        return dict(rows[0])

    async def get_or_create_user(self, *, subject_id: str, email: str) -> dict[str, Any]:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                users.UPSERT_USER_SQL,
                uuid7(),
                email.strip().lower(),
                subject_id.strip(),
                datetime.now(UTC),
            )
            if row is None:
                row = await conn.fetchrow(users.USER_BY_SUBJECT_SQL, subject_id)
        assert row is not None
        return dict(row)
