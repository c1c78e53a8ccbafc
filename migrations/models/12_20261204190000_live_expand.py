"""Live replies and MCP OAuth, step 1 of 2 (expand only): the tables of streamed replies
(`replies`, `reply_chunks`) and of OAuth (`oauth_clients`, `oauth_grants`,
`oauth_sign_ins`), born empty, with their indexes; a message's `status` and `failure`
(nullable columns: catalogue changes, a moment's lock). The previous release writes none of
it, and its inserts leave both columns NULL: a complete message.
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import briefly

RUN_IN_TRANSACTION = True

UPGRADE = """
-- The tables in the order an append locks them, before any statement takes a lock on one
-- (the foreign keys to messages take one on it).
LOCK TABLE "faceplate"."conversations", "faceplate"."messages" IN ACCESS EXCLUSIVE MODE;
ALTER TABLE "faceplate"."messages" ADD COLUMN IF NOT EXISTS "status" VARCHAR(16);
ALTER TABLE "faceplate"."messages" ADD COLUMN IF NOT EXISTS "failure" TEXT;
COMMENT ON COLUMN "faceplate"."messages"."status" IS 'streaming, interrupted or failed (a reply''s, `start_reply`); none: complete';
COMMENT ON COLUMN "faceplate"."messages"."failure" IS 'why its reply failed (`fail(reason)`)';
CREATE TABLE IF NOT EXISTS "faceplate"."oauth_clients" (
    "id" UUID NOT NULL PRIMARY KEY,
    "lookup" VARCHAR(64) NOT NULL UNIQUE,
    "server" VARCHAR(2048) NOT NULL,
    "issuer" VARCHAR(2048),
    "key_id" VARCHAR(32) NOT NULL,
    "box" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
COMMENT ON COLUMN "faceplate"."oauth_clients"."lookup" IS 'SHA-256 of server, redirect URI, metadata';
COMMENT ON COLUMN "faceplate"."oauth_clients"."server" IS 'the MCP server it is for';
COMMENT ON TABLE "faceplate"."oauth_clients" IS 'This application''s registration with an OAuth authorization server, made once per';
CREATE TABLE IF NOT EXISTS "faceplate"."oauth_grants" (
    "id" UUID NOT NULL PRIMARY KEY,
    "user_id" UUID NOT NULL,
    "generation" BIGINT NOT NULL,
    "key_id" VARCHAR(32),
    "box" BYTEA,
    "expires_at" TIMESTAMPTZ,
    "needs_sign_in" BOOL NOT NULL,
    "failure" TEXT,
    "lease_until" TIMESTAMPTZ,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "client_id" UUID REFERENCES "faceplate"."oauth_clients" ("id") ON DELETE SET NULL,
    "mcp_config_id" UUID NOT NULL UNIQUE REFERENCES "faceplate"."mcp_configs" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_oauth_grants_client" ON "faceplate"."oauth_grants" ("client_id");
COMMENT ON COLUMN "faceplate"."oauth_grants"."user_id" IS 'the config''s owner';
COMMENT ON COLUMN "faceplate"."oauth_grants"."generation" IS 'one more with every token written';
COMMENT ON COLUMN "faceplate"."oauth_grants"."box" IS 'the tokens, sealed for this generation';
COMMENT ON COLUMN "faceplate"."oauth_grants"."expires_at" IS 'when the access token expires';
COMMENT ON COLUMN "faceplate"."oauth_grants"."needs_sign_in" IS 'the provider refused the refresh: the user signs in again';
COMMENT ON COLUMN "faceplate"."oauth_grants"."failure" IS 'the provider''s last refusal';
COMMENT ON COLUMN "faceplate"."oauth_grants"."lease_until" IS 'a refresh under way, until then';
COMMENT ON TABLE "faceplate"."oauth_grants" IS 'A user''s OAuth tokens for one MCP config: sealed, with absolute expiry and a generation';
CREATE TABLE IF NOT EXISTS "faceplate"."oauth_sign_ins" (
    "id" UUID NOT NULL PRIMARY KEY,
    "user_id" UUID NOT NULL,
    "state_hash" VARCHAR(64) NOT NULL UNIQUE,
    "key_id" VARCHAR(32) NOT NULL,
    "box" BYTEA NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "mcp_config_id" UUID NOT NULL REFERENCES "faceplate"."mcp_configs" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_oauth_sign_ins_config" ON "faceplate"."oauth_sign_ins" ("mcp_config_id");
CREATE INDEX IF NOT EXISTS "idx_oauth_sign_ins_expiry" ON "faceplate"."oauth_sign_ins" ("expires_at");
COMMENT ON COLUMN "faceplate"."oauth_sign_ins"."state_hash" IS 'SHA-256 of the state';
COMMENT ON COLUMN "faceplate"."oauth_sign_ins"."box" IS 'the PKCE verifier, sealed';
COMMENT ON TABLE "faceplate"."oauth_sign_ins" IS 'A sign-in under way: its PKCE verifier sealed, found by its state''s hash, used once.';
CREATE TABLE IF NOT EXISTS "faceplate"."replies" (
    "user_id" UUID NOT NULL,
    "conversation_id" UUID NOT NULL,
    "turn_id" UUID,
    "writer" UUID NOT NULL,
    "length" INT NOT NULL,
    "live_until" TIMESTAMPTZ,
    "created_at" TIMESTAMPTZ NOT NULL,
    "message_id" UUID NOT NULL PRIMARY KEY REFERENCES "faceplate"."messages" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_replies_turn" ON "faceplate"."replies" ("conversation_id", "turn_id") WHERE "turn_id" IS NOT NULL;
COMMENT ON COLUMN "faceplate"."replies"."user_id" IS 'the conversation''s owner';
COMMENT ON COLUMN "faceplate"."replies"."turn_id" IS 'the request it answers; a retry takes over';
COMMENT ON COLUMN "faceplate"."replies"."writer" IS 'the handle allowed to write; another is refused';
COMMENT ON COLUMN "faceplate"."replies"."length" IS 'characters stored in its chunks';
COMMENT ON COLUMN "faceplate"."replies"."live_until" IS 'the writer''s last beat plus the timeout; none: it has ended';
COMMENT ON TABLE "faceplate"."replies" IS 'An assistant message streamed as it is written (`start_reply`): its writer, how much';
CREATE TABLE IF NOT EXISTS "faceplate"."reply_chunks" (
    "id" UUID NOT NULL PRIMARY KEY,
    "at" INT NOT NULL,
    "text" TEXT NOT NULL,
    "message_id" UUID NOT NULL REFERENCES "faceplate"."messages" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_reply_chunk_message_613a9d" UNIQUE ("message_id", "at")
);
COMMENT ON COLUMN "faceplate"."reply_chunks"."at" IS 'characters of the reply before it';
COMMENT ON TABLE "faceplate"."reply_chunks" IS 'A piece of a reply''s text, as one flush stored it; kept until the reply ends.';
"""

DOWNGRADE = """
DROP TABLE IF EXISTS "faceplate"."oauth_sign_ins";
DROP TABLE IF EXISTS "faceplate"."oauth_grants";
DROP TABLE IF EXISTS "faceplate"."oauth_clients";
DROP TABLE IF EXISTS "faceplate"."reply_chunks";
DROP TABLE IF EXISTS "faceplate"."replies";
ALTER TABLE "faceplate"."messages" DROP COLUMN IF EXISTS "failure";
ALTER TABLE "faceplate"."messages" DROP COLUMN IF EXISTS "status";
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return briefly(UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return briefly(DOWNGRADE)
