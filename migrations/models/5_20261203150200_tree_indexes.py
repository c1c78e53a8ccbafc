"""Conversations as trees, step 3 of 4: the tree's indexes, each built concurrently (writers
go on), each in a statement of its own; an invalid one a crash left is built again.

Then the unique (conversation_id, call_id) goes, its replacement built: a call id is unique
per path now, not per conversation (a regenerated answer may number its calls call_0,
call_1, ... again), which the store checks under the conversation's lock.
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import briefly, build_index, run_briefly

RUN_IN_TRANSACTION = False

INDEXES = {
    "idx_tool_calls_conversation": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_tool_calls_conversation" ON "faceplate"."tool_calls" ("conversation_id", "call_id")',
    "uidx_messages_segment_depth": 'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "uidx_messages_segment_depth" ON "faceplate"."messages" ("segment_id", "depth")',
    "idx_messages_parent": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_messages_parent" ON "faceplate"."messages" ("parent_id", "id")',
    "idx_messages_roots": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_messages_roots" ON "faceplate"."messages" ("conversation_id", "id") WHERE "parent_id" IS NULL',
    "idx_messages_forks": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_messages_forks" ON "faceplate"."messages" ("fork_segment_id", "depth", "id") WHERE "fork_segment_id" IS NOT NULL',
    "uidx_tool_calls_message_call": 'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "uidx_tool_calls_message_call" ON "faceplate"."tool_calls" ("message_id", "call_id")',
    "idx_tool_calls_result": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_tool_calls_result" ON "faceplate"."tool_calls" ("result_message_id") WHERE "result_message_id" IS NOT NULL',
    "idx_conversations_open": 'CREATE INDEX CONCURRENTLY IF NOT EXISTS "idx_conversations_open" ON "faceplate"."conversations" ("user_id", "id") WHERE "open_calls" > 0',
}


UNIQUE = "uid_tool_calls_convers_f46985"  # Aerich's name for it


async def upgrade(db: BaseDBAsyncClient) -> str:
    for name, create in INDEXES.items():
        await build_index(db, name, create)
    await run_briefly(db, f'ALTER TABLE "faceplate"."tool_calls" DROP CONSTRAINT IF EXISTS "{UNIQUE}"')
    return "SELECT 1"


async def downgrade(db: BaseDBAsyncClient) -> str:
    # Fails, and nothing is undone, if a call id now repeats on two branches of a conversation.
    return briefly(
        f'ALTER TABLE "faceplate"."tool_calls" ADD CONSTRAINT "{UNIQUE}" '
        'UNIQUE ("conversation_id", "call_id");\n'
        + ";\n".join(f'DROP INDEX IF EXISTS "faceplate"."{name}"' for name in INDEXES)
    )
