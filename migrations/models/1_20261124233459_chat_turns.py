from tortoise import BaseDBAsyncClient

RUN_IN_TRANSACTION = True


async def upgrade(db: BaseDBAsyncClient) -> str:
    return """
        CREATE TABLE IF NOT EXISTS "faceplate"."tool_calls" (
    "id" UUID NOT NULL PRIMARY KEY,
    "call_id" VARCHAR(256) NOT NULL,
    "message_id" UUID NOT NULL,
    "result_message_id" UUID,
    "created_at" TIMESTAMPTZ NOT NULL,
    "conversation_id" UUID NOT NULL REFERENCES "faceplate"."conversations" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_tool_calls_convers_f46985" UNIQUE ("conversation_id", "call_id")
);
CREATE INDEX IF NOT EXISTS "idx_tool_calls_open" ON "faceplate"."tool_calls" ("conversation_id") WHERE "result_message_id" IS NULL;
COMMENT ON COLUMN "faceplate"."tool_calls"."call_id" IS 'the model''s call id';
COMMENT ON COLUMN "faceplate"."tool_calls"."message_id" IS 'the assistant message that made the call';
COMMENT ON COLUMN "faceplate"."tool_calls"."result_message_id" IS 'the tool message answering it';
COMMENT ON TABLE "faceplate"."tool_calls" IS 'A tool call of an assistant message, and the tool message that answered it, if any.';
-- The calls of histories written before this table: an id once per conversation (the first
-- wins: repeats were accepted then), answered when a later tool message names it. These
-- bookkeeping rows take random UUIDs: PostgreSQL before 18 cannot make a uuid7.
INSERT INTO "faceplate"."tool_calls" ("id", "conversation_id", "call_id", "message_id", "created_at")
SELECT gen_random_uuid(), m."conversation_id", c.value->>'id', m."id", m."created_at"
FROM "faceplate"."messages" m,
     jsonb_array_elements(CASE WHEN jsonb_typeof(m."tool_calls") = 'array' THEN m."tool_calls" ELSE '[]' END) c
WHERE jsonb_typeof(c.value->'id') = 'string' AND length(c.value->>'id') BETWEEN 1 AND 256
ORDER BY m."created_at", m."id"
ON CONFLICT ("conversation_id", "call_id") DO NOTHING;
UPDATE "faceplate"."tool_calls" t SET "result_message_id" = r."message_id"
FROM (
    SELECT DISTINCT ON (m."conversation_id", e.value->>'tool_call_id')
           m."conversation_id", e.value->>'tool_call_id' AS "call_id", m."id" AS "message_id"
    FROM "faceplate"."messages" m,
         jsonb_array_elements(CASE WHEN jsonb_typeof(m."tool_results") = 'array' THEN m."tool_results" ELSE '[]' END) e
    WHERE jsonb_typeof(e.value) = 'object' AND jsonb_typeof(e.value->'tool_call_id') = 'string'
    ORDER BY m."conversation_id", e.value->>'tool_call_id', m."created_at", m."id"
) r
WHERE t."conversation_id" = r."conversation_id" AND t."call_id" = r."call_id";
        ALTER TABLE "messages" ADD "turn_id" UUID;
        COMMENT ON COLUMN messages."turn_id" IS 'the append_turn call that stored it';
        CREATE INDEX IF NOT EXISTS "idx_messages_turn" ON "faceplate"."messages" ("conversation_id", "turn_id") WHERE "turn_id" IS NOT NULL;"""


async def downgrade(db: BaseDBAsyncClient) -> str:
    return """
        DROP INDEX IF EXISTS "idx_messages_turn";
        ALTER TABLE "messages" DROP COLUMN "turn_id";
        DROP TABLE IF EXISTS "tool_calls";"""


MODELS_STATE = (
    "eJztXG1z0zgQ/isaf7kyk+tAoIVhbm4mbcPRo22YNj0YKONRbCXxYUvBkmkzXP/7reRX2Y"
    "5rp01Jgr8AWWll6ZG1u8+u8A/DYzZx+W6P+I41NV6jHwbFHoF/5Fo6yMCzWSqXAoFHruqK"
    "0z4jLnxsCZCOscsJiGzCLd+ZCYdRkNLAdaWQWdDRoZNUFFDnW0BMwSZETIkPDZ+/gNihNr"
    "khPP45+2qOHeLa2lQdWz5byU0xnynZMRVvVEf5tJFpMTfwaNp5NhdTRpPeDhVSOiGU+FgQ"
    "ObzwAzl9ObtonfGKwpmmXcIpZnRsMsaBKzLLHZmpzDDNs8HQvOgPTdNoAJDFqAQXpsrV6i"
    "dyCr93n714+eLV8/0Xr6CLmmYieXkbPjoFJlRU8JwNjVvVjgUOeyiMU1C/E5/LKRWQPZxi"
    "vxzajEoOX5h4Ht8YzSqAY0GKcPpWPQbEHr4xXUInQh6N7t5eBaD/9M4P3/bOd6DXE/lIBs"
    "cgPB1nUVM3bJOopyjLQ9UA4aj7FqL77OnTGuhCr4XoqjYdXXiiIOHR1hH++2JwVo5wRiWH"
    "su1YAv2HXIcXbMUGoF0BrgRDjuxx/s3NYrpz2vuYh/vwZHCgwGFcTHw1ihrgAKCXBnr8NW"
    "NNpGCEra/X2LfNQgvrskV9i01e18tLMMUTBaRcsVxf5LIOGZWWCEcQFVya1l7p2KxMT17L"
    "vxkDSpA1xQKJqU+wjdgYYRRw4u8auX26o+vd/vCHkQJiSD0z9G3BzJbvpYnVewoyqUduZr"
    "BbXC0kGip1nzemtlJTDQbLdL47Yq4Qic6AoUYCCNSP20Ye+fLy+KiBSw4Cx96VOssctrs9"
    "s/HHOKCWXC6ST9rflX++/NN4/OOnTtrz/Sf5U6XWXu2jhSNg/Q38R6KwlAeJQFwXk5Zzz7"
    "UcSLfCgXRLHAgczPQo6SgfQYtwPLLAj2iaeVcSqe7G/9hAh2JImzWg7jx6MSrAHx6f9i+G"
    "vdP3mpc56g37sqWrpPOcdGc/t0/JIOjD8fAtkj/Rp8FZP39skn7DT4acEw4EMym7NrGdMQ"
    "SxNEZN23XdgDbZdV2z3fV12fUYo8y2R7PP7HrqQes6rozKQ3qv9Q0V7/BVhQBQR7cI7Rvm"
    "E2dC35G5AvgY5oGpVeahotjtMhpmMyFNpakl8vF1EkBlXyhYO6yYiNCj9y4Oe0f9MOIqj6"
    "gzYS7EeRAZ8yLcB5Hmm3fnxE3i33KkT8NRtghs7bQLxlzTwq57T5iGMM4hDLNNOK2SnJ0e"
    "vgf+NXYmRgkzSxs7VbTMs2Zy1tCvJinrKVr1G0egRUkY9XMiBKDD0Zj5iAEVg4eD0Aca1E"
    "GjOVAxOTkUbhYSDFgaULVyJreC8Uvo3+fEiCrYvtwnPdqSsQcnY+rvAtCLuVjcv03m1U7m"
    "RZahQS4v0mhTeQ1TeVngCZVAlBiRA/B9BNNy8DNaOfRHoLYq2GPT8riwHwwGJxrsB8fDHN"
    "iXpwd9eOXVHkAnJ4zr4jJMm3HYXu7ZZhx+xV1vMw5txmENIF1lxmGlNDHKPpSRxDQxUUER"
    "MzmQekU7Efg0LMHJmtzrqBQHnE6QG9FBmCLMuSPfFgFCn8zcOQJmJ/MISOURoI/6pVo5bG"
    "Z5xW9Fz2lYLszW+6Lt1+OHemXDGGZzCjNmflWtUBq+6glIZMyGz5U6Cx+KPrztn/fRVTzy"
    "lYGOLxCcLnR2eXLSli9/NmP22aLqZZ8GXsE+a6DHuuvMng0+54J4HXXCO+m5js9z3j7Uot"
    "b7dZh1PqjJEOv92pdkhnCQml6S2chCclVI2f84rCbUSUR5Mjj7K+6eZ9k64lW558XZDF3r"
    "XhmNzcF/JQkNhWToO5vvQEav3YPl96DNcyw2+JvJeOvkOeIQr0F0lVG5R4j1OKfNgNAbAS"
    "kh1FaRqQrYw8KODI+JjRxRz+nfJ+DSXHs+yK4Le4lqm3CoTjhYuXul90w85K+pbibEdyYg"
    "Sl60dUpEDDH/apRkIZS8U5WCENCjbn2agmEgXnoDWKYDmM1ULNFB11PHmiJlWxIKEU6Yy7"
    "vDLJhMFZ/gJZXphxx5+SvJy+QWFH7hVeRIvX52Ifto5s3ku/QQ8wCABKmYRZtQ+KXuQ6+b"
    "ydUzBXu1ivB7FUX4vWIRPjuzAs6LEwY5tTZp0DxpoNmxBnV4Te8RK/GJpC3FtxR1gyhqW4"
    "rftl1vS/E/mxm3pfgNLsUnN9zLWHDm9nsFE9YqF3WuayfVbkVcaZadhpVfWSi3FXFVXSNp"
    "mGrDlF+TMNnWQY7Un5dd2V7JM0qvbecTQ/KhqtDdpEJfh6kmOJtsRmrUxcNaRlxNTyvkbX"
    "V8Dchs/JYUsF5MZzMq60xoVZpc2Qn5XybkCQzn3PyLHHWK4dCr4oschXJ4ehiavOW61vrH"
    "A0Yu55e1bR62iTJ7VmTZH6tcUTBHTXagVHkzKkaaewk9C4D92LWilu1uGe+pw3bbCmFbIV"
    "x3XrTmFULFSku4UcxWF/MiSfhqU6IZ9IV49nrKEIe3hCOHpiU6cCKOTahwxBzNfPYdfpT+"
    "N9XlBmlW9yshKsbJ4EP/fOfKIB523CvjiZGlLoHkLgoLU7WbLrsOoWvLbGvJTNQuNeElic"
    "I6s5Ily2zPu3XKbNBrIQlRbXowxoPRv8QSDemfrvUwWP/cb1yu/gOMbdj7K4a9bZFn23Z9"
    "UZGnEI0vDhLL4/R7fh9mS2N0PWWmf49lebC0779sI1LJncDlMYovHm4LPA9PzW7/B8Vx+C"
    "M="
)
