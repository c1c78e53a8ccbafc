"""What each answer cost, budgets, and room for the application's own data (expand only).

New tables, empty, and columns added nullable: catalogue changes only, a moment's locks,
taken in the order an append takes them. The previous release writes none of the new
columns, and needs none of them.
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import briefly

RUN_IN_TRANSACTION = True

UPGRADE = """
LOCK TABLE "faceplate"."conversations", "faceplate"."messages" IN ACCESS EXCLUSIVE MODE;
ALTER TABLE "faceplate"."conversations" ADD "settings" JSONB, ADD "metadata" JSONB;
ALTER TABLE "faceplate"."messages"
    ADD "model" VARCHAR(200),
    ADD "provider" VARCHAR(64),
    ADD "finish_reason" VARCHAR(64),
    ADD "usage" JSONB,
    ADD "cost" BIGINT,
    ADD "thinking" JSONB,
    ADD "metadata" JSONB;
COMMENT ON COLUMN "faceplate"."conversations"."settings" IS 'model, provider, system_prompt, mcp_servers';
COMMENT ON COLUMN "faceplate"."conversations"."metadata" IS 'the application''s own';
COMMENT ON COLUMN "faceplate"."messages"."usage" IS 'tokens and latency, normalised';
COMMENT ON COLUMN "faceplate"."messages"."cost" IS 'micro-units, at the price in force';
COMMENT ON COLUMN "faceplate"."messages"."thinking" IS 'the model''s thinking blocks';
COMMENT ON COLUMN "faceplate"."messages"."metadata" IS 'the application''s own';
CREATE TABLE "faceplate"."model_prices" (
    "id" UUID NOT NULL PRIMARY KEY,
    "provider" VARCHAR(64) NOT NULL,
    "model" VARCHAR(200) NOT NULL,
    "starts_at" TIMESTAMPTZ NOT NULL,
    "input" BIGINT NOT NULL CHECK ("input" >= 0),
    "cached_input" BIGINT NOT NULL CHECK ("cached_input" >= 0),
    "cache_write" BIGINT NOT NULL CHECK ("cache_write" >= 0),
    "output" BIGINT NOT NULL CHECK ("output" >= 0),
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX "uidx_model_prices_starts" ON "faceplate"."model_prices" ("provider", "model", "starts_at");
COMMENT ON COLUMN "faceplate"."model_prices"."starts_at" IS 'in force from then until the next price';
COMMENT ON COLUMN "faceplate"."model_prices"."input" IS 'per million uncached input tokens';
COMMENT ON COLUMN "faceplate"."model_prices"."cached_input" IS 'per million input tokens read from cache';
COMMENT ON COLUMN "faceplate"."model_prices"."cache_write" IS 'per million input tokens written to cache';
COMMENT ON COLUMN "faceplate"."model_prices"."output" IS 'per million output tokens, reasoning included';
COMMENT ON TABLE "faceplate"."model_prices" IS 'What a model costs from a moment on: micro-units of one currency per million tokens.';
CREATE TABLE "faceplate"."usage_days" (
    "id" UUID NOT NULL PRIMARY KEY,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE,
    "day" DATE NOT NULL,
    "provider" VARCHAR(64) NOT NULL,
    "model" VARCHAR(200) NOT NULL,
    "answers" BIGINT NOT NULL,
    "input_tokens" BIGINT NOT NULL,
    "cached_input_tokens" BIGINT NOT NULL,
    "cache_write_tokens" BIGINT NOT NULL,
    "output_tokens" BIGINT NOT NULL,
    "reasoning_tokens" BIGINT NOT NULL,
    "cost" BIGINT NOT NULL,
    "unpriced" BIGINT NOT NULL
);
CREATE UNIQUE INDEX "uidx_usage_days_key" ON "faceplate"."usage_days" ("user_id", "day", "provider", "model");
COMMENT ON COLUMN "faceplate"."usage_days"."day" IS 'UTC';
COMMENT ON COLUMN "faceplate"."usage_days"."cost" IS 'micro-units';
COMMENT ON COLUMN "faceplate"."usage_days"."unpriced" IS 'answers with no price in force';
COMMENT ON TABLE "faceplate"."usage_days" IS 'A user''s answers and their cost, summed per UTC day and model: what summaries by day or model, and budgets, read (a few rows a day, however many conversations).';
CREATE TABLE "faceplate"."usage_rollups" (
    "id" UUID NOT NULL PRIMARY KEY,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE,
    "conversation_id" UUID NOT NULL,
    "day" DATE NOT NULL,
    "provider" VARCHAR(64) NOT NULL,
    "model" VARCHAR(200) NOT NULL,
    "answers" BIGINT NOT NULL,
    "input_tokens" BIGINT NOT NULL,
    "cached_input_tokens" BIGINT NOT NULL,
    "cache_write_tokens" BIGINT NOT NULL,
    "output_tokens" BIGINT NOT NULL,
    "reasoning_tokens" BIGINT NOT NULL,
    "cost" BIGINT NOT NULL,
    "unpriced" BIGINT NOT NULL
);
CREATE UNIQUE INDEX "uidx_usage_rollups_key" ON "faceplate"."usage_rollups" ("user_id", "day", "conversation_id", "provider", "model");
COMMENT ON COLUMN "faceplate"."usage_rollups"."conversation_id" IS 'the conversation, even once deleted';
COMMENT ON COLUMN "faceplate"."usage_rollups"."day" IS 'UTC';
COMMENT ON COLUMN "faceplate"."usage_rollups"."cost" IS 'micro-units';
COMMENT ON COLUMN "faceplate"."usage_rollups"."unpriced" IS 'answers with no price in force';
COMMENT ON TABLE "faceplate"."usage_rollups" IS 'A user''s answers and their cost, summed per day, conversation and model: what a summary by conversation reads.';
CREATE TABLE "faceplate"."budgets" (
    "id" UUID NOT NULL PRIMARY KEY,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE,
    "period" VARCHAR(8) NOT NULL CHECK ("period" IN ('day', 'month')),
    "spend_limit" BIGINT NOT NULL CHECK ("spend_limit" >= 0),
    "created_at" TIMESTAMPTZ NOT NULL,
    "updated_at" TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX "uidx_budgets_user_period" ON "faceplate"."budgets" ("user_id", "period");
COMMENT ON COLUMN "faceplate"."budgets"."period" IS 'day or month (UTC)';
COMMENT ON COLUMN "faceplate"."budgets"."spend_limit" IS 'micro-units per period';
COMMENT ON TABLE "faceplate"."budgets" IS 'A user''s spending limit per day or per month, in micro-units.';
CREATE TABLE "faceplate"."holds" (
    "id" UUID NOT NULL PRIMARY KEY,
    "user_id" UUID NOT NULL REFERENCES "faceplate"."users" ("id") ON DELETE CASCADE,
    "amount" BIGINT NOT NULL CHECK ("amount" >= 0),
    "expires_at" TIMESTAMPTZ NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE INDEX "idx_holds_user" ON "faceplate"."holds" ("user_id", "expires_at");
COMMENT ON COLUMN "faceplate"."holds"."amount" IS 'micro-units, the caller''s estimate';
COMMENT ON COLUMN "faceplate"."holds"."expires_at" IS 'a crashed worker''s hold lapses then';
COMMENT ON TABLE "faceplate"."holds" IS 'Money set aside for an answer being produced, until it is stored or given back.';
"""

DOWNGRADE = """
DROP TABLE IF EXISTS "faceplate"."holds";
DROP TABLE IF EXISTS "faceplate"."budgets";
DROP TABLE IF EXISTS "faceplate"."usage_rollups";
DROP TABLE IF EXISTS "faceplate"."usage_days";
DROP TABLE IF EXISTS "faceplate"."model_prices";
ALTER TABLE "faceplate"."messages" DROP COLUMN "model", DROP COLUMN "provider",
    DROP COLUMN "finish_reason", DROP COLUMN "usage", DROP COLUMN "cost",
    DROP COLUMN "thinking", DROP COLUMN "metadata";
ALTER TABLE "faceplate"."conversations" DROP COLUMN "settings", DROP COLUMN "metadata";
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return briefly(UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return briefly(DOWNGRADE)


MODELS_STATE = (
    "eJztXXtv2zgS/yqE/tkEcINu0qS93GGBJM1uc9skRetc95GFKkuMrYtEevWoY+z1u98Mqf"
    "fLkh3LslfAYhtLHJH6DTmcGc6M/lJsblDLPTijjqlPlFPyl8I0m8IfmTsDomjTaXwdL3ja"
    "yBJNtbjNyPUcTffg6oNmuRQuGdTVHXPqmZzBVeZbFl7kOjQ02Ti+5DPzT5+qHh9Tb0IduP"
    "H7H3DZZAZ9om74c/qoPpjUMlJDNQ3sW1xXvflUXLti3o+iIfY2UnVu+TaLG0/n3oSzqLXJ"
    "PLw6pow6mkfx8Z7j4/BxdMF7hm8kRxo3kUNM0Bj0QfMtL/G6IzW+pqjqze1Q/XQ5VFWlAU"
    "A6ZwguDNUVbz/GIbw4/P7V61dvjk5evYEmYpjRldffZNcxMJJQwHMzVL6J+5qnyRYC4xjU"
    "r9RxcUg5ZC8mmlMMbYIkgy8MPItviGYVwOGFGOF4VrUBsa09qRZlYw+XxuHxcQWg/zn7eP"
    "Hu7OMetNrHLjksA7k6boJbh/Ieoh6jjIuqAcJB8x1E9/uXL2ugC61K0RX30uhCjx6VSzuN"
    "8L8/3d4UI5wgyaBsmLpH/kcs083Jii1AuwJcBAOfbLvun1YS073rs1+ycF+8vz0X4HDXGz"
    "viKeIB5wA9CuiHx4Q0wQsjTX+caY6h5u7wQ17WNn/LPrSzVzSmjQWQ+Mb4fsGWde4bsIcU"
    "bWbBncrNbCTauLV2M+WM+C51vnOJO6XMAPxhetimR6bUIYY2J9wRf9owqSYDYjJim7rDX8"
    "Ck8NwDJcO41Z+2eA/9S4lBVLA3NdgPYQvnhoKt6dMU+IqCPII6hNE3jSc1AEgV1AEdAhgs"
    "E0U8AnATP7412rTv7q7eNti1fRjPAdIssx4Xb97Kvx58piOrCfZ0coD/f/2D0v4KFYvx6G"
    "Q/u/DEu1dv4zGD6u4xMUWXtxklWBBiMZC9u+HFfnY91dl23tTYdN6UbjlvshuOWK95sM/N"
    "cak+Kta6GhEuVkw3iHlC3ghJFE+V2vrqPw4Pj45eH748Onlz/Or16+M3LyPFNX+rSoM9v/"
    "oJldgUZ0KtNqEBOBRhU7UCrryFO55p0xJFIEWZ1QUC0oPwj+4wqb7+BS9o3DJrHsi+CqyH"
    "V9eXn4Zn1x9SasLbs+El3jkUV+eZq3snmWUTPYR8vhq+I/iT/HZ7c5kValG74W8KjknzPa"
    "4yPlM1IyGmw6shaimu+1NjSa6nKXuud4XrIUYJtgejT3A9VmfqqhVJDegZdYvu6voLNImc"
    "Bp9GNw/tj9yh5pj9TOcC4CsYh8Z0WgBooILfBY/ZTkjjq7EkcrRZpN4mJxS8O7wx9aS6df"
    "bp4uztpdSH2zeJLjhD54wWvHbOMErdH1SZR3qiZU0j6ZZRok80j3gTFD6EPxBNWDqn8K/n"
    "UIpXbDA5YOzugLiUMqJZHMwfMGLIVAP9zuMEdQ7oxvxKiUW1h7z1tL5uljer0tuJudDAQv"
    "sqhbC0ssSATG9eYWehICwewzK9clBKSzsjn99dfrwk9wq2UnXNstx7hfxAXvbW3qatPc/0"
    "LNrE2IsIlrL1AhC7IqQz/tpaHsXDCo/iYd6jKEWDiqKhoaqRp1xhfrcDvIKC0dJcLxSbKE"
    "EjYelO+Iz9kzDO6Km4yuiMxm3rWYWrLIOYK7EganAQlCZqz+5+2ZQJnFtEjJO4nmlZZKaZ"
    "HjoHH7gDOxugAo8hILaQB8HWhQxqZJaveIwUs8KlHg6ugBHlPvckzUpO95aWhVCLBmTq8K"
    "+mQR3QJeauR20VLthTb0BsfarC/ov76cqr4Nmc80km2dTTcA9pwqQkzTYwSayG6dQydaHT"
    "fOcSEFfdZEfvpCoXT9vpruidVH9HrvdOqt5J1QFI1+mkSuoQ0pNScNoVUP7480dqRS6lYq"
    "SvY2NhR8BOrXbU3csMkyYwDeE5F/CYXcJpnf7Odzzjf0peH1T5Nyccnz+o49e8Bst3TsB4"
    "IZoLdoC0xxj8586oQ0YUbTQwCQxfp8aA+AyMN2J6xEQ7DiSSgcfXY7DWGMGXzjs01/D85T"
    "2Z9GlqghhGnaOGN1GgqIbSuA8N6aSzULO5XxQcVxWtENNsS6DCQPhFUAaL0Crqgk4MA2zk"
    "HWk5aCGx1hpaBmnK7bEMFI3ojuZOQGjNuPMoOIUyhFja1KUusnB1273jpkLeQuz9AuULcz"
    "stxFp+gd5C7C3ElpXxwXaEMVxffLjg7MEcKwW6fXyzUsFH57wu2jWN8QYqRqXSF55YCJ0c"
    "1HQCnRPp8h+Q0ZxoBAdHJNsxrMDDwAR8TkXU9/M9v0DN/z2a+QK2P1bJrep18WfXxcW/Oa"
    "DLz+3D9l0O0e5YJlAgGRokAgUUfR7QCmdblCEQBULknHOLaqzEjompMuiPgGxdsIeipV3Y"
    "z29v36dgP7/KWIg3d9fnlzDlBQ+gkemVGI4uBcXfU/FnwwP4NF37Mz4hxEe+acHm5x5gf0"
    "3FuIDCDeNU5Ht19BA+AP2Rzgu1/XLZnyPscOyWAqMMuTHiTzW9Lqn94OiwxnZwdFi6G+Ct"
    "QuSD8WSdX0xz5pXAB3RZwTT35OLpBu5nl59eHB6fvPjp4voUY7R0eKJuTkEb9OiTNyCeNl"
    "55WZwHMz1aFoD5+dXN2cdfo3URWdbvb29+Oi9YGee/Di/P+niI3u/Rx0PsHNf7eIje29UB"
    "SLfW2xXERhT5uuKwiQpPVyJCo16WDoOHyLyZZDrId65InzkN0mnwp1Ah8CzadU2cPB5cdO"
    "jUEinZccAytMm5u9bUzz3Dn+I2xkMfkCvb9gUUp4QaMmAaaBwazGH8DVLKhc5cc2TBz4N7"
    "ds/OZGx7fIauuWD3MKo5YEyMbQozC8cXxsNjtRCT+WBxiJRozaFiiEFTsieMEGDdPfsSXI"
    "N59mUQhMs/eeSLQafe5Ms+8ZkFzwyi6/ExRLNQ6s/JRHMlUNiTAErUfphNTH1yz3TNpXjq"
    "P4G24mWCrgFdHBKfMbKX7BtfDW+YBgJrkC8P3HlUUw08955lX2X/gHzi8PgQHZFhJQb2QG"
    "dErG/iaAwgcXWNuRiOvhc/dEDEa+4P7tmEz+hXLGKhsTkZAYk+ked7MkULXvaADOFXOHnl"
    "NJmYyI45dD8WeVlfqfB43rMR54+PlE4Fe30v/a6D/NvBpTju/8v+KYLtmZoFryCFIM4leP"
    "8hdzxuuhQQ+HLAYefd2/8CY36UY7WXCaZITvVA2qTV1XqJWiEwaoCJWPK1csIKBuD5jviz"
    "Sb9IU9pplBsWPPleIVefCAhzcnP3/n1uSDFnpJiHSVKrBkk0mPABkrQ2FHJ6N0qQi7qUtC"
    "vB3rBHh3PpxKiGPHqpAPQiwDPrIUa9+ajwUTVGlekxOyH6g4fNHjxsTP9uMQ0ko2TAnijV"
    "2bbS0xxelpR5yXw7p4OnwA5pu3zQo8j8p4FQ2waxshYqact4/b4/qXMIlDVcE2dAJ7WLwQ"
    "1BaJWeAZUUg+uSj/U5JMjw8pdhtYc75ckLm2fd3mnEq6Kfyw8j0lRbkGrW2bM3gaS0h5pz"
    "IEHX82B5HkTaVc2s5Kj9UvG1bSXAhsaZNuJfhfkJOpC0gDeXd5zUaeuqMmmq7dBmHkwnnZ"
    "GPwAcv0qZWU2BK1IW9gLT72Ee+FVAhUzw4Dc6apeMFFkPk1nhwuN0mS6rqIJSL+8pCCF0U"
    "9smSCGXFEEJpdCraEdMgL354ttIU60nKRw9usZlQkpEfEuyCbtpC7ZawXkMTjJM0uwfzya"
    "saKJ+8KgUZb2U2BZOZ7gSUR81tVjs+R9ijvRhtP5RmdUV9RLAdUv6RMlecUlgwGKbPB4Rx"
    "x9ZgmLRm1dnWS3lwt2FGXUjRaX0/mU4nKuxRMnVMneJBFOy8eqfT6byJyR5xWA0WSpJmK9"
    "YKHpmhPoCnpsHYycji+mNHox/7EkSdYkcfclcutLYz+KpOyF14/JtjebnpniDpvskeLEAs"
    "sI/jlqagSJUKojvMVj0mBSfBdWEvIO1j37L2XfJQvy6wKaLOz+jNRhPqmSrRK0YVZotOb+"
    "ekXRhdWLB0i6MM83P5GUCuX2CpmzN4IbypBZwC9uaWnF0Mr0BbqlXQCuMKzfbqWW0J3OkN"
    "DF2uqq0ZBU6H7S5nJVWFKHAhPF0RugK+b1REppG+UAdNWc6pMENyPYi2qHsJP32IpXxRtE"
    "sbal3tlg67xn8+oHNDKQq8ju8OKmOv8ZIqfCQ1468/41TTpBFP0Ckkj4/EJRnRy06TH3zD"
    "kz+sDKD7joO+MflpONOyMB5Nus7ytQbW1UnDUNikVz06xYCV53h1CozJCNAEwKokFQwoDs"
    "nsoww3G2W4kaOXrimM6z4NaPkAsdvwruUEMRZROZSrnWQpwu3xkSmhe1/uEliFLagzGSWw"
    "TMO98O9Vms1kU7/hQU9E0unKickNHvYdTceafGLowX7f5ZMeOVx1CeZkKbeGR0nWyKwssV"
    "TF+3SeVerMMb0iW3IRp2LC7WQUDt+jqEJ3n1Pc9xovp5hma/gjhxwwaEBkIIqwVplu+Ubd"
    "gIP+M7ddUwt36/gu557fTG76UHMflQL/iLg+qPKMeNCibuVFDOOkdvwlRwxu4AYXx/wDmQ"
    "FNMo47MWCMgXC4P54ID1SBH+RZn7x8UfVl8n8FfvKzkAF5hd+j/KuQOren6Ch/jnEAQHIz"
    "7r0vnfS+tPxVyM7tACnHwHEtx8BxhWPgOO8YSI4sh3N5fmGGbBdCXtvOMUzJsYyCWlVhMk"
    "XXYo3J6MrWFpnsdc2/i67ZV2fbZa4X+Dn76mx9dbaNR5wMtqM6WxRxUWQFJ6IxKizhVKGD"
    "Oh8iiPIeheHK8gErsqZXLvRChLHInNUw3ATs36JPEayhh2cokwXjqVmlKsZUzUYr1jORgx"
    "dq1rOf6Tp8SBgwVK9rmbyqJkbQ7IUlfWl/UUWmXD8LinRlOdJsVJhdvPyY+hpRHfAf9DWi"
    "WsgNCCRNDuNyL02CpMt+mlRuWpCMX/MsJR3RcVynJBS0Ko/oOM4XheqN2R0za+oYs30izl"
    "plWVqHqotsmqr7oK4nZHxF6PM6ZAMOFBJvx/b9PJHmfbrU5s39pdKlEoV9WsuX2moxs5AN"
    "aSGwmANp2dEqI7ZOzCwEv1AQp3gAg0wYx+17v+5wYG+1uVLg/YruDaq8X6IUjWpo86af4Z"
    "Swu6EfynREIsuAuL5tU0NkqNwNLwg8WTQRXZ+Smcj6hiaaY1IXv6GJDXjOxltXP/dMNJDu"
    "s5FvjKkno8wMsieL6Dt8hvX0ofmApKrkJyWiu79iyIkh+ZLPwKnj4op5hl8fq/Bs9R6bzX"
    "psAi7n7dmSOIRgUlQYsR3aEGHVrazVoRXahfJwXdPS+hylbc9RCratPMZV8doJovYCtl+u"
    "C+SNhGCL+H41zpFpmBiUoOw5sHr2z1KMKHlAz4+VU3yWZ0eOvufGKmk8SzEiR9rzYDkeRE"
    "lFS7GhiLrnxJKyqd06rW0gnqzSWvN8dSPQ+0zkjBcFbFfAn6TqLgtCn9HM9CaE8S0qkttH"
    "evaRnps++ulopKfwZ3/kluVPlTJ3d3B7sNjj7YiWa3B6C8dx0lecc0trgWN6vpLTu0E/92"
    "yUdl8Lh/eqWZOBt7IoEmMFr3bAl96xvXE5OqhwbP/dIndysYkDQr9SRjjsE0RKyNW/hNAg"
    "vqQ/WFiAZX+w0B8sbBze/mBhh1wV/cHCpjnQHyx0kB/9wUJHuNEfLGyeB/3BQlc40R8s9A"
    "cL/cFCf7CQh78/WOgPFrIHC8LvXXCiILlRdZQQGNV1jhCm0JYzMptw4sKscFFsRFUMJyBF"
    "DMo805uT0OlUVBhiuYc0c/IXOOuV97efLz/u3SvU1kzrXtlXCtz3MDRV3FctPpPQ9e77Tr"
    "rvBZeaeOkigh300h0d1vHSQatSL524l/lEgT/6L9WLv4JXDnOa6nmwXjyl2/OHHh/XKh1w"
    "XFE64LgvHVAf/d0tHdDXwds1rocYZevg5bTuciUxnh5BZl+BCdrgY27n4iFbOAPK9PHS4h"
    "srArWjKfEpuCYcJ9lKML3jUhztIjy2PsUWD+Z41S93Xny4EM/ZVaSiwvvLYxRW999FeNL5"
    "6MtjlMx+312cElGMK0IVR07uClrP7zL69n+mNC/0"
)

