from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        DO $$ BEGIN
    -- CREATE SCHEMA IF NOT EXISTS checks CREATE on the database even when the schema
    -- exists; an owner of a schema made by the DBA has no such right, and needs none.
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'faceplate') THEN
        CREATE SCHEMA "faceplate";
    END IF;
END $$;
CREATE TABLE IF NOT EXISTS "faceplate"."users" (
    "id" UUID NOT NULL PRIMARY KEY,
    "email" VARCHAR(320) NOT NULL,
    "subject_id" VARCHAR(255) NOT NULL UNIQUE,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS "uidx_users_email_lower" ON "faceplate"."users" ((LOWER("email")));
COMMENT ON TABLE "faceplate"."users" IS 'A person who signs in through the identity provider.';
CREATE TABLE IF NOT EXISTS "faceplate"."conversations" (
    "id" UUID NOT NULL PRIMARY KEY,
    "title" VARCHAR(200),
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_conversations_user_activity" ON "faceplate"."conversations" ("user_id", "updated_at", "id");
COMMENT ON TABLE "faceplate"."conversations" IS 'One chat thread of a user.';
CREATE TABLE IF NOT EXISTS "faceplate"."mcp_configs" (
    "id" UUID NOT NULL PRIMARY KEY,
    "name" VARCHAR(100) NOT NULL,
    "config" JSONB NOT NULL,
    "enabled" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_mcp_configs_user_id_a65473" UNIQUE ("user_id", "name")
);
COMMENT ON TABLE "faceplate"."mcp_configs" IS 'A user''s connection settings for one MCP server, by a name unique to that user.';
CREATE TABLE IF NOT EXISTS "faceplate"."messages" (
    "id" UUID NOT NULL PRIMARY KEY,
    "role" VARCHAR(16) NOT NULL,
    "content" TEXT,
    "tool_calls" JSONB,
    "tool_results" JSONB,
    "created_at" TIMESTAMPTZ NOT NULL,
    "conversation_id" UUID NOT NULL REFERENCES "faceplate"."conversations" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_messages_history" ON "faceplate"."messages" ("conversation_id", "created_at", "id");
COMMENT ON COLUMN "faceplate"."messages"."role" IS 'system, user, assistant or tool';
COMMENT ON TABLE "faceplate"."messages" IS 'One turn of a conversation: a user''s text, an assistant''s reply or tool calls, a tool''s result.';
CREATE TABLE IF NOT EXISTS "faceplate"."tasks" (
    "id" UUID NOT NULL PRIMARY KEY,
    "title" VARCHAR(500) NOT NULL,
    "description" TEXT,
    "completed" BOOL NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS "idx_tasks_user_created" ON "faceplate"."tasks" ("user_id", "created_at", "id");
CREATE INDEX IF NOT EXISTS "idx_tasks_user_state" ON "faceplate"."tasks" ("user_id", "completed", "created_at", "id");
COMMENT ON TABLE "faceplate"."tasks" IS 'An item of a user''s todo list, which the assistant manages through tools.';
CREATE TABLE IF NOT EXISTS "aerich" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "version" VARCHAR(255) NOT NULL,
    "app" VARCHAR(100) NOT NULL,
    "content" JSONB NOT NULL
);"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        """


MODELS_STATE = (
    "eJztnG1v2zYQx78KoTdrAS9o3DotimGAnbqr1yYuGmct+gCBlmhbi0S6ItXEyPLdd6SeZU"
    "qR3TixXb1ZI5JHUf8Tyfv5qF0bHrOJyw+OGf1BfI6Fw6jxEl0bFHsE/tDWt5CB5/O0VhYI"
    "PHaVgZVpqWrwmAsfWwIqJ9jlBIpswi3fmUc3M4aUIGuGBRIzn2AbsQnCKODEP5D2NrOgA4"
    "dOb28aUOd7QEzBpkTMiA8GX75BsUNtckW4vLw2Jg5xbfW3Ie1Mx1aWcxsLYptYyCsok3bk"
    "au4TztWDRF3Fsjj2lZl7UlN1Bo/p/HDEQimymKumhuoJJFAXN7KX+YWphpFTOhyIKjdj2/"
    "PzwavXqqUUYgy3dAOPpq3nCzFjNGkeBI59IG1k3ZRQ4suHyghPA9eNHBUXhZpBgfADkohl"
    "pwU2meDAle4z/pgE1JKPi+Sdjg7kf5//GY0t0840T4cj86w/Mk1jyd1yDAW3RkUgqHxVHC"
    "qk3tc3Yb+pIqrUkDc4ftP98Ojp0WOlAeNi6qtKpZdxowyxwGbq61Rm4Qh4/iWlj2fY1yud"
    "GBTEhqHWkDkSMVE5bpLKnE6KWL9YoQ1oanj4ynQJnYoZXLafPKkQ+Z/uB6UztFJCM5jF4R"
    "w/jaraYZ0UPBXYgomZTqW8yq+gRjge0SudtyzIbUemB/Ef67zjD62+XLOG1F1EL0aF+KPB"
    "Sf9s1D15L2/ncf7dVfp1R31Z01ali0Lpo6OCn5JO0MfB6A2Sl+jz8LRfnDZJu9FnQ44JB4"
    "KZlF2a2M4sBHFprFrO6/kFdBWv5y0br2+L12ONMm6PRp/xerqD1t24MiZ3uXs9sI/X36tk"
    "PDC50G5VUqplaV8znzhT+pYslMADGAemlm6HimK386ib3ZQ0LU1XIh9fJgFU9oWCZ4cnJi"
    "Lc0btnx91X/TDiGmPr4hL7tlkitQdxHp4Svix3L7J8/fYDcZP4V6/0SdjLHomtxGNtlhEt"
    "J+dyldf2iiWYgih2dG95p1iu4/fAFRNnamiII62sxA3PmstRQ7uasNFVuPAbR2BFSRjNci"
    "IEqMPRhPmIAWLAzaHQh/C+hcYLQAw5OBQ6CwkG9AEIoieUDfSvwZovyeKgZPtWwJwGMh4W"
    "MtS/KzBG3H4txNi2tSTPGIe1GOOwgjEONYyRrAx5hf8+G56WsEViUYwwHUug/5DrcLGDWl"
    "dIK7XIhZGxoo9Oup+KYh+/G/aK77nsoFcQnlAphGYR6THmEkz14mesCuqPwWxTssdLy/3K"
    "3hsO3+Vk7w1GBbHPT3p9eOWVD6CRE8Yrg9NRQ9J7zlQNSf+KXm9IuiHpLZB0kyS9UUyMqF"
    "oHiSlwVyBihu3rJaNE4NMwtZTN8byMUk3AdoJciRbCFGHOHfnWCCj0ydxdICA8AUENsrDr"
    "cmijrlQtB6fqM1obvt+KabHsGKLXIR9P1EuPxbKbMxgx85uc2Pbiqs/KUmJ9GnhLi2NO9N"
    "h2m9HV4AsuiNdS06mVTqJ48hQnZS2uPaqDtcWIIkO1RxqoFYRqor4RTJVSqo1N9iE7WRXP"
    "9T+Nqmk2CefeDU//ipsXETevuPS9qRbOVX5KyFv91M8Ju6P/Rn5NUEqGG9XqHsjYNT5Y3w"
    "fNjwzlC/5u4madHxk0MV7dKEtj2uBnNX5ahdNzP4mhxcN4uynxrTiqedG2CUtHmF8YGiZV"
    "5a0qIBXQom62kiIHItf0nKOEQWYztbm10OXMsWYIoC4T04YD5vKEJAumMxXgck2e8i57Xv"
    "/g5TpkqfQLD1xG5hVsKVe9klszby7fpbsYBwgkSEO4W0u493zqc9uW3Dy6dmqlZDsVKdnO"
    "cko2O7IlncsJtmDWUOzqFJtbx1bIyubs7jEvm5Q0idmGmXaImZrE7L55vUnMPjQZN4nZHU"
    "7MKtU1BBx7o5yA5QPVPq87h7YAH5czhji8FRw5NEVQAFTHJhTC9QWa++wHXGgP5a7XyWpc"
    "q0FGCOM+Qkjx1SAedtyvxmMjC5GBpEilhanqTZddhtI1GLmVGKm8tApGJgZ7iJFP23UwEl"
    "qVYqSqy4fWPBj/Syyh3XHLZc5b3Y3Wt7/S9/edZqdT5zvNTqf8O01Z10DMfoezDcT8il4v"
    "g5ilqLvOd3BL//eG9T+G29MsVW42Fb4++4kvB7Nfu+2jUknOa32N4sTavsizSTTrEt+xZo"
    "YGzqKaVhWe4bTNbXxWLsPt7LQSzQxoSQZBG/M5dOnoT7Q7bm/Ip444/94+fPb82YunR89e"
    "QBM1zKTkecWOFP9IXc4ucjHWJmfKw+qMyR7yy0aiajmpVlA4ar6H6m7qu0/9EdnKDz9Ljs"
    "g2X36+vOWc4Aoh5N1vZjf/AzIpsLc="
)
