"""Piccolo ORM on the same tables, written the way its documentation shows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from piccolo.columns import JSONB, UUID, Boolean, Integer, Text, Timestamptz, Varchar
from piccolo.engine.postgres import PostgresEngine
from piccolo.table import Table

from benchmarks.common import POOL, next_cursor, placed, position
from faceplate_models.config import SCHEMA, DatabaseTarget
from faceplate_models.ids import uuid7
from faceplate_models.store import _cursors as cursors


class Piccolo:
    """Piccolo tables bound to an engine of their own, with a pool of the same size."""

    name = "Piccolo"

    def __init__(self, target: DatabaseTarget) -> None:
        t = target
        self.engine = PostgresEngine(
            config={
                "host": t.host,
                "port": t.port,
                "user": t.user,
                "password": t.password,
                "database": t.database,
            },
            log_queries=False,
        )
        engine = self.engine

        class User(Table, tablename="users", schema=SCHEMA, db=engine):
            id = UUID(primary_key=True)
            email = Varchar(length=320)
            subject_id = Varchar(length=255, unique=True)
            created_at = Timestamptz()
            updated_at = Timestamptz()

        class Conversation(Table, tablename="conversations", schema=SCHEMA, db=engine):
            id = UUID(primary_key=True)
            user_id = UUID()
            title = Varchar(length=200, null=True)
            active_leaf_id = UUID(null=True)
            created_at = Timestamptz()
            updated_at = Timestamptz()

        class Message(Table, tablename="messages", schema=SCHEMA, db=engine):
            id = UUID(primary_key=True)
            conversation_id = UUID()
            parent_id = UUID(null=True)
            user_id = UUID(null=True)
            depth = Integer(null=True)
            segment_id = UUID(null=True)
            role = Varchar(length=16)
            content = Text(null=True)
            tool_calls = JSONB(null=True)
            tool_results = JSONB(null=True)
            created_at = Timestamptz()
            turn_id = UUID(null=True)

        class ToolCall(Table, tablename="tool_calls", schema=SCHEMA, db=engine):
            id = UUID(primary_key=True)
            conversation_id = UUID()
            user_id = UUID(null=True)
            call_id = Varchar(length=256)
            message_id = UUID()
            result_message_id = UUID(null=True)
            created_at = Timestamptz()

        class Task(Table, tablename="tasks", schema=SCHEMA, db=engine):
            id = UUID(primary_key=True)
            user_id = UUID()
            title = Varchar(length=500)
            description = Text(null=True)
            completed = Boolean()
            created_at = Timestamptz()
            updated_at = Timestamptz()

        self.User, self.Conversation, self.Message = User, Conversation, Message
        self.ToolCall, self.Task = ToolCall, Task

    async def open(self) -> None:
        await self.engine.start_connection_pool(min_size=5, max_size=POOL)

    async def close(self) -> None:
        await self.engine.close_connection_pool()

    async def append_turn(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, messages: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        Conversation, Message, ToolCall = self.Conversation, self.Message, self.ToolCall
        async with self.engine.transaction():
            conversation = (
                await Conversation.select(Conversation.updated_at, Conversation.active_leaf_id)
                .where((Conversation.id == conversation_id) & (Conversation.user_id == user_id))
                .lock_rows("NO KEY UPDATE")
                .first()
            )
            if conversation is None:
                raise LookupError(conversation_id)
            last = max(
                datetime.now(UTC),
                conversation["updated_at"] + timedelta(microseconds=len(messages)),
            )
            turn = None  # no turn id: the caller gave none
            leaf = (
                await Message.select(Message.id, Message.depth, Message.segment_id)
                .where(Message.id == conversation["active_leaf_id"])
                .first()
            )
            ids = [uuid7() for _ in messages]
            places = placed(leaf and (leaf["id"], leaf["depth"], leaf["segment_id"]), ids)
            rows = [
                Message(
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
            stored = await Message.insert(*rows).returning(*Message.all_columns())
            answers = {
                r["tool_call_id"]: message["id"]
                for message, draft in zip(stored, messages, strict=True)
                for r in draft.get("tool_results") or ()
            }
            calls = [
                ToolCall(
                    id=uuid7(),
                    conversation_id=conversation_id,
                    user_id=user_id,
                    call_id=call["id"],
                    message_id=message["id"],
                    result_message_id=answers.pop(call["id"], None),
                    created_at=last,
                )
                for message, draft in zip(stored, messages, strict=True)
                for call in draft.get("tool_calls") or ()
            ]
            if calls:
                await ToolCall.insert(*calls)
            for call_id, answer in answers.items():  # calls of earlier turns
                await ToolCall.update({ToolCall.result_message_id: answer}).where(
                    (ToolCall.conversation_id == conversation_id)
                    & (ToolCall.call_id == call_id)
                    & ToolCall.result_message_id.is_null()
                )
            await Conversation.update(
                {Conversation.updated_at: last, Conversation.active_leaf_id: ids[-1]}
            ).where(Conversation.id == conversation_id)
        return list(stored)

    async def append_message(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, role: str, content: str
    ) -> dict[str, Any]:
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
    ) -> tuple[list[dict[str, Any]], str | None]:
        Conversation, Message = self.Conversation, self.Message
        owned = Conversation.select(Conversation.id).where(
            (Conversation.id == conversation_id) & (Conversation.user_id == user_id)
        )
        where: Any = Message.conversation_id.is_in(owned)
        after = position(before, cursors.HISTORY, user_id, conversation_id)
        if after is not None:
            at, row_id = after
            where &= (Message.created_at < at) | (
                (Message.created_at == at) & (Message.id < row_id)
            )
        rows = (
            await Message.select()
            .where(where)
            .order_by(Message.created_at, Message.id, ascending=False)
            .limit(limit + 1)
            .output(load_json=True)
        )
        items = rows[:limit]
        items.reverse()
        return items, next_cursor(
            rows, limit, cursors.HISTORY, user_id, conversation_id, "created_at"
        )

    async def list_conversations(
        self, *, user_id: uuid.UUID, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        Conversation = self.Conversation
        where: Any = Conversation.user_id == user_id
        after = position(cursor, cursors.CONVERSATIONS, user_id, None)
        if after is not None:
            at, row_id = after
            where &= (Conversation.updated_at < at) | (
                (Conversation.updated_at == at) & (Conversation.id < row_id)
            )
        rows = (
            await Conversation.select()
            .where(where)
            .order_by(Conversation.updated_at, Conversation.id, ascending=False)
            .limit(limit + 1)
        )
        return rows[:limit], next_cursor(
            rows, limit, cursors.CONVERSATIONS, user_id, None, "updated_at"
        )

    async def list_tasks(
        self, *, user_id: uuid.UUID, completed: bool, limit: int = 50
    ) -> tuple[list[dict[str, Any]], str | None]:
        Task = self.Task
        rows = (
            await Task.select()
            .where((Task.user_id == user_id) & (Task.completed == completed))
            .order_by(Task.created_at, Task.id)
            .limit(limit + 1)
        )
        return rows[:limit], next_cursor(
            rows, limit, cursors.TASKS, user_id, completed, "created_at"
        )

    async def get_or_create_user(self, *, subject_id: str, email: str) -> Any:
        User = self.User
        address, now = email.strip().lower(), datetime.now(UTC)
        user = await User.objects().get_or_create(
            User.subject_id == subject_id,
            defaults={
                User.id: uuid7(),
                User.email: address,
                User.created_at: now,
                User.updated_at: now,
            },
        )
        if user.email != address:
            user.email, user.updated_at = address, now
            await user.save([User.email, User.updated_at])
        return user
