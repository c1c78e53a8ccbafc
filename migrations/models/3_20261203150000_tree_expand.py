"""Conversations as trees, step 1 of 4 (expand): the tree's columns, nullable, and what keeps
the previous release's writes on the tree until it is gone.

Every statement here changes the catalogue only (no row is rewritten), so the file holds its
locks for a moment; `briefly` bounds its wait for them. The previous release keeps working:
it writes messages without the tree's columns, and the triggers place them (after the
newest message of their conversation, which is where that release appends) and make them
the active leaf. The next release's migration (contract) drops the triggers and the
functions and makes the columns NOT NULL.
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import briefly

RUN_IN_TRANSACTION = True

UPGRADE = """
-- The tables in the order an append locks them: waiting on a table an append holds while
-- holding one it waits for would be a deadlock, each waiter behind the other.
LOCK TABLE "faceplate"."conversations", "faceplate"."messages", "faceplate"."tool_calls"
    IN ACCESS EXCLUSIVE MODE;
ALTER TABLE "faceplate"."messages"
    ADD "parent_id" UUID,
    ADD "user_id" UUID,
    ADD "depth" INT,
    ADD "segment_id" UUID,
    ADD "fork_segment_id" UUID,
    ADD "open_calls" JSONB;
ALTER TABLE "faceplate"."tool_calls" ADD "user_id" UUID;
ALTER TABLE "faceplate"."conversations"
    ADD "active_leaf_id" UUID,
    ADD "open_calls" INT NOT NULL DEFAULT 0;
COMMENT ON COLUMN "faceplate"."messages"."parent_id" IS 'the message it follows';
COMMENT ON COLUMN "faceplate"."messages"."user_id" IS 'the conversation''s owner';
COMMENT ON COLUMN "faceplate"."messages"."depth" IS 'messages above it on its path';
COMMENT ON COLUMN "faceplate"."messages"."segment_id" IS 'the first message of its segment';
COMMENT ON COLUMN "faceplate"."messages"."fork_segment_id" IS 'a segment''s first message: the segment it branches from';
COMMENT ON COLUMN "faceplate"."messages"."open_calls" IS 'tool calls waiting for a result on its path: call id -> message';
COMMENT ON COLUMN "faceplate"."tool_calls"."user_id" IS 'the conversation''s owner';
COMMENT ON COLUMN "faceplate"."conversations"."active_leaf_id" IS 'the last message of the path shown; none: the newest message';
COMMENT ON COLUMN "faceplate"."conversations"."open_calls" IS 'tool calls still waiting for a result on the active path';

-- The calls open after a message: those open before it, less the ones its results answer,
-- plus the ones it makes (call id -> the message that made it).
CREATE OR REPLACE FUNCTION "faceplate"."next_open_calls"(opens JSONB, message_id UUID, calls JSONB, results JSONB)
RETURNS JSONB LANGUAGE sql IMMUTABLE AS $$
    SELECT NULLIF(
        (COALESCE(opens, '{}'::jsonb) - COALESCE(ARRAY(
            SELECT r->>'tool_call_id'
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(results) = 'array' THEN results ELSE '[]' END) r
            WHERE jsonb_typeof(r->'tool_call_id') = 'string'), '{}'))
        || COALESCE((
            SELECT jsonb_object_agg(c->>'id', message_id)
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(calls) = 'array' THEN calls ELSE '[]' END) c
            WHERE jsonb_typeof(c->'id') = 'string'), '{}'),
        '{}'::jsonb)
$$;

-- A message the previous release wrote (no depth): placed after the newest message of its
-- conversation, as that release meant it; left for the backfill while that one is unplaced.
CREATE OR REPLACE FUNCTION "faceplate"."place_previous_release_message"() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    before_id UUID;
    before_depth INT;
    before_segment UUID;
    before_opens JSONB;
BEGIN
    SELECT id, depth, segment_id, open_calls INTO before_id, before_depth, before_segment, before_opens
    FROM "faceplate"."messages"
    WHERE conversation_id = NEW.conversation_id AND (created_at, id) < (NEW.created_at, NEW.id)
    ORDER BY created_at DESC, id DESC LIMIT 1;
    IF before_id IS NULL THEN
        NEW.depth := 0;
        NEW.segment_id := NEW.id;
    ELSIF before_depth IS NULL THEN
        RETURN NEW;
    ELSE
        -- The newest message has no reply yet, so this one continues its segment.
        NEW.parent_id := before_id;
        NEW.depth := before_depth + 1;
        NEW.segment_id := before_segment;
    END IF;
    NEW.open_calls := "faceplate"."next_open_calls"(before_opens, NEW.id, NEW.tool_calls, NEW.tool_results);
    RETURN NEW;
END $$;
CREATE TRIGGER "place_previous_release_message" BEFORE INSERT ON "faceplate"."messages"
    FOR EACH ROW WHEN (NEW.depth IS NULL) EXECUTE FUNCTION "faceplate"."place_previous_release_message"();

-- After the previous release's statement: the owner on the row, and the message as the
-- conversation's active leaf (an AFTER trigger, so that it follows that statement's own
-- update of the conversation).
CREATE OR REPLACE FUNCTION "faceplate"."adopt_previous_release_message"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE "faceplate"."messages" m SET user_id = c.user_id
    FROM "faceplate"."conversations" c WHERE m.id = NEW.id AND c.id = NEW.conversation_id;
    IF NEW.depth IS NOT NULL THEN
        UPDATE "faceplate"."conversations" SET active_leaf_id = NEW.id,
            open_calls = (SELECT count(*) FROM jsonb_object_keys(COALESCE(NEW.open_calls, '{}')))
        WHERE id = NEW.conversation_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER "adopt_previous_release_message" AFTER INSERT ON "faceplate"."messages"
    FOR EACH ROW WHEN (NEW.user_id IS NULL) EXECUTE FUNCTION "faceplate"."adopt_previous_release_message"();

CREATE OR REPLACE FUNCTION "faceplate"."own_previous_release_call"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.user_id := (SELECT user_id FROM "faceplate"."conversations" WHERE id = NEW.conversation_id);
    RETURN NEW;
END $$;
CREATE TRIGGER "own_previous_release_call" BEFORE INSERT ON "faceplate"."tool_calls"
    FOR EACH ROW WHEN (NEW.user_id IS NULL) EXECUTE FUNCTION "faceplate"."own_previous_release_call"();

-- One batch of the backfill (step 2): conversations in id order from `start`, each history
-- placed as one path in the order it was written, about `batch` messages in all; returns
-- where the next batch starts (NULL: done). Each conversation's row is locked while its
-- messages are placed, so its appends wait for the batch (tens of milliseconds) and the
-- triggers above never race it. What is left is read from the data (depth IS NULL), so a
-- run that stopped resumes by starting again.
CREATE OR REPLACE FUNCTION "faceplate"."backfill_message_tree"(start UUID, batch INT) RETURNS UUID
LANGUAGE plpgsql AS $$
DECLARE
    conv RECORD;
    r RECORD;
    done INT := 0;
    placed INT;
    last_id UUID;
    last_depth INT;
    last_segment UUID;
    opens JSONB;
    ids UUID[];
    parents UUID[];
    depths INT[];
    segments UUID[];
    open_sets JSONB[];
BEGIN
    FOR conv IN SELECT id, user_id FROM "faceplate"."conversations"
                WHERE start IS NULL OR id >= start ORDER BY id LOOP
        IF done >= batch THEN
            RETURN conv.id;
        END IF;
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM "faceplate"."messages" WHERE conversation_id = conv.id AND depth IS NULL);
        PERFORM 1 FROM "faceplate"."conversations" WHERE id = conv.id FOR NO KEY UPDATE;
        ids := '{}'; parents := '{}'; depths := '{}'; segments := '{}'; open_sets := '{}';
        placed := 0;
        FOR r IN SELECT id, created_at, tool_calls, tool_results FROM "faceplate"."messages"
                 WHERE conversation_id = conv.id AND depth IS NULL
                 ORDER BY created_at, id LIMIT batch - done LOOP
            IF placed = 0 THEN
                -- The placed messages come first: the last of them is where this path goes on.
                last_id := NULL; opens := NULL;
                SELECT id, depth, segment_id, open_calls INTO last_id, last_depth, last_segment, opens
                FROM "faceplate"."messages"
                WHERE conversation_id = conv.id AND (created_at, id) < (r.created_at, r.id)
                ORDER BY created_at DESC, id DESC LIMIT 1;
                IF last_id IS NULL THEN
                    last_depth := -1;
                    last_segment := r.id;
                ELSIF last_depth IS NULL THEN
                    RAISE EXCEPTION 'message % is unplaced but precedes %', last_id, r.id;
                END IF;
            END IF;
            opens := "faceplate"."next_open_calls"(opens, r.id, r.tool_calls, r.tool_results);
            ids := ids || r.id;
            parents := parents || last_id;
            depths := depths || (last_depth + 1);
            segments := segments || last_segment;
            open_sets := open_sets || opens;
            last_id := r.id;
            last_depth := last_depth + 1;
            placed := placed + 1;
        END LOOP;
        UPDATE "faceplate"."messages" m
        SET parent_id = u.parent, depth = u.depth, segment_id = u.segment, open_calls = u.opens,
            user_id = conv.user_id
        FROM unnest(ids, parents, depths, segments, open_sets) AS u(id, parent, depth, segment, opens)
        WHERE m.id = u.id;
        UPDATE "faceplate"."conversations"
        SET active_leaf_id = last_id,
            open_calls = (SELECT count(*) FROM jsonb_object_keys(COALESCE(opens, '{}')))
        WHERE id = conv.id;
        UPDATE "faceplate"."tool_calls" SET user_id = conv.user_id
        WHERE conversation_id = conv.id AND user_id IS NULL;
        done := done + placed;
        IF done >= batch THEN
            RETURN conv.id;  -- it may have more: the next batch starts here again
        END IF;
    END LOOP;
    RETURN NULL;
END $$;
"""

DOWNGRADE = """
DROP TRIGGER IF EXISTS "place_previous_release_message" ON "faceplate"."messages";
DROP TRIGGER IF EXISTS "adopt_previous_release_message" ON "faceplate"."messages";
DROP TRIGGER IF EXISTS "own_previous_release_call" ON "faceplate"."tool_calls";
DROP FUNCTION IF EXISTS "faceplate"."place_previous_release_message"();
DROP FUNCTION IF EXISTS "faceplate"."adopt_previous_release_message"();
DROP FUNCTION IF EXISTS "faceplate"."own_previous_release_call"();
DROP FUNCTION IF EXISTS "faceplate"."backfill_message_tree"(UUID, INT);
DROP FUNCTION IF EXISTS "faceplate"."next_open_calls"(JSONB, UUID, JSONB, JSONB);
ALTER TABLE "faceplate"."messages"
    DROP COLUMN "parent_id", DROP COLUMN "user_id", DROP COLUMN "depth",
    DROP COLUMN "segment_id", DROP COLUMN "fork_segment_id", DROP COLUMN "open_calls";
ALTER TABLE "faceplate"."tool_calls" DROP COLUMN "user_id";
ALTER TABLE "faceplate"."conversations" DROP COLUMN "active_leaf_id", DROP COLUMN "open_calls";
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return briefly(UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return briefly(DOWNGRADE)
