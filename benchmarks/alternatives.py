"""The two implementations the store is measured against, with the store's signatures.

`Raw` is hand-written asyncpg on a pool of the same size, running the store's own SQL and
decoding JSON the same way: the floor. `SqlAlchemy` is SQLAlchemy 2's async ORM on the same
tables and indexes, written the way its documentation shows: the alternative a team would
otherwise pick.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from uuid6 import uuid7

from faceplate_models.config import SCHEMA, DatabaseTarget
from faceplate_models.store import conversations, cursors, messages, tasks, users

POOL = 20


def _cursor(kind: str, user: uuid.UUID, scope: object, at: datetime, row_id: uuid.UUID) -> str:
    return cursors.encode(kind, user, scope, at, row_id)


def _after(
    cursor: str | None, kind: str, user: uuid.UUID, scope: object
) -> tuple[datetime, uuid.UUID] | None:
    return None if cursor is None else cursors.decode("cursor", cursor, kind, user, scope)


class Raw:
    """asyncpg alone: the store's SQL, rows as dicts, JSON columns decoded."""

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

    async def append_message(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, role: str, content: str
    ) -> dict[str, Any]:
        assert self.pool is not None
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn, conn.transaction():
            previous = await conn.fetchval(messages.LOCK_CONVERSATION_SQL, conversation_id, user_id)
            if previous is None:
                raise LookupError(conversation_id)
            last = max(now, previous + timedelta(microseconds=1))
            row = await conn.fetchrow(
                messages.APPEND_SQL,
                conversation_id,
                last,
                [uuid7()],
                [role],
                [content],
                [None],
                [None],
                None,
                [],
                [],
                [],
                [],
                [],
                [],
            )
        assert row is not None
        return self._message(row)

    async def get_history(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        limit: int = 100,
        before: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        assert self.pool is not None
        after = _after(before, cursors.HISTORY, user_id, conversation_id)
        async with self.pool.acquire() as conn:
            if after is None:
                rows = await conn.fetch(messages.HISTORY_SQL, conversation_id, user_id, limit + 1)
            else:
                rows = await conn.fetch(
                    messages.HISTORY_BEFORE_SQL, conversation_id, user_id, limit + 1, *after
                )
        items = [self._message(row) for row in rows[:limit]]
        items.reverse()
        last = rows[limit - 1] if len(rows) > limit else None
        return items, None if last is None else _cursor(
            cursors.HISTORY, user_id, conversation_id, last["created_at"], last["id"]
        )

    async def list_conversations(
        self, *, user_id: uuid.UUID, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        assert self.pool is not None
        after = _after(cursor, cursors.CONVERSATIONS, user_id, None)
        async with self.pool.acquire() as conn:
            if after is None:
                rows = await conn.fetch(conversations.CONVERSATIONS_SQL, user_id, limit + 1)
            else:
                rows = await conn.fetch(
                    conversations.CONVERSATIONS_AFTER_SQL, user_id, limit + 1, *after
                )
        last = rows[limit - 1] if len(rows) > limit else None
        return [dict(row) for row in rows[:limit]], (
            None
            if last is None
            else _cursor(cursors.CONVERSATIONS, user_id, None, last["updated_at"], last["id"])
        )

    async def list_tasks(
        self, *, user_id: uuid.UUID, completed: bool, limit: int = 50
    ) -> list[dict[str, Any]]:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(tasks.tasks_sql(True, False), user_id, limit + 1, completed)
        return [dict(row) for row in rows[:limit]]

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


# --- SQLAlchemy 2 --------------------------------------------------------------------------


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class SAUser(Base):
    __tablename__ = "users"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    email: Mapped[str] = mapped_column(String(320))
    subject_id: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SAConversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("idx_conversations_user_activity", "user_id", "updated_at", "id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(SAUser.id, ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SAMessage(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("idx_messages_history", "conversation_id", "created_at", "id"),)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(SAConversation.id, ondelete="CASCADE")
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str | None] = mapped_column(Text)
    tool_calls: Mapped[Any] = mapped_column(JSONB, nullable=True)
    tool_results: Mapped[Any] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SATask(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("idx_tasks_user_created", "user_id", "created_at", "id"),
        Index("idx_tasks_user_state", "user_id", "completed", "created_at", "id"),
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(SAUser.id, ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlAlchemy:
    """SQLAlchemy 2 async ORM: sessions, mapped classes, the same keyset queries."""

    def __init__(self, target: DatabaseTarget) -> None:
        t = self.target = target
        socket = t.host.startswith("/")
        url = URL.create(
            "postgresql+asyncpg",
            username=t.user,
            password=t.password,
            database=t.database,
            host=None if socket else t.host,
            port=None if socket else t.port,
            query={"host": f"{t.host}", "port": str(t.port)} if socket else {},
        )
        self.engine: AsyncEngine = create_async_engine(url, pool_size=POOL, max_overflow=0)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def open(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    async def close(self) -> None:
        await self.engine.dispose()

    async def append_message(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, role: str, content: str
    ) -> SAMessage:
        now = datetime.now(UTC)
        async with self.sessions() as session, session.begin():
            owned = await session.scalar(
                update(SAConversation)
                .where(SAConversation.id == conversation_id, SAConversation.user_id == user_id)
                .values(updated_at=func.greatest(SAConversation.updated_at, now))
                .returning(SAConversation.id)
            )
            if owned is None:
                raise LookupError(conversation_id)
            message = SAMessage(
                conversation_id=conversation_id, role=role, content=content, created_at=now
            )
            session.add(message)
        return message

    async def get_history(
        self,
        *,
        user_id: uuid.UUID,
        conversation_id: uuid.UUID,
        limit: int = 100,
        before: str | None = None,
    ) -> tuple[list[SAMessage], str | None]:
        owned = (
            select(SAConversation.id)
            .where(SAConversation.id == conversation_id, SAConversation.user_id == user_id)
            .scalar_subquery()
        )
        query = select(SAMessage).where(SAMessage.conversation_id == owned)
        after = _after(before, cursors.HISTORY, user_id, conversation_id)
        if after is not None:
            query = query.where(
                tuple_(SAMessage.created_at, SAMessage.id)
                < tuple_(literal(after[0]), literal(after[1]))
            )
        query = query.order_by(SAMessage.created_at.desc(), SAMessage.id.desc()).limit(limit + 1)
        async with self.sessions() as session:
            rows = list((await session.scalars(query)).all())
        messages = rows[:limit]
        messages.reverse()
        last = rows[limit - 1] if len(rows) > limit else None
        return messages, None if last is None else _cursor(
            cursors.HISTORY, user_id, conversation_id, last.created_at, last.id
        )

    async def list_conversations(
        self, *, user_id: uuid.UUID, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[SAConversation], str | None]:
        query = select(SAConversation).where(SAConversation.user_id == user_id)
        after = _after(cursor, cursors.CONVERSATIONS, user_id, None)
        if after is not None:
            query = query.where(
                tuple_(SAConversation.updated_at, SAConversation.id)
                < tuple_(literal(after[0]), literal(after[1]))
            )
        query = query.order_by(SAConversation.updated_at.desc(), SAConversation.id.desc()).limit(
            limit + 1
        )
        async with self.sessions() as session:
            rows = list((await session.scalars(query)).all())
        last = rows[limit - 1] if len(rows) > limit else None
        return rows[:limit], None if last is None else _cursor(
            cursors.CONVERSATIONS, user_id, None, last.updated_at, last.id
        )

    async def list_tasks(
        self, *, user_id: uuid.UUID, completed: bool, limit: int = 50
    ) -> list[SATask]:
        query = (
            select(SATask)
            .where(SATask.user_id == user_id, SATask.completed == completed)
            .order_by(SATask.created_at, SATask.id)
            .limit(limit + 1)
        )
        async with self.sessions() as session:
            return list((await session.scalars(query)).all())[:limit]

    async def get_or_create_user(self, *, subject_id: str, email: str) -> SAUser:
        now = datetime.now(UTC)
        statement = insert(SAUser).values(
            id=uuid7(),
            email=email.strip().lower(),
            subject_id=subject_id.strip(),
            created_at=now,
            updated_at=now,
        )
        upsert = statement.on_conflict_do_update(
            index_elements=[SAUser.subject_id],
            set_={"email": statement.excluded.email, "updated_at": statement.excluded.updated_at},
            where=SAUser.email != statement.excluded.email,
        ).returning(SAUser)
        async with self.sessions() as session, session.begin():
            user: SAUser | None = await session.scalar(upsert)
            if user is None:
                user = await session.scalar(select(SAUser).where(SAUser.subject_id == subject_id))
        assert user is not None
        return user
