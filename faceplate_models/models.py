"""The Tortoise models: every table of schema `faceplate`, parents before children."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pypika_tortoise.terms import LiteralValue
from tortoise import fields
from tortoise.functions import Lower
from tortoise.indexes import Index
from tortoise.models import Model, ModelMeta

from faceplate_models.config import SCHEMA
from faceplate_models.ids import uuid7

if TYPE_CHECKING:
    from tortoise.backends.base.schema_generator import BaseSchemaGenerator

# Column limits, enforced by the database and checked in Python before any SQL runs.
EMAIL_MAX = 320
SUBJECT_MAX = 255
TITLE_MAX = 200
MCP_NAME_MAX = 100
TASK_TITLE_MAX = 500
TOOL_CALL_ID_MAX = 256
MODEL_NAME_MAX = 200
PROVIDER_MAX = 64
FINISH_REASON_MAX = 64
LABEL_MAX = 100
SOURCE_ID_MAX = 255
URL_MAX = 2048


def json_field(**kwargs: Any) -> Any:
    """A JSON column written and read by the standard library's json, whatever else is
    installed: Tortoise switches to orjson when it is importable, which refuses integers
    past 64 bits, so the ORM and the store would store different JSON."""
    return fields.JSONField(encoder=_JSON_DUMPS, decoder=json.loads, **kwargs)


_JSON_DUMPS = functools.partial(json.dumps, separators=(",", ":"))


class Role(StrEnum):
    """Who wrote a message, in the vocabulary of chat-completion APIs."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class ReplyStatus(StrEnum):
    """Where a streamed reply is (`start_reply`); a complete message has none."""

    STREAMING = "streaming"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


#: The full-text document of a message or a title: its words ('simple': no stemming, no stop
#: words) and, as tokens no word can be (a word never holds '~'), its owner, its owner with
#: its 36-hour bucket of time, and its conversation (`store.search` says why). The first
#: 100,000 characters are indexed: a tsvector holds at most 1 MB. Made by the migrations; a
#: schema Tortoise generates gets it with the first index that uses it.
SEARCH_FUNCTIONS = """
CREATE OR REPLACE FUNCTION "faceplate"."search_bucket"(at TIMESTAMPTZ) RETURNS BIGINT
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(extract(epoch FROM (at AT TIME ZONE 'UTC')) / 131072)::bigint $$;
CREATE OR REPLACE FUNCTION "faceplate"."search_document"(
    owner UUID, conversation UUID, at TIMESTAMPTZ, body TEXT
) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT to_tsvector('simple'::regconfig, left(coalesce(body, ''), 100000))
        || array_to_tsvector(ARRAY[
            '~' || replace(coalesce(owner::text, ''), '-', ''),
            '~' || replace(coalesce(owner::text, ''), '-', '') || '.'
                || "faceplate"."search_bucket"(at),
            '~' || replace(coalesce(conversation::text, ''), '-', '')]) $$;
"""


class SearchIndex(Index):
    """A GIN index over a full-text document (`SEARCH_FUNCTIONS`), over the rows a condition
    selects."""

    INDEX_TYPE = "GIN"

    def __init__(self, *, document: str, name: str, where: str) -> None:
        super().__init__(LiteralValue(document), name=name)
        # Without the pending list, a search never reads other users' unindexed rows.
        self.extra = f" WITH (fastupdate = off) WHERE {where}"

    def get_sql(self, schema_generator: BaseSchemaGenerator, model: type[Model], safe: bool) -> str:
        return SEARCH_FUNCTIONS + super().get_sql(schema_generator, model, safe)


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


class _Compiled(ModelMeta):
    """Tortoise's model class, without reading field comments from the module's source: it
    parses this whole file once per model (a third of a second of every process's start),
    and these models' fields say what they are in their descriptions."""

    def __new__(mcs, name: str, bases: tuple[type, ...], attrs: dict[str, Any]) -> Any:
        attrs.setdefault("_no_comments", True)
        return super().__new__(mcs, name, bases, attrs)


class Base(Model, metaclass=_Compiled):
    """What every model of the package is: a Tortoise model."""

    class Meta:
        abstract = True


class User(Base):
    """A person who signs in through the identity provider."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    email = fields.CharField(max_length=EMAIL_MAX)
    subject_id = fields.CharField(max_length=SUBJECT_MAX, unique=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    conversations: fields.ReverseRelation[Conversation]
    mcp_configs: fields.ReverseRelation[MCPConfig]
    tasks: fields.ReverseRelation[Task]
    usage_days: fields.ReverseRelation[UsageDay]
    usage_rollups: fields.ReverseRelation[UsageRollup]
    budgets: fields.ReverseRelation[Budget]
    holds: fields.ReverseRelation[Hold]
    folders: fields.ReverseRelation[Folder]
    tags: fields.ReverseRelation[Tag]
    shares: fields.ReverseRelation[Share]
    feedback: fields.ReverseRelation[Feedback]

    class Meta:
        schema = SCHEMA
        table = "users"
        # Email is compared case-insensitively, so uniqueness is on its lower-cased form.
        indexes = (UniqueIndex(Lower("email"), name="uidx_users_email_lower"),)

    def __str__(self) -> str:
        return self.email


class Label(Base):
    """What a folder and a tag are: a name a user gives, once per user."""

    name = fields.CharField(max_length=LABEL_MAX)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        user_id: Any

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name


class Folder(Label):
    """A named place in a user's sidebar that holds conversations, one folder each."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="folders", on_delete=fields.CASCADE
    )

    conversations: fields.ReverseRelation[Conversation]

    class Meta:
        schema = SCHEMA
        table = "folders"
        # A name once per user; serves the foreign key and listing by name.
        unique_together = (("user", "name"),)


class Tag(Label):
    """A named label a user puts on any number of conversations."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="tags", on_delete=fields.CASCADE
    )

    conversation_tags: fields.ReverseRelation[ConversationTag]

    class Meta:
        schema = SCHEMA
        table = "tags"
        unique_together = (("user", "name"),)


class Conversation(Base):
    """One chat thread of a user: a tree of messages, seen along the path to its active leaf."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="conversations", on_delete=fields.CASCADE
    )
    title = fields.CharField(max_length=TITLE_MAX, null=True)
    # Not a foreign key: a message's deletion through the ORM must not touch its
    # conversation, and the store reads a missing leaf as "the newest message".
    active_leaf_id = fields.UUIDField(
        null=True, description="the last message of the path shown; none: the newest message"
    )
    open_calls = fields.IntField(
        default=0, description="tool calls still waiting for a result on the active path"
    )
    settings: Any = json_field(null=True, description="model, provider, system_prompt, mcp_servers")
    metadata: Any = json_field(null=True, description="the application's own")
    message_count = fields.IntField(
        null=True, description="messages stored, kept by the store; none: not counted yet"
    )
    # Organisation: none of it is activity, so none of it moves updated_at.
    archived_at = fields.DatetimeField(null=True)
    pinned_at = fields.DatetimeField(null=True)
    folder: fields.ForeignKeyNullableRelation[Folder] = fields.ForeignKeyField(
        "models.Folder", related_name="conversations", null=True, on_delete=fields.SET_NULL
    )
    tag_ids: Any = json_field(
        null=True, description="its tags (conversation_tags holds them for listing)"
    )
    temporary = fields.BooleanField(
        default=False, description="deleted once the temporary period has passed"
    )
    trashed_at = fields.DatetimeField(
        null=True, description="in the trash since; deleted once the trash period has passed"
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    messages: fields.ReverseRelation[Message]
    tool_calls: fields.ReverseRelation[ToolCall]
    conversation_tags: fields.ReverseRelation[ConversationTag]
    shares: fields.ReverseRelation[Share]
    sources: fields.ReverseRelation[ConversationSource]
    if TYPE_CHECKING:
        user_id: Any
        folder_id: Any

    class Meta:
        schema = SCHEMA
        table = "conversations"
        # A user's conversations by latest activity, keyset-paginated on (updated_at, id);
        # it leads with user_id, so it also serves the foreign key.
        indexes = (
            Index(fields=("user_id", "updated_at", "id"), name="idx_conversations_user_activity"),
            # A backend repairing after a crash finds the conversations with open calls.
            WhereIndex(
                fields=("user_id", "id"), name="idx_conversations_open", where='"open_calls" > 0'
            ),
            # The sidebar: not archived, archived, pinned, in a folder; each by latest
            # activity, so that every filter of the listing is one range scan.
            WhereIndex(
                fields=("user_id", "updated_at", "id"),
                name="idx_conversations_listed",
                where='"trashed_at" IS NULL AND "archived_at" IS NULL',
            ),
            WhereIndex(
                fields=("user_id", "updated_at", "id"),
                name="idx_conversations_archived",
                where='"trashed_at" IS NULL AND "archived_at" IS NOT NULL',
            ),
            WhereIndex(
                fields=("user_id", "updated_at", "id"),
                name="idx_conversations_pinned",
                where='"trashed_at" IS NULL AND "pinned_at" IS NOT NULL',
            ),
            # The trash, the latest trashed first.
            WhereIndex(
                fields=("user_id", "trashed_at", "id"),
                name="idx_conversations_trash",
                where='"trashed_at" IS NOT NULL',
            ),
            # Serves the foreign key too (a folder's deletion sets its conversations' NULL).
            Index(
                fields=("folder_id", "user_id", "updated_at", "id"),
                name="idx_conversations_folder",
            ),
            # What `purge` deletes: the trash by age, temporary conversations by age.
            WhereIndex(
                fields=("trashed_at",),
                name="idx_conversations_trashed",
                where='"trashed_at" IS NOT NULL',
            ),
            WhereIndex(
                fields=("created_at",), name="idx_conversations_temporary", where='"temporary"'
            ),
            # Titles by words (`search_messages`): the user's words, as for messages.
            SearchIndex(
                document="faceplate.search_document(user_id, id, created_at, title)",
                name="idx_conversations_search",
                where='"trashed_at" IS NULL',
            ),
        )

    def __str__(self) -> str:
        return self.title or "(untitled conversation)"


class Message(Base):
    """One node of a conversation's tree: a user's text, an assistant's reply or tool calls, a
    tool's result. Immutable: editing or regenerating adds a sibling.

    A path is stored as linear segments: a message continues its parent's segment (the same
    `segment_id`, the next `depth`) unless the parent already has a continuation, in which
    case it heads a segment of its own (`segment_id` is its id, and `fork_segment_id` its
    parent's segment). So a path is read as a few index range scans on (segment_id, depth),
    however many branches the tree has. The messages of a history page leave that
    bookkeeping out (`segment_id`, `fork_segment_id`, `open_calls`): partial instances, as
    Tortoise's `.only()` makes them.
    """

    id = fields.UUIDField(primary_key=True, default=uuid7)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="messages", on_delete=fields.CASCADE
    )
    # No action, not cascade: the database refuses to delete a message that has replies (a
    # hole in the tree); `delete_branch` deletes a whole subtree in one statement.
    parent: fields.ForeignKeyNullableRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="replies", null=True, on_delete=fields.NO_ACTION
    )
    user_id = fields.UUIDField(null=True, description="the conversation's owner")
    role = fields.CharEnumField(Role, max_length=16, description="system, user, assistant or tool")
    content = fields.TextField(null=True)
    tool_calls: Any = json_field(null=True)
    tool_results: Any = json_field(null=True)
    depth = fields.IntField(null=True, description="messages above it on its path")
    segment_id = fields.UUIDField(null=True, description="the first message of its segment")
    fork_segment_id = fields.UUIDField(
        null=True, description="a segment's first message: the segment it branches from"
    )
    open_calls: Any = json_field(
        null=True, description="tool calls waiting for a result on its path: call id -> message"
    )
    # What an assistant's answer was and cost.
    model = fields.CharField(max_length=MODEL_NAME_MAX, null=True)
    provider = fields.CharField(max_length=PROVIDER_MAX, null=True)
    finish_reason = fields.CharField(max_length=FINISH_REASON_MAX, null=True)
    usage: Any = json_field(null=True, description="tokens and latency, normalised")
    cost = fields.BigIntField(null=True, description="micro-units, at the price in force")
    thinking: Any = json_field(null=True, description="the model's thinking blocks")
    metadata: Any = json_field(null=True, description="the application's own")
    created_at = fields.DatetimeField(auto_now_add=True)
    turn_id = fields.UUIDField(null=True, description="the append_turn call that stored it")
    status = fields.CharField(
        max_length=16,
        null=True,
        description="streaming, interrupted or failed (a reply's, `start_reply`); none: complete",
    )
    failure = fields.TextField(null=True, description="why its reply failed (`fail(reason)`)")

    replies: fields.ReverseRelation[Message]
    calls_made: fields.ReverseRelation[ToolCall]
    calls_answered: fields.ReverseRelation[ToolCall]
    ratings: fields.ReverseRelation[Feedback]
    stream: fields.BackwardOneToOneRelation[Reply]
    chunks: fields.ReverseRelation[ReplyChunk]
    #: Filled in by `get_history`: how many messages share its parent (itself included), and
    #: its place among them in creation order, from 1 ("2 of 3").
    sibling_count: int = 1
    sibling_index: int = 1
    #: Filled in by `get_history`: the owner's rating of it (`rate_message`), if any.
    feedback: MessageFeedback | None = None
    if TYPE_CHECKING:
        conversation_id: Any
        parent_id: Any

    class Meta:
        schema = SCHEMA
        table = "messages"
        indexes = (
            # A conversation's messages in order (the tree view, the newest message); serves
            # the foreign key too.
            Index(fields=("conversation_id", "created_at", "id"), name="idx_messages_history"),
            # A repeated append_turn finds its first call's messages; only turns are indexed.
            WhereIndex(
                fields=("conversation_id", "turn_id"),
                name="idx_messages_turn",
                where='"turn_id" IS NOT NULL',
            ),
            # A path, a range of depths per segment; unique, so a segment stays one chain.
            UniqueIndex(fields=("segment_id", "depth"), name="uidx_messages_segment_depth"),
            # A message's replies (its children), in creation order; serves the foreign key.
            Index(fields=("parent_id", "id"), name="idx_messages_parent"),
            # The first messages of a conversation (its roots), for their siblings.
            WhereIndex(
                fields=("conversation_id", "id"),
                name="idx_messages_roots",
                where='"parent_id" IS NULL',
            ),
            # Segments branching from a segment, by depth: the tree below a message.
            WhereIndex(
                fields=("fork_segment_id", "depth", "id"),
                name="idx_messages_forks",
                where='"fork_segment_id" IS NOT NULL',
            ),
            # What the user and the assistant wrote, by words (`search_messages`); the
            # document carries the owner, the conversation and the time as tokens too.
            SearchIndex(
                document="faceplate.search_document(user_id, conversation_id, created_at, content)",
                name="idx_messages_search",
                where="\"role\" IN ('user', 'assistant')",
            ),
            # Replies being written, for the sweep that marks the abandoned ones interrupted.
            WhereIndex(
                fields=("id",), name="idx_messages_streaming", where="\"status\" = 'streaming'"
            ),
        )

    def __str__(self) -> str:
        return f"{self.role}: {self.content or '(tool calls)'}"


@dataclass(frozen=True)
class MessageFeedback:
    """A message's rating as its history shows it."""

    rating: int | None
    reasons: list[str]
    comment: str | None


class Reply(Base):
    """An assistant message streamed as it is written (`start_reply`): its writer, how much
    text it has, and until when the writer counts as alive."""

    message: fields.OneToOneRelation[Message] = fields.OneToOneField(
        "models.Message", related_name="stream", on_delete=fields.CASCADE, primary_key=True
    )
    user_id = fields.UUIDField(description="the conversation's owner")
    conversation_id = fields.UUIDField()
    turn_id = fields.UUIDField(null=True, description="the request it answers; a retry takes over")
    writer = fields.UUIDField(description="the handle allowed to write; another is refused")
    length = fields.IntField(default=0, description="characters stored in its chunks")
    live_until = fields.DatetimeField(
        null=True, description="the writer's last beat plus the timeout; none: it has ended"
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    if TYPE_CHECKING:
        message_id: Any

    class Meta:
        schema = SCHEMA
        table = "replies"
        # A retried request (the same turn) finds the attempt it takes over.
        indexes = (
            WhereIndex(
                fields=("conversation_id", "turn_id"),
                name="idx_replies_turn",
                where='"turn_id" IS NOT NULL',
            ),
        )

    def __str__(self) -> str:
        return f"reply {self.message_id} ({self.length} characters)"


class ReplyChunk(Base):
    """A piece of a reply's text, as one flush stored it; kept until the reply ends."""

    # Made by the writer: no sequence, which the application's role would need a grant for.
    id = fields.UUIDField(primary_key=True, default=uuid7)
    # The message's, not the `Reply`'s: Tortoise cannot refer to a key that is itself a
    # relation.
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="chunks", on_delete=fields.CASCADE
    )
    at = fields.IntField(description="characters of the reply before it")
    text = fields.TextField()

    if TYPE_CHECKING:
        message_id: Any

    class Meta:
        schema = SCHEMA
        table = "reply_chunks"
        # The reply's text in order; serves the foreign key.
        unique_together = (("message", "at"),)

    def __str__(self) -> str:
        return f"{len(self.text)} characters at {self.at}"


class ToolCall(Base):
    """A tool call of an assistant message, and the tool message that first answered it."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="tool_calls", on_delete=fields.CASCADE
    )
    user_id = fields.UUIDField(null=True, description="the conversation's owner")
    call_id = fields.CharField(max_length=TOOL_CALL_ID_MAX, description="the model's call id")
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message",
        related_name="calls_made",
        on_delete=fields.CASCADE,
        description="the assistant message that made the call",
    )
    result_message: fields.ForeignKeyNullableRelation[Message] = fields.ForeignKeyField(
        "models.Message",
        related_name="calls_answered",
        null=True,
        on_delete=fields.SET_NULL,
        description="the tool message answering it",
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    if TYPE_CHECKING:
        conversation_id: Any
        message_id: Any
        result_message_id: Any

    class Meta:
        schema = SCHEMA
        table = "tool_calls"
        indexes = (
            # A conversation's calls by id (the same id may be on several branches); serves
            # the foreign key.
            Index(fields=("conversation_id", "call_id"), name="idx_tool_calls_conversation"),
            # A message's calls; a call id once per message. Serves the foreign key.
            UniqueIndex(fields=("message_id", "call_id"), name="uidx_tool_calls_message_call"),
            # The calls a message answered, for the foreign key's SET NULL.
            WhereIndex(
                fields=("result_message_id",),
                name="idx_tool_calls_result",
                where='"result_message_id" IS NOT NULL',
            ),
            # Calls no result has answered yet. Read by the previous release; the next
            # release's migration drops it.
            WhereIndex(
                fields=("conversation_id",),
                name="idx_tool_calls_open",
                where='"result_message_id" IS NULL',
            ),
        )

    def __str__(self) -> str:
        return f"{self.call_id} ({'answered' if self.result_message_id else 'open'})"


class ModelPrice(Base):
    """What a model costs from a moment on: micro-units of one currency per million tokens."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    provider = fields.CharField(max_length=PROVIDER_MAX)
    model = fields.CharField(max_length=MODEL_NAME_MAX)
    starts_at = fields.DatetimeField(description="in force from then until the next price")
    input = fields.BigIntField(description="per million uncached input tokens")
    cached_input = fields.BigIntField(description="per million input tokens read from cache")
    cache_write = fields.BigIntField(description="per million input tokens written to cache")
    output = fields.BigIntField(description="per million output tokens, reasoning included")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        schema = SCHEMA
        table = "model_prices"
        # One price per model and moment; the price in force is the latest one before.
        indexes = (
            UniqueIndex(fields=("provider", "model", "starts_at"), name="uidx_model_prices_starts"),
        )

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} from {self.starts_at:%Y-%m-%d}"


class UsageTotals(Base):
    """What a usage row sums: answers, their tokens and their cost (the rollups' columns)."""

    answers = fields.BigIntField(default=0)
    input_tokens = fields.BigIntField(default=0)
    cached_input_tokens = fields.BigIntField(default=0)
    cache_write_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    reasoning_tokens = fields.BigIntField(default=0)
    cost = fields.BigIntField(default=0, description="micro-units")
    unpriced = fields.BigIntField(default=0, description="answers with no price in force")

    class Meta:
        abstract = True


class UsageDay(UsageTotals):
    """A user's answers and their cost, summed per UTC day and model: what summaries by day or
    model, and budgets, read (a few rows a day, however many conversations)."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="usage_days", on_delete=fields.CASCADE
    )
    day = fields.DateField(description="UTC")
    provider = fields.CharField(max_length=PROVIDER_MAX)
    model = fields.CharField(max_length=MODEL_NAME_MAX)

    if TYPE_CHECKING:
        user_id: Any

    class Meta:
        schema = SCHEMA
        table = "usage_days"
        # The append's upsert, and a user's days in order (serves the user's key).
        indexes = (
            UniqueIndex(fields=("user_id", "day", "provider", "model"), name="uidx_usage_days_key"),
        )

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model}: {self.answers} answers"


class UsageRollup(UsageTotals):
    """A user's answers and their cost, summed per day, conversation and model: what a summary
    by conversation reads."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="usage_rollups", on_delete=fields.CASCADE
    )
    # Not a foreign key: what was spent stays spent when a conversation is deleted, or a
    # user could delete one to spend its budget again.
    conversation_id = fields.UUIDField(description="the conversation, even once deleted")
    day = fields.DateField(description="UTC")
    provider = fields.CharField(max_length=PROVIDER_MAX)
    model = fields.CharField(max_length=MODEL_NAME_MAX)

    if TYPE_CHECKING:
        user_id: Any

    class Meta:
        schema = SCHEMA
        table = "usage_rollups"
        # The append's upsert, and a user's days in order (serves the user's key).
        indexes = (
            UniqueIndex(
                fields=("user_id", "day", "conversation_id", "provider", "model"),
                name="uidx_usage_rollups_key",
            ),
        )

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model}: {self.answers} answers"


class Budget(Base):
    """A user's spending limit per day or per month, in micro-units."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="budgets", on_delete=fields.CASCADE
    )
    period = fields.CharField(max_length=8, description="day or month (UTC)")
    limit = fields.BigIntField(source_field="spend_limit", description="micro-units per period")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        user_id: Any

    class Meta:
        schema = SCHEMA
        table = "budgets"
        indexes = (UniqueIndex(fields=("user_id", "period"), name="uidx_budgets_user_period"),)

    def __str__(self) -> str:
        return f"{self.limit} per {self.period}"


class Hold(Base):
    """Money set aside for an answer being produced, until it is stored or given back."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="holds", on_delete=fields.CASCADE
    )
    amount = fields.BigIntField(description="micro-units, the caller's estimate")
    expires_at = fields.DatetimeField(description="a crashed worker's hold lapses then")
    created_at = fields.DatetimeField(auto_now_add=True)

    if TYPE_CHECKING:
        user_id: Any

    class Meta:
        schema = SCHEMA
        table = "holds"
        indexes = (Index(fields=("user_id", "expires_at"), name="idx_holds_user"),)

    def __str__(self) -> str:
        return f"{self.amount} until {self.expires_at:%H:%M:%S}"


class MCPConfig(Base):
    """A user's connection settings for one MCP server, by a name unique to that user."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="mcp_configs", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=MCP_NAME_MAX)
    config: Any = json_field()
    enabled = fields.BooleanField(default=True)
    # The secret values are sealed (faceplate_models.secrets); only their names are plain.
    secret_names: Any = json_field(default=list, description="names of the secrets")
    secret_key_id = fields.CharField(max_length=32, null=True, description="key of the box")
    secret_box = fields.BinaryField(null=True, description="AES-256-GCM: nonce, ciphertext, tag")
    secret_version = fields.BigIntField(
        default=0, description="the box's version, sealed into it; 0: sealed before versions"
    )
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    grant: fields.BackwardOneToOneRelation[OAuthGrant]
    sign_ins: fields.ReverseRelation[OAuthSignIn]

    #: The decrypted secrets, filled in only by `get_mcp_config(..., reveal_secrets=True)`.
    secrets: dict[str, str] | None = None
    #: Filled in by `import_mcp_servers`: what of the imported entry was not stored, and why.
    left_out: list[str] | None = None

    if TYPE_CHECKING:
        user_id: Any

    class Meta:
        schema = SCHEMA
        table = "mcp_configs"
        # The unique (user_id, name) index also serves the foreign key and listing by name.
        unique_together = (("user", "name"),)

    def __str__(self) -> str:
        return self.name


class OAuthClient(Base):
    """This application's registration with an OAuth authorization server, made once per
    server, redirect URI and client metadata and reused by every user."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    lookup = fields.CharField(
        max_length=64, unique=True, description="SHA-256 of server, redirect URI, metadata"
    )
    server = fields.CharField(max_length=URL_MAX, description="the MCP server it is for")
    issuer = fields.CharField(max_length=URL_MAX, null=True)
    # The client information (it may hold a client secret) is sealed, as MCP secrets are.
    key_id = fields.CharField(max_length=32)
    box = fields.BinaryField()
    created_at = fields.DatetimeField(auto_now_add=True)

    grants: fields.ReverseRelation[OAuthGrant]

    class Meta:
        schema = SCHEMA
        table = "oauth_clients"

    def __str__(self) -> str:
        return f"OAuth client for {self.server}"


class OAuthGrant(Base):
    """A user's OAuth tokens for one MCP config: sealed, with absolute expiry and a generation
    that every write must follow."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    mcp_config: fields.OneToOneRelation[MCPConfig] = fields.OneToOneField(
        "models.MCPConfig", related_name="grant", on_delete=fields.CASCADE
    )
    user_id = fields.UUIDField(description="the config's owner")
    client: fields.ForeignKeyNullableRelation[OAuthClient] = fields.ForeignKeyField(
        "models.OAuthClient", related_name="grants", null=True, on_delete=fields.SET_NULL
    )
    generation = fields.BigIntField(default=0, description="one more with every token written")
    key_id = fields.CharField(max_length=32, null=True)
    box = fields.BinaryField(null=True, description="the tokens, sealed for this generation")
    expires_at = fields.DatetimeField(null=True, description="when the access token expires")
    needs_sign_in = fields.BooleanField(
        default=False, description="the provider refused the refresh: the user signs in again"
    )
    failure = fields.TextField(null=True, description="the provider's last refusal")
    lease_until = fields.DatetimeField(null=True, description="a refresh under way, until then")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        mcp_config_id: Any
        client_id: Any

    class Meta:
        schema = SCHEMA
        table = "oauth_grants"
        # The client's grants, for the foreign key's SET NULL.
        indexes = (Index(fields=("client_id",), name="idx_oauth_grants_client"),)

    def __str__(self) -> str:
        return f"grant {self.id} (generation {self.generation})"


class OAuthSignIn(Base):
    """A sign-in under way: its PKCE verifier sealed, found by its state's hash, used once."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    mcp_config: fields.ForeignKeyRelation[MCPConfig] = fields.ForeignKeyField(
        "models.MCPConfig", related_name="sign_ins", on_delete=fields.CASCADE
    )
    user_id = fields.UUIDField()
    state_hash = fields.CharField(max_length=64, unique=True, description="SHA-256 of the state")
    key_id = fields.CharField(max_length=32)
    box = fields.BinaryField(description="the PKCE verifier, sealed")
    expires_at = fields.DatetimeField()
    created_at = fields.DatetimeField(auto_now_add=True)

    if TYPE_CHECKING:
        mcp_config_id: Any

    class Meta:
        schema = SCHEMA
        table = "oauth_sign_ins"
        indexes = (
            # Serves the foreign key; and what `purge` deletes, by age.
            Index(fields=("mcp_config_id",), name="idx_oauth_sign_ins_config"),
            Index(fields=("expires_at",), name="idx_oauth_sign_ins_expiry"),
        )

    def __str__(self) -> str:
        return f"sign-in {self.id}"


class Task(Base):
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


class ConversationTag(Base):
    """A tag on a conversation, with the conversation's latest activity for listing by tag."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user_id = fields.UUIDField(description="the conversation's owner")
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="conversation_tags", on_delete=fields.CASCADE
    )
    tag: fields.ForeignKeyRelation[Tag] = fields.ForeignKeyField(
        "models.Tag", related_name="conversation_tags", on_delete=fields.CASCADE
    )
    updated_at = fields.DatetimeField(
        description="the conversation's, kept equal by a trigger on conversations"
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    if TYPE_CHECKING:
        conversation_id: Any
        tag_id: Any

    class Meta:
        schema = SCHEMA
        table = "conversation_tags"
        indexes = (
            # A tag once per conversation; serves the conversation's foreign key.
            UniqueIndex(fields=("conversation_id", "tag_id"), name="uidx_conversation_tags"),
            # A tag's conversations by latest activity; serves the tag's foreign key.
            Index(fields=("tag_id", "updated_at", "conversation_id"), name="idx_tagged_activity"),
        )

    def __str__(self) -> str:
        return f"{self.tag_id} on {self.conversation_id}"


class ConversationSource(Base):
    """Where an imported conversation came from: the product and its id there, so that the
    same export imported again adds nothing."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user_id = fields.UUIDField(description="the conversation's owner")
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="sources", on_delete=fields.CASCADE
    )
    source = fields.CharField(max_length=32, description="chatgpt, claude, openwebui, faceplate")
    source_id = fields.CharField(max_length=SOURCE_ID_MAX, description="its id there")
    created_at = fields.DatetimeField(auto_now_add=True)

    if TYPE_CHECKING:
        conversation_id: Any

    class Meta:
        schema = SCHEMA
        table = "conversation_sources"
        unique_together = (("user_id", "source", "source_id"),)
        # Serves the foreign key.
        indexes = (Index(fields=("conversation_id",), name="idx_conversation_sources_conv"),)

    def __str__(self) -> str:
        return f"{self.source} {self.source_id}"


class Share(Base):
    """A read-only link to a conversation: as it was up to a message, or as it is."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="shares", on_delete=fields.CASCADE
    )
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="shares", on_delete=fields.CASCADE
    )
    token_hash = fields.BinaryField(description="SHA-256 of the token; the token is not kept")
    leaf_id = fields.UUIDField(null=True, description="a snapshot's last message")
    live = fields.BooleanField(default=False, description="shows the conversation as it is")
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        user_id: Any
        conversation_id: Any

    class Meta:
        schema = SCHEMA
        table = "shares"
        indexes = (
            UniqueIndex(fields=("token_hash",), name="uidx_shares_token"),
            # A user's shares, newest first; serves the user's foreign key.
            Index(fields=("user_id", "created_at", "id"), name="idx_shares_user"),
            Index(fields=("conversation_id",), name="idx_shares_conversation"),
        )

    def __str__(self) -> str:
        return f"share of {self.conversation_id} ({'live' if self.live else 'snapshot'})"


class Feedback(Base):
    """A user's rating of a message (one per message), for the people who review answers."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="feedback", on_delete=fields.CASCADE
    )
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="ratings", on_delete=fields.CASCADE
    )
    conversation_id = fields.UUIDField(description="the message's conversation")
    rating = fields.SmallIntField(null=True, description="1 up, -1 down, none: no rating")
    reasons: Any = json_field(default=list, description="short labels chosen by the user")
    comment = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    if TYPE_CHECKING:
        user_id: Any
        message_id: Any

    class Meta:
        schema = SCHEMA
        table = "feedback"
        indexes = (
            # One rating per message (a message has one owner); serves the foreign key.
            UniqueIndex(fields=("message_id",), name="uidx_feedback_message"),
            # What reviewers read: everything since a moment, or one rating since then.
            Index(fields=("updated_at", "id"), name="idx_feedback_recent"),
            Index(fields=("rating", "updated_at", "id"), name="idx_feedback_rating"),
            Index(fields=("user_id",), name="idx_feedback_user"),
        )

    def __str__(self) -> str:
        return f"{self.rating or 'no rating'} on {self.message_id}"


#: The package's tables, parents before children.
MODELS = (
    User,
    Folder,
    Tag,
    Conversation,
    Message,
    Reply,
    ReplyChunk,
    ToolCall,
    ModelPrice,
    UsageDay,
    UsageRollup,
    Budget,
    Hold,
    MCPConfig,
    OAuthClient,
    OAuthGrant,
    OAuthSignIn,
    Task,
    ConversationTag,
    ConversationSource,
    Share,
    Feedback,
)

__all__ = [
    "MODELS",
    "Budget",
    "Conversation",
    "ConversationSource",
    "ConversationTag",
    "Feedback",
    "Folder",
    "Hold",
    "MCPConfig",
    "Message",
    "MessageFeedback",
    "ModelPrice",
    "OAuthClient",
    "OAuthGrant",
    "OAuthSignIn",
    "Reply",
    "ReplyChunk",
    "ReplyStatus",
    "Role",
    "Share",
    "Tag",
    "Task",
    "ToolCall",
    "UsageDay",
    "UsageRollup",
    "User",
]
