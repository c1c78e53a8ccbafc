"""Conversations as trees, step 2 of 4: every history written before the tree becomes one
path, in the order it was written, with its owner on every message and tool call.

Not one transaction: batches of about a thousand messages, each committing by itself (the
function comes from step 1), while the previous release goes on writing. A run that stopped
resumes where it did, since what is left is read from the data.
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import backfill

RUN_IN_TRANSACTION = False


async def upgrade(db: BaseDBAsyncClient) -> str:
    await backfill(db, '"faceplate"."backfill_message_tree"')
    return "SELECT 1"


async def downgrade(db: BaseDBAsyncClient) -> str:
    # The values go with their columns, in step 1's downgrade.
    return "SELECT 1"
