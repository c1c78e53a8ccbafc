"""Find and organise, step 1 of 2 (expand only): folders, tags, shares and feedback (new
tables, born empty, with their indexes); a conversation's archive, pin, folder, tags, trash
and temporary flag (nullable columns, and a boolean with a constant default: catalogue
changes, a moment's lock); the full-text document `search_document` and the trigger that
keeps a tag's copy of its conversation's activity.

The folder's foreign key is added NOT VALID (every row's folder is NULL now; nothing to
check, and no scan under the table's lock); step 2 validates it without blocking writers,
and builds the conversations' and messages' new indexes concurrently. The previous release
writes none of this and needs none of it: its inserts take the column defaults.
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import briefly

RUN_IN_TRANSACTION = True

# The document a search matches: the words of `body` ('simple': no stemming, no stop words,
# any language written with spaces), and as tokens that no word can be (a word never holds
# '~'), its owner, its owner and 36-hour bucket of time, and its conversation. So one GIN
# index answers "this user's (or conversation's) rows with these words, in this stretch of
# time" without btree_gin, which the embedded server lacks. The first 100,000 characters
# are indexed: a tsvector holds at most 1 MB.
FUNCTIONS = r"""
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
CREATE OR REPLACE FUNCTION "faceplate"."conversation_tags_follow"() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE "faceplate"."conversation_tags" SET updated_at = NEW.updated_at
    WHERE conversation_id = NEW.id;
    RETURN NULL;
END $$;
"""

UPGRADE = """
-- The tables in the order an append locks them, before any statement takes a lock on one
-- (a foreign key to messages takes one on messages): waiting on a table an append holds
-- while holding one it waits for would be a deadlock, each waiter behind the other.
LOCK TABLE "faceplate"."conversations", "faceplate"."messages" IN ACCESS EXCLUSIVE MODE;
CREATE TABLE IF NOT EXISTS "faceplate"."feedback" (
    "id" UUID NOT NULL PRIMARY KEY,
    "conversation_id" UUID NOT NULL,
    "rating" SMALLINT,
    "reasons" JSONB NOT NULL,
    "comment" TEXT,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "message_id" UUID NOT NULL REFERENCES "faceplate"."messages" ("id") ON DELETE CASCADE,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS "uidx_feedback_message" ON "faceplate"."feedback" ("message_id");
CREATE INDEX IF NOT EXISTS "idx_feedback_recent" ON "faceplate"."feedback" ("updated_at", "id");
CREATE INDEX IF NOT EXISTS "idx_feedback_rating" ON "faceplate"."feedback" ("rating", "updated_at", "id");
CREATE INDEX IF NOT EXISTS "idx_feedback_user" ON "faceplate"."feedback" ("user_id");
COMMENT ON COLUMN "faceplate"."feedback"."conversation_id" IS 'the message''s conversation';
COMMENT ON COLUMN "faceplate"."feedback"."rating" IS '1 up, -1 down, none: no rating';
COMMENT ON COLUMN "faceplate"."feedback"."reasons" IS 'short labels chosen by the user';
COMMENT ON TABLE "faceplate"."feedback" IS 'A user''s rating of a message (one per message), for the people who review answers.';
CREATE TABLE IF NOT EXISTS "faceplate"."folders" (
    "id" UUID NOT NULL PRIMARY KEY,
    "name" VARCHAR(100) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_folders_user_id_ac2e11" UNIQUE ("user_id", "name")
);
COMMENT ON TABLE "faceplate"."folders" IS 'A named place in a user''s sidebar that holds conversations, one folder each.';
CREATE TABLE IF NOT EXISTS "faceplate"."shares" (
    "id" UUID NOT NULL PRIMARY KEY,
    "token_hash" BYTEA NOT NULL,
    "leaf_id" UUID,
    "live" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "conversation_id" UUID NOT NULL REFERENCES "faceplate"."conversations" ("id") ON DELETE CASCADE,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS "uidx_shares_token" ON "faceplate"."shares" ("token_hash");
CREATE INDEX IF NOT EXISTS "idx_shares_user" ON "faceplate"."shares" ("user_id", "created_at", "id");
CREATE INDEX IF NOT EXISTS "idx_shares_conversation" ON "faceplate"."shares" ("conversation_id");
COMMENT ON COLUMN "faceplate"."shares"."token_hash" IS 'SHA-256 of the token; the token is not kept';
COMMENT ON COLUMN "faceplate"."shares"."leaf_id" IS 'a snapshot''s last message';
COMMENT ON COLUMN "faceplate"."shares"."live" IS 'shows the conversation as it is';
COMMENT ON TABLE "faceplate"."shares" IS 'A read-only link to a conversation: as it was up to a message, or as it is.';
CREATE TABLE IF NOT EXISTS "faceplate"."tags" (
    "id" UUID NOT NULL PRIMARY KEY,
    "name" VARCHAR(100) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_tags_user_id_557109" UNIQUE ("user_id", "name")
);
COMMENT ON TABLE "faceplate"."tags" IS 'A named label a user puts on any number of conversations.';
CREATE TABLE IF NOT EXISTS "faceplate"."conversation_tags" (
    "id" UUID NOT NULL PRIMARY KEY,
    "user_id" UUID NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "conversation_id" UUID NOT NULL REFERENCES "faceplate"."conversations" ("id") ON DELETE CASCADE,
    "tag_id" UUID NOT NULL REFERENCES "faceplate"."tags" ("id") ON DELETE CASCADE
);
CREATE UNIQUE INDEX IF NOT EXISTS "uidx_conversation_tags" ON "faceplate"."conversation_tags" ("conversation_id", "tag_id");
CREATE INDEX IF NOT EXISTS "idx_tagged_activity" ON "faceplate"."conversation_tags" ("tag_id", "updated_at", "conversation_id");
COMMENT ON COLUMN "faceplate"."conversation_tags"."user_id" IS 'the conversation''s owner';
COMMENT ON COLUMN "faceplate"."conversation_tags"."updated_at" IS 'the conversation''s, kept equal by a trigger on conversations';
COMMENT ON TABLE "faceplate"."conversation_tags" IS 'A tag on a conversation, with the conversation''s latest activity for listing by tag.';
ALTER TABLE "faceplate"."conversations" ADD "archived_at" TIMESTAMPTZ;
ALTER TABLE "faceplate"."conversations" ADD "pinned_at" TIMESTAMPTZ;
ALTER TABLE "faceplate"."conversations" ADD "folder_id" UUID;
ALTER TABLE "faceplate"."conversations" ADD "tag_ids" JSONB;
ALTER TABLE "faceplate"."conversations" ADD "temporary" BOOL NOT NULL DEFAULT False;
ALTER TABLE "faceplate"."conversations" ADD "trashed_at" TIMESTAMPTZ;
COMMENT ON COLUMN "faceplate"."conversations"."temporary" IS 'deleted once the temporary period has passed';
COMMENT ON COLUMN "faceplate"."conversations"."trashed_at" IS 'in the trash since; deleted once the trash period has passed';
COMMENT ON COLUMN "faceplate"."conversations"."tag_ids" IS 'its tags (conversation_tags holds them for listing)';
ALTER TABLE "faceplate"."conversations" ADD CONSTRAINT "fk_conversa_folders_44569b0b" FOREIGN KEY ("folder_id") REFERENCES "faceplate"."folders" ("id") ON DELETE SET NULL NOT VALID;
"""

# After the columns: its condition reads the conversation's tags.
TRIGGER = """
CREATE TRIGGER "conversation_tags_follow" AFTER UPDATE OF updated_at ON "faceplate"."conversations"
    FOR EACH ROW WHEN (NEW.tag_ids IS NOT NULL AND OLD.updated_at IS DISTINCT FROM NEW.updated_at)
    EXECUTE FUNCTION "faceplate"."conversation_tags_follow"();
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS "conversation_tags_follow" ON "faceplate"."conversations";
DROP FUNCTION IF EXISTS "faceplate"."conversation_tags_follow"();
ALTER TABLE "faceplate"."conversations" DROP CONSTRAINT IF EXISTS "fk_conversa_folders_44569b0b";
ALTER TABLE "faceplate"."conversations" DROP COLUMN "folder_id";
ALTER TABLE "faceplate"."conversations" DROP COLUMN "tag_ids";
ALTER TABLE "faceplate"."conversations" DROP COLUMN "pinned_at";
ALTER TABLE "faceplate"."conversations" DROP COLUMN "archived_at";
ALTER TABLE "faceplate"."conversations" DROP COLUMN "temporary";
ALTER TABLE "faceplate"."conversations" DROP COLUMN "trashed_at";
DROP TABLE IF EXISTS "faceplate"."folders";
DROP TABLE IF EXISTS "faceplate"."conversation_tags";
DROP TABLE IF EXISTS "faceplate"."tags";
DROP TABLE IF EXISTS "faceplate"."feedback";
DROP TABLE IF EXISTS "faceplate"."shares";
DROP FUNCTION IF EXISTS "faceplate"."search_document"(UUID, UUID, TIMESTAMPTZ, TEXT);
DROP FUNCTION IF EXISTS "faceplate"."search_bucket"(TIMESTAMPTZ);
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return briefly(FUNCTIONS + UPGRADE + TRIGGER)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return briefly(DOWNGRADE)
