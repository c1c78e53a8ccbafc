"""The Tortoise models: every table of schema `faceplate`, parents before children."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aerich.models import Aerich
from tortoise import fields
from tortoise.functions import Lower
from tortoise.indexes import Index
from tortoise.models import Model
from uuid6 import uuid7

from faceplate_models.config import SCHEMA

if TYPE_CHECKING:
    from tortoise.backends.base.schema_generator import BaseSchemaGenerator

# Column limits, enforced by the database and checked in Python before any SQL runs.
EMAIL_MAX = 320
SUBJECT_MAX = 255
TITLE_MAX = 200
MCP_NAME_MAX = 100
TASK_TITLE_MAX = 500
TOOL_CALL_ID_MAX = 256


class Role(StrEnum):
    """Who wrote a message, in the vocabulary of chat-completion APIs."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class UniqueIndex(Index):
    """A unique index over expressions, which Tortoise's `Index` cannot declare by itself."""

    def get_sql(self, schema_generator: BaseSchemaGenerator, model: type[Model], safe: bool) -> str:
        return super().get_sql(schema_generator, model, safe).replace("INDEX", "UNIQUE INDEX", 1)


class WhereIndex(Index):
    """An index over the rows a condition selects, which Tortoise's `PartialIndex` (equalities
    only) cannot say."""

    def __init__(self, *, fields: tuple[str, ...], name: str, where: str) -> None:
        super().__init__(fields=fields, name=name)
        self.extra = f" WHERE {where}"


class User(Model):
    """A person who signs in through the identity provider."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    email = fields.CharField(max_length=EMAIL_MAX)
    subject_id = fields.CharField(max_length=SUBJECT_MAX, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    conversations: fields.ReverseRelation[Conversation]
    mcp_configs: fields.ReverseRelation[MCPConfig]
    tasks: fields.ReverseRelation[Task]

    class Meta:
        schema = SCHEMA
        table = "users"
        # Email is compared case-insensitively, so uniqueness is on its lower-cased form.
        indexes = (UniqueIndex(Lower("email"), name="uidx_users_email_lower"),)

    def __str__(self) -> str:
        return self.email


class Conversation(Model):
    """One chat thread of a user."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="conversations", on_delete=fields.CASCADE
    )
    title = fields.CharField(max_length=TITLE_MAX, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    messages: fields.ReverseRelation[Message]
    tool_calls: fields.ReverseRelation[ToolCall]
    if TYPE_CHECKING:
        user_id: Any

    class Meta:
        schema = SCHEMA
        table = "conversations"
        # A user's conversations by latest activity, keyset-paginated on (updated_at, id);
        # it leads with user_id, so it also serves the foreign key.
        indexes = (
            Index(fields=("user_id", "updated_at", "id"), name="idx_conversations_user_activity"),
        )

    def __str__(self) -> str:
        return self.title or "(untitled conversation)"


class Message(Model):
    """One turn of a chat: a user's text, an assistant's reply or tool calls, a tool's result."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="messages", on_delete=fields.CASCADE
    )
    role = fields.CharEnumField(Role, max_length=16, description="system, user, assistant or tool")
    content = fields.TextField(null=True)
    tool_calls: Any = fields.JSONField(null=True)
    tool_results: Any = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    turn_id = fields.UUIDField(null=True, description="the append_turn call that stored it")

    if TYPE_CHECKING:
        conversation_id: Any

    class Meta:
        schema = SCHEMA
        table = "messages"
        indexes = (
            # A conversation's history in order, read from a cursor; serves the FK too.
            Index(fields=("conversation_id", "created_at", "id"), name="idx_messages_history"),
            # A repeated append_turn finds its first call's messages; only turns are indexed.
            WhereIndex(
                fields=("conversation_id", "turn_id"),
                name="idx_messages_turn",
                where='"turn_id" IS NOT NULL',
            ),
        )

    def __str__(self) -> str:
        return f"{self.role}: {self.content or '(tool calls)'}"


class ToolCall(Model):
    """A tool call of an assistant message, and the tool message that answered it, if any."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="tool_calls", on_delete=fields.CASCADE
    )
    call_id = fields.CharField(max_length=TOOL_CALL_ID_MAX, description="the model's call id")
    # Plain columns, not foreign keys: messages are append-only and go with their
    # conversation, and a key on them would cost an index scan per message deleted.
    message_id = fields.UUIDField(description="the assistant message that made the call")
    result_message_id = fields.UUIDField(null=True, description="the tool message answering it")
    created_at = fields.DatetimeField(auto_now_add=True)

    if TYPE_CHECKING:
        conversation_id: Any

    class Meta:
        schema = SCHEMA
        table = "tool_calls"
        # Call ids are unique per conversation; the index serves the FK and result lookups.
        unique_together = (("conversation", "call_id"),)
        # Calls still waiting for their result, for a backend repairing after a crash.
        indexes = (
            WhereIndex(
                fields=("conversation_id",),
                name="idx_tool_calls_open",
                where='"result_message_id" IS NULL',
            ),
        )

    def __str__(self) -> str:
        return f"{self.call_id} ({'answered' if self.result_message_id else 'open'})"


class MCPConfig(Model):
    """A user's connection settings for one MCP server, by a name unique to that user."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="mcp_configs", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=MCP_NAME_MAX)
    config: Any = fields.JSONField()
    enabled = fields.BooleanField(default=True)
    # The secret values are sealed (faceplate_models.secrets); only their names are plain.
    secret_names: Any = fields.JSONField(default=list, description="names of the secrets")
    secret_key_id = fields.CharField(max_length=32, null=True, description="key of the box")
    secret_box = fields.BinaryField(null=True, description="AES-256-GCM: nonce, ciphertext, tag")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    #: The decrypted secrets, filled in only by `get_mcp_config(..., reveal_secrets=True)`.
    secrets: dict[str, str] | None = None

    if TYPE_CHECKING:
        user_id: Any

    class Meta:
        schema = SCHEMA
        table = "mcp_configs"
        # The unique (user_id, name) index also serves the foreign key and listing by name.
        unique_together = (("user", "name"),)

    def __str__(self) -> str:
        return self.name


class Task(Model):
    """An item of a user's todo list, which the assistant manages through tools."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="tasks", on_delete=fields.CASCADE
    )
    title = fields.CharField(max_length=TASK_TITLE_MAX)
    description = fields.TextField(null=True)
    completed = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        user_id: Any

    class Meta:
        schema = SCHEMA
        table = "tasks"
        # All of a user's tasks in creation order (and the FK), and the same filtered by state.
        indexes = (
            Index(fields=("user_id", "created_at", "id"), name="idx_tasks_user_created"),
            Index(fields=("user_id", "completed", "created_at", "id"), name="idx_tasks_user_state"),
        )

    def __str__(self) -> str:
        return f"[{'x' if self.completed else ' '}] {self.title}"


#: The package's tables, parents before children.
MODELS = (User, Conversation, Message, ToolCall, MCPConfig, Task)

# Aerich's version table has no schema of its own and would land wherever search_path
# points (`public` through a transaction pooler); it belongs to this schema.
Aerich._meta.schema = SCHEMA

__all__ = ["MODELS", "Conversation", "MCPConfig", "Message", "Role", "Task", "ToolCall", "User"]
