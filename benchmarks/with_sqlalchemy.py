"""SQLAlchemy 2's async ORM on the same tables, written the way its documentation shows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    MetaData,
    String,
    Text,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from benchmarks.common import POOL, next_cursor, placed, position
from faceplate_models.config import SCHEMA, DatabaseTarget
from faceplate_models.ids import uuid7
from faceplate_models.store import _cursors as cursors


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
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(SAUser.id, ondelete="CASCADE"))
    title: Mapped[str | None] = mapped_column(String(200))
    active_leaf_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SAMessage(Base):
    __tablename__ = "messages"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(SAConversation.id, ondelete="CASCADE")
    )
    parent_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    depth: Mapped[int | None] = mapped_column(nullable=True)
    segment_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str | None] = mapped_column(Text)
    tool_calls: Mapped[Any] = mapped_column(JSONB, nullable=True)
    tool_results: Mapped[Any] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    turn_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)


class SAToolCall(Base):
    __tablename__ = "tool_calls"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(SAConversation.id, ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    call_id: Mapped[str] = mapped_column(String(256))
    message_id: Mapped[uuid.UUID]
    result_message_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SATask(Base):
    __tablename__ = "tasks"
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid7)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(SAUser.id, ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SqlAlchemy:
    """SQLAlchemy 2 async ORM: sessions, mapped classes, the same keyset queries."""

    name = "SQLAlchemy 2"

    def __init__(self, target: DatabaseTarget) -> None:
        t = target
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

    async def append_turn(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, messages: list[dict[str, Any]]
    ) -> list[SAMessage]:
        async with self.sessions() as session, session.begin():
            conversation = await session.scalar(
                select(SAConversation)
                .where(SAConversation.id == conversation_id, SAConversation.user_id == user_id)
                .with_for_update(key_share=False)
            )
            if conversation is None:
                raise LookupError(conversation_id)
            last = max(
                datetime.now(UTC), conversation.updated_at + timedelta(microseconds=len(messages))
            )
            turn = None  # no turn id: the caller gave none
            leaf = await session.scalar(
                select(SAMessage).where(SAMessage.id == conversation.active_leaf_id)
            )
            ids = [uuid7() for _ in messages]
            places = placed(leaf and (leaf.id, leaf.depth, leaf.segment_id), ids)
            stored = [
                SAMessage(
                    id=ids[i],
                    conversation_id=conversation_id,
                    parent_id=places[i][0],
                    user_id=user_id,
                    depth=places[i][1],
                    segment_id=places[i][2],
                    role=m["role"],
                    content=m.get("content"),
                    tool_calls=m.get("tool_calls"),
                    tool_results=m.get("tool_results"),
                    created_at=last - timedelta(microseconds=len(messages) - 1 - i),
                    turn_id=turn,
                )
                for i, m in enumerate(messages)
            ]
            session.add_all(stored)
            await session.flush()
            answers = {
                r["tool_call_id"]: message.id
                for message in stored
                for r in message.tool_results or ()
            }
            for message in stored:
                for call in message.tool_calls or ():
                    session.add(
                        SAToolCall(
                            conversation_id=conversation_id,
                            user_id=user_id,
                            call_id=call["id"],
                            message_id=message.id,
                            result_message_id=answers.pop(call["id"], None),
                            created_at=last,
                        )
                    )
            for call_id, answer in answers.items():  # calls of earlier turns
                await session.execute(
                    update(SAToolCall)
                    .where(
                        SAToolCall.conversation_id == conversation_id,
                        SAToolCall.call_id == call_id,
                        SAToolCall.result_message_id.is_(None),
                    )
                    .values(result_message_id=answer)
                )
            conversation.updated_at = last
            conversation.active_leaf_id = stored[-1].id
        return stored

    async def append_message(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, role: str, content: str
    ) -> SAMessage:
        [message] = await self.append_turn(
            user_id=user_id,
            conversation_id=conversation_id,
            messages=[{"role": role, "content": content}],
        )
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
        after = position(before, cursors.HISTORY, user_id, conversation_id)
        if after is not None:
            query = query.where(
                tuple_(SAMessage.created_at, SAMessage.id)
                < tuple_(literal(after[0]), literal(after[1]))
            )
        query = query.order_by(SAMessage.created_at.desc(), SAMessage.id.desc()).limit(limit + 1)
        async with self.sessions() as session:
            rows = list((await session.scalars(query)).all())
        items = rows[:limit]
        items.reverse()
        return items, next_cursor(
            rows, limit, cursors.HISTORY, user_id, conversation_id, "created_at"
        )

    async def list_conversations(
        self, *, user_id: uuid.UUID, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[SAConversation], str | None]:
        query = select(SAConversation).where(SAConversation.user_id == user_id)
        after = position(cursor, cursors.CONVERSATIONS, user_id, None)
        if after is not None:
            query = query.where(
                tuple_(SAConversation.updated_at, SAConversation.id)
                < tuple_(literal(after[0]), literal(after[1]))
            )
        query = query.order_by(SAConversation.updated_at.desc(), SAConversation.id.desc())
        async with self.sessions() as session:
            rows = list((await session.scalars(query.limit(limit + 1))).all())
        return rows[:limit], next_cursor(
            rows, limit, cursors.CONVERSATIONS, user_id, None, "updated_at"
        )

    async def list_tasks(
        self, *, user_id: uuid.UUID, completed: bool, limit: int = 50
    ) -> tuple[list[SATask], str | None]:
        query = (
            select(SATask)
            .where(SATask.user_id == user_id, SATask.completed == completed)
            .order_by(SATask.created_at, SATask.id)
            .limit(limit + 1)
        )
        async with self.sessions() as session:
            rows = list((await session.scalars(query)).all())
        return rows[:limit], next_cursor(
            rows, limit, cursors.TASKS, user_id, completed, "created_at"
        )

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
