"""Plain Tortoise querysets on the project's own models, written the way Tortoise's
documentation shows: filters, Q objects for the keyset, a transaction for the turn."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from benchmarks.common import next_cursor, placed, position
from faceplate_models.ids import uuid7
from faceplate_models.models import Conversation, Message, Task, ToolCall, User
from faceplate_models.store import _cursors as cursors


class PlainTortoise:
    """Tortoise's querysets, on the package's own Tortoise setup and models."""

    name = "Tortoise querysets"

    async def open(self) -> None:
        pass  # the package's init_db has set Tortoise up

    async def close(self) -> None:
        pass

    async def append_turn(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, messages: list[dict[str, Any]]
    ) -> list[Message]:
        async with in_transaction() as tx:
            conversation = (
                await Conversation.filter(id=conversation_id, user_id=user_id)
                .select_for_update(no_key=True)
                .using_db(tx)
                .first()
            )
            if conversation is None:
                raise LookupError(conversation_id)
            last = max(
                datetime.now(UTC), conversation.updated_at + timedelta(microseconds=len(messages))
            )
            turn = None  # no turn id: the caller gave none
            leaf = (
                await Message.filter(id=conversation.active_leaf_id).using_db(tx).first()
                if conversation.active_leaf_id
                else None
            )
            ids = [uuid7() for _ in messages]
            places = placed(leaf and (leaf.id, leaf.depth, leaf.segment_id), ids)
            stored = [
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
            if len(stored) == 1:
                await stored[0].save(using_db=tx)
            else:
                await Message.bulk_create(stored, using_db=tx)
            answers = {
                r["tool_call_id"]: message.id
                for message in stored
                for r in message.tool_results or ()
            }
            for message in stored:
                for call in message.tool_calls or ():
                    await ToolCall.create(
                        conversation_id=conversation_id,
                        user_id=user_id,
                        call_id=call["id"],
                        message_id=message.id,
                        result_message_id=answers.pop(call["id"], None),
                        using_db=tx,
                    )
            for call_id, answer in answers.items():  # calls of earlier turns
                await (
                    ToolCall.filter(
                        conversation_id=conversation_id, call_id=call_id, result_message_id=None
                    )
                    .using_db(tx)
                    .update(result_message_id=answer)
                )
            conversation.updated_at = last
            conversation.active_leaf_id = stored[-1].id
            await conversation.save(update_fields=["updated_at", "active_leaf_id"], using_db=tx)
        return stored

    async def append_message(
        self, *, user_id: uuid.UUID, conversation_id: uuid.UUID, role: str, content: str
    ) -> Message:
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
    ) -> tuple[list[Message], str | None]:
        query = Message.filter(conversation_id=conversation_id, conversation__user_id=user_id)
        after = position(before, cursors.HISTORY, user_id, conversation_id)
        if after is not None:
            at, row_id = after
            query = query.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=row_id))
        rows = await query.order_by("-created_at", "-id").limit(limit + 1)
        items = rows[:limit]
        items.reverse()
        return items, next_cursor(
            rows, limit, cursors.HISTORY, user_id, conversation_id, "created_at"
        )

    async def list_conversations(
        self, *, user_id: uuid.UUID, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[Conversation], str | None]:
        query = Conversation.filter(user_id=user_id)
        after = position(cursor, cursors.CONVERSATIONS, user_id, None)
        if after is not None:
            at, row_id = after
            query = query.filter(Q(updated_at__lt=at) | Q(updated_at=at, id__lt=row_id))
        rows = await query.order_by("-updated_at", "-id").limit(limit + 1)
        return rows[:limit], next_cursor(
            rows, limit, cursors.CONVERSATIONS, user_id, None, "updated_at"
        )

    async def list_tasks(
        self, *, user_id: uuid.UUID, completed: bool, limit: int = 50
    ) -> tuple[list[Task], str | None]:
        rows = (
            await Task.filter(user_id=user_id, completed=completed)
            .order_by("created_at", "id")
            .limit(limit + 1)
        )
        return rows[:limit], next_cursor(
            rows, limit, cursors.TASKS, user_id, completed, "created_at"
        )

    async def get_or_create_user(self, *, subject_id: str, email: str) -> User:
        address = email.strip().lower()
        user, created = await User.get_or_create(subject_id=subject_id, defaults={"email": address})
        if not created and user.email != address:
            user.email = address
            await user.save(update_fields=["email", "updated_at"])
        return user
