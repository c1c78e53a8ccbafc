"""One round trip per call: functions of the schema that take a row lock and then do the
call's work, committing by themselves when called alone. Each statement of a function sees
what committed before it began, so the statements after the lock see what the lock waited
for (within one statement they would not: its snapshot is taken before the wait).

- `append_turn`: a turn locked, placed on the tree, its tool calls paired, written;
- `below_limit`: a user's row locked and their rows of a table counted, for a create
  that counts against a limit in one INSERT;
- `reserve` and `switch_branch`: the user's or the conversation's row locked, then the
  store's own statement (the same text as `store.usage.RESERVE_SQL` and
  `store.history.TIPS_SQL`, which a test compares).

It adds functions and changes no table: the previous release ignores them.
"""

from tortoise import BaseDBAsyncClient

from faceplate_models.migrate import briefly

RUN_IN_TRANSACTION = True

# Problems are raised with SQLSTATEs of class FP, which the store turns into its errors:
# FP404 a conversation or message that is not the user's (MESSAGE which, DETAIL the key),
# FP422 a field the turn cannot have here (MESSAGE the field, DETAIL the call id or role),
# FP429 the conversation's message limit, FP503 a history not placed on its tree yet.
UPGRADE = r"""
CREATE OR REPLACE FUNCTION "faceplate"."append_turn"(
    p_conversation UUID, p_user UUID, p_place TEXT, p_after UUID, p_turn UUID,
    p_limit BIGINT, p_at TIMESTAMPTZ, p_ids UUID[], p_roles TEXT[], p_contents TEXT[],
    p_tool_calls JSONB[], p_tool_results JSONB[], p_models TEXT[], p_providers TEXT[],
    p_finish_reasons TEXT[], p_usages JSONB[], p_thinking JSONB[], p_metadata JSONB[],
    p_statuses TEXT[], p_answers JSONB[], p_calls JSONB[], p_call_keys UUID[],
    p_hold UUID, p_usage_keys UUID[], p_usage_providers TEXT[], p_usage_models TEXT[],
    p_day_keys UUID[], p_check BOOLEAN
) RETURNS SETOF "faceplate"."messages" LANGUAGE plpgsql AS $fn$
DECLARE
    conv RECORD;
    above_id UUID;
    above_depth INT;
    above_segment UUID;
    above_opens JSONB;
    edited RECORD;
    turn_size INT := cardinality(p_ids);
    counted BIGINT;
    continued BOOLEAN := false;
    opens JSONB;
    a_call TEXT;
    maker TEXT;
    k INT;
    j INT;
    last_at TIMESTAMPTZ;
    parents UUID[] := '{}';
    depths INT[] := '{}';
    segments UUID[] := '{}';
    forks UUID[] := '{}';
    open_after JSONB[] := '{}';
    made_calls TEXT[] := '{}';
    made_by UUID[] := '{}';
    made_answer UUID[] := '{}';
    answered_makers UUID[] := '{}';
    answered_calls TEXT[] := '{}';
    answered_by UUID[] := '{}';
BEGIN
    -- The lock proves ownership and orders the conversation's appends; a check takes none.
    IF p_check THEN
        SELECT id, updated_at, active_leaf_id, message_count INTO conv
        FROM faceplate.conversations WHERE id = p_conversation AND user_id = p_user;
    ELSE
        SELECT id, updated_at, active_leaf_id, message_count INTO conv
        FROM faceplate.conversations WHERE id = p_conversation AND user_id = p_user
        FOR NO KEY UPDATE;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'FP404', MESSAGE = 'conversation',
            DETAIL = p_conversation::text;
    END IF;

    -- A repeat (the same turn id, or the first message's id): what the first call stored.
    IF NOT p_check AND (
        EXISTS (SELECT 1 FROM faceplate.messages WHERE id = p_ids[1] AND user_id = p_user)
        OR EXISTS (SELECT 1 FROM faceplate.messages
                   WHERE conversation_id = p_conversation AND turn_id = p_turn
                     AND user_id = p_user)
    ) THEN
        RETURN QUERY SELECT * FROM faceplate.messages
            WHERE conversation_id = p_conversation AND user_id = p_user
              AND (id = ANY(p_ids) OR turn_id = p_turn)
            ORDER BY created_at, id;
        RETURN;
    END IF;

    counted := conv.message_count;
    IF counted IS NULL THEN  -- a conversation of a release that did not count
        SELECT count(*) INTO counted FROM faceplate.messages
        WHERE conversation_id = p_conversation AND user_id = p_user;
        IF NOT p_check THEN
            UPDATE faceplate.conversations SET message_count = counted
            WHERE id = p_conversation AND user_id = p_user;
        END IF;
    END IF;
    IF counted + turn_size > p_limit THEN
        RAISE EXCEPTION USING ERRCODE = 'FP429', MESSAGE = 'messages_per_conversation';
    END IF;

    -- Where the turn goes: after the active leaf (or the newest message, when that is
    -- unset), after a given message, at the root, or beside an edited user message.
    IF p_place = 'edit' THEN
        SELECT role, parent_id INTO edited FROM faceplate.messages
        WHERE id = p_after AND conversation_id = p_conversation AND user_id = p_user;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'FP404', MESSAGE = 'message',
                DETAIL = p_after::text;
        END IF;
        IF edited.role <> 'user' THEN
            RAISE EXCEPTION USING ERRCODE = 'FP422', MESSAGE = 'message_id',
                DETAIL = edited.role;
        END IF;
        p_place := CASE WHEN edited.parent_id IS NULL THEN 'root' ELSE 'after' END;
        p_after := edited.parent_id;
    END IF;
    IF p_place = 'after' THEN
        SELECT id, depth, segment_id, open_calls
        INTO above_id, above_depth, above_segment, above_opens FROM faceplate.messages
        WHERE id = p_after AND conversation_id = p_conversation AND user_id = p_user;
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'FP404', MESSAGE = 'message',
                DETAIL = p_after::text;
        END IF;
    ELSIF p_place = 'leaf' THEN
        SELECT id, depth, segment_id, open_calls
        INTO above_id, above_depth, above_segment, above_opens FROM (
            (SELECT id, depth, segment_id, open_calls FROM faceplate.messages
             WHERE id = conv.active_leaf_id AND conversation_id = p_conversation
               AND user_id = p_user)
            UNION ALL
            (SELECT id, depth, segment_id, open_calls FROM faceplate.messages
             WHERE conversation_id = p_conversation AND user_id = p_user
             ORDER BY created_at DESC, id DESC LIMIT 1)
            LIMIT 1) AS leaf;
    END IF;
    IF above_id IS NOT NULL THEN
        IF above_depth IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = 'FP503', MESSAGE = 'unplaced';
        END IF;
        continued := EXISTS (SELECT 1 FROM faceplate.messages c
            WHERE c.segment_id = above_segment AND c.depth = above_depth + 1
              AND c.user_id = p_user);
    END IF;

    -- Tool calls pair along the path: a result answers a call open on it, and a call may
    -- not reuse the id of one still open there.
    opens := coalesce(above_opens, '{}');
    FOR k IN 1 .. turn_size LOOP
        FOR a_call IN SELECT jsonb_array_elements_text(p_answers[k]) LOOP
            maker := opens ->> a_call;
            IF maker IS NULL THEN
                RAISE EXCEPTION USING ERRCODE = 'FP422', MESSAGE = 'tool_results',
                    DETAIL = a_call;
            END IF;
            opens := opens - a_call;
            j := array_position(made_by, maker::uuid);
            IF j IS NULL THEN  -- made above the turn
                answered_makers := answered_makers || maker::uuid;
                answered_calls := answered_calls || a_call;
                answered_by := answered_by || p_ids[k];
            ELSE
                FOR j IN 1 .. cardinality(made_calls) LOOP
                    IF made_calls[j] = a_call AND made_by[j] = maker::uuid THEN
                        made_answer[j] := p_ids[k];
                    END IF;
                END LOOP;
            END IF;
        END LOOP;
        FOR a_call IN SELECT jsonb_array_elements_text(p_calls[k]) LOOP
            IF opens ? a_call THEN
                RAISE EXCEPTION USING ERRCODE = 'FP422', MESSAGE = 'tool_calls', DETAIL = a_call;
            END IF;
            opens := opens || jsonb_build_object(a_call, p_ids[k]);
            made_calls := made_calls || a_call;
            made_by := made_by || p_ids[k];
            made_answer := made_answer || NULL::uuid;
        END LOOP;
        IF k > 1 THEN  -- the turn goes on in the segment its first message chose
            parents := parents || p_ids[k - 1];
            depths := depths || depths[k - 1] + 1;
            segments := segments || segments[k - 1];
            forks := forks || NULL::uuid;
        ELSIF above_id IS NULL THEN  -- a root
            parents := parents || NULL::uuid;
            depths := depths || 0;
            segments := segments || p_ids[1];
            forks := forks || NULL::uuid;
        ELSE  -- a parent with a reply already starts a segment of the turn's own
            parents := parents || above_id;
            depths := depths || above_depth + 1;
            segments := segments || CASE WHEN continued THEN p_ids[1] ELSE above_segment END;
            forks := forks || CASE WHEN continued THEN above_segment END;
        END IF;
        open_after := open_after || CASE WHEN opens = '{}' THEN NULL ELSE opens END;
    END LOOP;
    IF p_check THEN
        RETURN;
    END IF;

    -- After the previous activity, one microsecond apart, the last one now.
    last_at := greatest(p_at, conv.updated_at + turn_size * interval '1 microsecond');
    RETURN QUERY WITH stored AS (
        INSERT INTO faceplate.messages (id, conversation_id, parent_id, user_id, role, content,
            tool_calls, tool_results, depth, segment_id, fork_segment_id, open_calls, model,
            provider, finish_reason, usage, cost, thinking, metadata, created_at, turn_id,
            status, failure)
        SELECT m.id, p_conversation, m.parent_id, p_user, m.role, m.content, m.tool_calls,
               m.tool_results, m.depth, m.segment_id, m.fork_segment_id, m.open_calls,
               m.model, m.provider, m.finish_reason, m.usage,
               -- the cost in micro-units, at the price in force for the model (per million)
               CASE WHEN m.usage IS NOT NULL THEN (SELECT round((
                   (m.usage->>'input_tokens')::numeric * p.input
                   + (m.usage->>'cached_input_tokens')::numeric * p.cached_input
                   + (m.usage->>'cache_write_tokens')::numeric * p.cache_write
                   + (m.usage->>'output_tokens')::numeric * p.output) / 1000000)::bigint
                   FROM faceplate.model_prices p
                   WHERE p.provider = coalesce(m.provider, '') AND p.model = m.model
                     AND p.starts_at <= last_at
                   ORDER BY p.starts_at DESC LIMIT 1) END,
               m.thinking, m.metadata,
               last_at - (turn_size - m.ord) * interval '1 microsecond', p_turn, m.status, NULL
        FROM unnest(p_ids, parents, p_roles, p_contents, p_tool_calls, p_tool_results, depths,
                    segments, forks, open_after, p_models, p_providers, p_finish_reasons,
                    p_usages, p_thinking, p_metadata, p_statuses)
             WITH ORDINALITY AS m(id, parent_id, role, content, tool_calls, tool_results,
                                  depth, segment_id, fork_segment_id, open_calls, model,
                                  provider, finish_reason, usage, thinking, metadata, status, ord)
        RETURNING *
    ), spent AS (  -- the answers' usage, by model: rolled up by conversation and by day
        SELECT coalesce(s.provider, '') AS provider, s.model, count(*) AS answers,
               sum((s.usage->>'input_tokens')::bigint) AS input_tokens,
               sum((s.usage->>'cached_input_tokens')::bigint) AS cached_input_tokens,
               sum((s.usage->>'cache_write_tokens')::bigint) AS cache_write_tokens,
               sum((s.usage->>'output_tokens')::bigint) AS output_tokens,
               sum((s.usage->>'reasoning_tokens')::bigint) AS reasoning_tokens,
               coalesce(sum(s.cost), 0) AS cost, count(*) FILTER (WHERE s.cost IS NULL) AS unpriced
        FROM stored s WHERE s.usage IS NOT NULL AND s.model IS NOT NULL
        GROUP BY 1, 2
    ), by_conversation AS (
        INSERT INTO faceplate.usage_rollups AS r (id, user_id, day, conversation_id, provider, model,
            answers, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
            reasoning_tokens, cost, unpriced)
        SELECT g.id, p_user, (last_at AT TIME ZONE 'UTC')::date, p_conversation, g.provider, g.model,
               n.answers, n.input_tokens, n.cached_input_tokens, n.cache_write_tokens,
               n.output_tokens, n.reasoning_tokens, n.cost, n.unpriced
        FROM unnest(p_usage_keys, p_usage_providers, p_usage_models) AS g(id, provider, model)
        JOIN spent n ON n.provider = g.provider AND n.model = g.model
        ON CONFLICT (user_id, day, conversation_id, provider, model) DO UPDATE SET
            answers = r.answers + EXCLUDED.answers,
            input_tokens = r.input_tokens + EXCLUDED.input_tokens,
            cached_input_tokens = r.cached_input_tokens + EXCLUDED.cached_input_tokens,
            cache_write_tokens = r.cache_write_tokens + EXCLUDED.cache_write_tokens,
            output_tokens = r.output_tokens + EXCLUDED.output_tokens,
            reasoning_tokens = r.reasoning_tokens + EXCLUDED.reasoning_tokens,
            cost = r.cost + EXCLUDED.cost, unpriced = r.unpriced + EXCLUDED.unpriced
    ), by_day AS (
        INSERT INTO faceplate.usage_days AS r (id, user_id, day, provider, model,
            answers, input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
            reasoning_tokens, cost, unpriced)
        SELECT g.id, p_user, (last_at AT TIME ZONE 'UTC')::date, g.provider, g.model,
               n.answers, n.input_tokens, n.cached_input_tokens, n.cache_write_tokens,
               n.output_tokens, n.reasoning_tokens, n.cost, n.unpriced
        FROM unnest(p_day_keys, p_usage_providers, p_usage_models) AS g(id, provider, model)
        JOIN spent n ON n.provider = g.provider AND n.model = g.model
        ON CONFLICT (user_id, day, provider, model) DO UPDATE SET
            answers = r.answers + EXCLUDED.answers,
            input_tokens = r.input_tokens + EXCLUDED.input_tokens,
            cached_input_tokens = r.cached_input_tokens + EXCLUDED.cached_input_tokens,
            cache_write_tokens = r.cache_write_tokens + EXCLUDED.cache_write_tokens,
            output_tokens = r.output_tokens + EXCLUDED.output_tokens,
            reasoning_tokens = r.reasoning_tokens + EXCLUDED.reasoning_tokens,
            cost = r.cost + EXCLUDED.cost, unpriced = r.unpriced + EXCLUDED.unpriced
    ), settled AS (  -- the hold the turn settles
        DELETE FROM faceplate.holds WHERE id = p_hold AND user_id = p_user
    )
    SELECT * FROM stored ORDER BY created_at, id;

    IF cardinality(made_calls) > 0 THEN
        INSERT INTO faceplate.tool_calls
            (id, conversation_id, user_id, call_id, message_id, result_message_id, created_at)
        SELECT c.id, p_conversation, p_user, c.call_id, c.message_id, c.result_message_id,
               last_at
        FROM unnest(p_call_keys[1:cardinality(made_calls)], made_calls, made_by, made_answer)
             AS c(id, call_id, message_id, result_message_id);
    END IF;
    IF cardinality(answered_calls) > 0 THEN
        UPDATE faceplate.tool_calls AS t SET result_message_id = a.result_message_id
        FROM unnest(answered_makers, answered_calls, answered_by)
             AS a(message_id, call_id, result_message_id)
        WHERE t.message_id = a.message_id AND t.call_id = a.call_id AND t.user_id = p_user
          AND t.result_message_id IS NULL;
    END IF;
    UPDATE faceplate.conversations
    SET updated_at = last_at, active_leaf_id = p_ids[turn_size],
        open_calls = (SELECT count(*) FROM jsonb_object_keys(opens)),
        message_count = counted + turn_size
    WHERE id = p_conversation AND user_id = p_user;
END
$fn$;

-- A user's row locked, then their rows of a table counted, no further than the limit, in a
-- statement that sees what the lock waited for: a create that counts against a limit is
-- one statement (INSERT ... WHERE faceplate.below_limit(...)). NULL: no such user.
CREATE OR REPLACE FUNCTION "faceplate"."below_limit"(p_table TEXT, p_user UUID, p_limit BIGINT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $fn$
DECLARE
    kept BIGINT;
BEGIN
    PERFORM 1 FROM faceplate.users WHERE id = p_user FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    EXECUTE format(
        'SELECT count(*) FROM (SELECT 1 FROM faceplate.%I WHERE user_id = $1 LIMIT $2) AS k',
        p_table) INTO kept USING p_user, p_limit;
    RETURN kept < p_limit;
END
$fn$;

-- reserve: the user's row locked, then the hold taken (store.usage.RESERVE_SQL, verbatim,
-- its parameters the function's). No such user: no row.
CREATE OR REPLACE FUNCTION "faceplate"."reserve"(
    UUID, UUID, BIGINT, TIMESTAMPTZ, TIMESTAMPTZ, DATE, DATE
) RETURNS TABLE (id UUID, user_id UUID, amount BIGINT, expires_at TIMESTAMPTZ,
                 created_at TIMESTAMPTZ, period TEXT, spend_limit BIGINT, spent NUMERIC,
                 held NUMERIC)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM faceplate.users WHERE faceplate.users.id = $1 FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY WITH before AS (
        SELECT id, user_id, amount, expires_at, created_at FROM faceplate.holds WHERE id = $2 AND user_id = $1
    ), spent AS (
        SELECT b.period, b.spend_limit, coalesce((
            SELECT sum(r.cost) FROM faceplate.usage_days r
            WHERE r.user_id = $1
              AND r.day >= CASE b.period WHEN 'day' THEN $6::date ELSE $7::date END
        ), 0) AS spent
        FROM faceplate.budgets b WHERE b.user_id = $1
    ), held AS (
        SELECT coalesce(sum(amount), 0) AS held FROM faceplate.holds
        WHERE user_id = $1 AND expires_at > $4
    ), refused AS (
        SELECT spent.*, held.held FROM spent, held
        WHERE spent + held + $3 > spend_limit AND NOT EXISTS (SELECT 1 FROM before)
    ), taken AS (
        INSERT INTO faceplate.holds (id, user_id, amount, expires_at, created_at)
        SELECT $2, $1, $3, $5, $4
        WHERE NOT EXISTS (SELECT 1 FROM refused) AND NOT EXISTS (SELECT 1 FROM before)
        RETURNING id, user_id, amount, expires_at, created_at
    )
    SELECT taken.*, NULL AS period, NULL::bigint AS spend_limit, NULL::bigint AS spent,
           NULL::bigint AS held FROM taken
    UNION ALL
    SELECT before.*, NULL, NULL, NULL, NULL FROM before
    UNION ALL
    SELECT NULL::uuid, NULL::uuid, NULL::bigint, NULL::timestamptz, NULL::timestamptz, period, spend_limit, spent, held FROM refused;
END
$fn$;

-- switch_branch: the conversation's row locked, then the newest leaf under the message
-- (store.history.TIPS_SQL, verbatim) made the active leaf; it is returned. FP404 names what
-- is not the user's.
CREATE OR REPLACE FUNCTION "faceplate"."switch_branch"(UUID, UUID, UUID)
RETURNS UUID LANGUAGE plpgsql AS $fn$
DECLARE
    tip RECORD;
BEGIN
    PERFORM 1 FROM faceplate.conversations WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'FP404', MESSAGE = 'conversation', DETAIL = $1::text;
    END IF;
    SELECT tips.id, tips.open_calls INTO tip FROM (WITH RECURSIVE subtree(segment_id, from_depth) AS (
        SELECT segment_id, depth FROM faceplate.messages
        WHERE id = $3 AND conversation_id = $1 AND user_id = $2
      UNION ALL
        -- Each segment found probes the index of forks (OFFSET 0 keeps the subquery a
        -- subquery: pulled up, a merge join would sort the segments).
        SELECT h.id, h.depth FROM subtree s, LATERAL (
            SELECT id, depth FROM faceplate.messages
            WHERE fork_segment_id = s.segment_id AND depth > s.from_depth AND user_id = $2
            OFFSET 0
        ) h
    )
    SELECT t.id, t.created_at, t.open_calls FROM subtree, LATERAL (
        SELECT id, created_at, open_calls FROM faceplate.messages
        WHERE segment_id = subtree.segment_id AND user_id = $2 ORDER BY depth DESC LIMIT 1
    ) t
    ) AS tips ORDER BY tips.created_at DESC, tips.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'FP404', MESSAGE = 'message', DETAIL = $3::text;
    END IF;
    UPDATE faceplate.conversations
    SET active_leaf_id = tip.id,
        open_calls = (SELECT count(*) FROM jsonb_object_keys(coalesce(tip.open_calls, '{}')))
    WHERE id = $1 AND user_id = $2;
    RETURN tip.id;
END
$fn$;
"""


async def upgrade(db: BaseDBAsyncClient) -> str:
    return briefly(UPGRADE)


async def downgrade(db: BaseDBAsyncClient) -> str:
    return briefly(
        ";\n".join(
            f'DROP FUNCTION IF EXISTS "faceplate"."{name}"'
            for name in ("append_turn", "below_limit", "reserve", "switch_branch")
        )
    )


MODELS_STATE = (
    "eJztXetz2ziS/1dQ+jJ2lZJK5NjJOrdbZXs8E98m9lTs3OzDVwxMQRbPFMnlw4pub/736w"
    "b4fgkU9aBofJiJRbIB8NcE0C90/3sws8fM9F6fMdfQp4NT8u+BRWcM/sjdGZIBdZzkOl7w"
    "6YPJH6XJMw+e71Ldh6sTanoMLo2Zp7uG4xu2BVetwDTxoq3Dg4b1mFwKLONfAdN8+5H5U+"
    "bCjX/+N1w2rDH7wbzop/OkTQxmjjNDNcbYN7+u+QuHX7uy/F/4g9jbg6bbZjCzkoedhT+1"
    "rfhpw/Lx6iOzmEt9hs37boDDx9GF7xm9kRhp8ogYYopmzCY0MP3U6z5oybWBpl3f3Gm3l3"
    "eaNmgAkG5bCC4M1eNv/4hDeDV6++79uw9HJ+8+wCN8mPGV93+IrhNgBCGH5/pu8Ae/T30q"
    "nuAYJ6A+M9fDIRWQvZhStxzaFEkOXxh4Ht8IzTqAowsJwslXtQ2IZ/SHZjLr0cepMTo+rg"
    "H0v86+Xnw6+3oATx1ilzZMAzE7rsNbI3EPUU9QxknVAOHw8R6i+/bNGwl04alKdPm9LLrQ"
    "o8/E1M4i/J+3N9flCKdIciiPDd0n/0dMwyusFXuAdg24CAa2PPO8f5lpTA++nP0tD/fF55"
    "tzDo7t+Y8ub4U3cA7Q4wI9eUqtJnjhgepPc+qOtcIde2RXPVu8NRvN8leoRR85kPjG+H7h"
    "lnUejGEPKdvMwju1m9kDf8aT2s0GZyTwmPuTRzyHWWPAHz6PmeETh7lkTBfEdvmfM/iopk"
    "NiWGRm6K79Cj4K33s9yDGufWvL99B/DxIQB9ibFu6HsIXb4wE+zX44wFdcyGOoIxgDY/xD"
    "CwHSOHVIhwCG02TAmwDc+I8/Gm3a375d/dxg1w5gPK+RZpX5uHzzHvzHJLB0ZDXBnk5e4/"
    "/f/2Ww/RnKJ+PRyWF+4vF3r9/GEwbJ7jEJRZe3mUE4IfhkIAff7i4O8/NJZtv5ILHpfKjc"
    "cj7kNxw+X4tgnxuPlfIon+taTLhcMN0h5qn1hq9EyaciLa/+aTQ6Ono/enN08uH43fv3xx"
    "/exIJr8VadBHt+9SsKsRnORFJtSgJwGcKm0RKu/Ax3fGPGKgSBDGVeFghJX0d/dIdJ8vIX"
    "vOD4xjIX4dpXg/Xd1ZfL27uzL79lxISfz+4u8c6IX13krh6c5KZN3Aj5/eruE8Gf5B8315"
    "f5RS1+7u4fAxwTDXxbs+y5RsepZTq6GqGW4XrgjFfkepZScb0rXI8wSrE9HH2K64k4IytW"
    "pCWgNcoW3ZX1l0gSBQk+i24R2l9slxmP1l/ZggN8BeOgls5KAA1F8G9hM/sJaXI1WYlcOo"
    "/F2/QHBe8Ob8x8IW6d3V6c/Xwp5OHtq0QXtoXGGRq+dkExytwf1qlHeupJSSXpxmJEn1Kf"
    "+FNcfIg9IZRrOqfwr+8yhldmoHLA2L0h8RizCDVtUH9AiSEOBfnOtwnKHNCN8cyIyeikqD"
    "1trpvV1arsdmIsVbBQv8ogLLQsPiDDX9ToWbgQlo9hlV5tEEorOyO/f7r8eknuB/iUplPT"
    "9O4H5C/kTd0o2iOBhhdWrWrGo4Lf3pT3BKO6uiXX3z5/JmfXP8Mt6upT4Gz23mZHHXW55n"
    "Hf3G1h7I5hWS1HLppoNO6ktVXHzVtYYdhVg5vY5jiBdZ0Ii5blp3UKm9VQWYmdVbikVKTm"
    "o2EzB6REt3pNS8YTPXpfAKSk28GE6swxYWCvPYYTR4NdIpgxyz8IWTck+F8y+CHxDd9kh4"
    "P6EYvW0sMFBTQ3YhRxDybU88WnQf4Me87ksHaiKBPZrk1knPtNLGQxwUoGshDErki2OSeX"
    "lBtmVOOGGRXdMEKe0lCeaqifFSlbfN/bAX6A0qQJS0Aka6LYGUuY3tSeWx+JZVvslF+12J"
    "wlz8qZ0tpMg4QrifRW5EiltTJLtD1j5ZumTLBtk/BxEs83TJPMqeGjR2Viu6AOACrQDIFl"
    "C3kQyvvIoEa2zJa+94QVHvNxcCWMqHZUpmlaeSq3NC24Ljkkjms/GyDzgAK2AHl+psGFmQ"
    "N78Ex3YIt1ccNtPQvW5tFMM2nGfIp7SBMmpWn2gUl8NjiOaehc6PnJI7BcdZUdfMUEsIMy"
    "D3/lClagW2kR29akCc0VsIjZLgOp9Yk5PnlY8GWLX4v2Esv2CX8lNiYL4ePe/jqW0lObGt"
    "5zpGuwvHdMztpfQ3vRvxJr9U25nCFUPO4yj336CCJ3I5EkRbIPmx2aemHIHjlIK/oavzS1"
    "QU3EVXbGJUYcODBeMsRg21thxpaSizwAOZhRq4Jfabocxx6AcFPCfHylSbgHd6WMQWTXGd"
    "/94sGHUQhkSj0Q4T2PSQYk1MUW3Nx8znDp/CoXaXD97cv55deDt5xl8JDhVwQgZK2ZTdbK"
    "LOXeLJbQnOAPDp94BvDrIylyj99dP+f2bplVASrV0ul+hiqoAJWXyHWZAJWMH0nWBJoh6r"
    "z1cyumfBXyo0J+9ijkp7gErAHUX+KG9nLeL0U1s+xlcIURpByn5bFUKdO6Hbg6K1Fjz0PC"
    "X/76lZlx4FM52OnwqFveYI++5/yJqawmvD7g7uhjX1GLzLTtwPqS+AD7CJI3pW5biG6xjb"
    "4ChD7LKodsE5DuoJ0LaKZPOG0rODZc3ZeEyCZ7gFygrJbahZbHy/4+ZS4j1CIGWrjQbJJu"
    "i+gwLjJx7ZkIIHBcexzoPjw/5sGrxhgvu9CuZ8NfPB62EFewiT7uLQ+p2A9sMGmXPgIfCS"
    "hJHvqoptB/VUxtJgrQiyEWf+Hl/66Lus3g3TwWL2IRv8gZqc4zdjFYq+8aH3fBpz9M4YMX"
    "ov621Opk8smGxCUUnT40iucDHjHaRDdpMIbmMJ5pzh4CY0jiuFE5pLNxc0cjibC5o1Fl1B"
    "zeKuNB6ae+jA3lH3u3OJHeRlYBfCPZOJQxvhr9/TTLyhjj85JDg62lhLT7W8xujYp67qhZ"
    "SztY/uTafkK81BxW8qF19Xwh2nmW6E+hKUhSeYrMUDLpWOBZjOqlGRFqSOYGnu4rSla43X"
    "s+ic7XpWM9eJQdfSzL0rKZThqeMiz5IkT8jVQSl1KAJc8giV6GeV/kCgoYNPWI9MuPNyq1"
    "S6ldvVe7Xl5UQAnsYYwz+1dATVwe8ey2AcuEi0tu4fS5ChZS+onST5R+0mLVTeQZWVQTCg"
    "WmUvZ2qOzlPuM1INwvJ30e2GTidkl5/oWxMbY0KNGa43vDOnV5kn5KPmkpcBh1UJ4oJzqs"
    "fGBbTGQZFRcOh1xf5V5AZjsmI/OpTVz2bLA5oZY3hw+1JpPpWrtoqCFHJ/0kVeIIRC11Fl"
    "sy2c4KeUDi3lymh/mG5ToTiBbV76bdxs00SyjUpI8oflDp9J3U6V+aXMmVzXByw9KUl022"
    "JW8mMy+L9u2MmmblseWEqsvnld+SwBmSV2/J2J5bw/hoMklGL30o+Wj0/iQ+j4w/6o4i33"
    "45+/y5ePgKdEIvNBTInmFMkWw//3tqWXkIDBMw815jf00XloE3xRgcGAtICkSf2h6zolPj"
    "0aLcvWOMuj2blWbrv4NNo2odikn6kIunzmhx+be7esRjm8Xnm+tfo8fzbFD+bmVPenlm5r"
    "5zXebwWUobaiDoZam6L+Op82f7Bqc6f7bN82cp20ZLVPt3WiUPbHbt65TFUBz+K7MXxscC"
    "a6yF/BnpkBrsYUwck+oMaw7RuEiRMWYP1BXx/yJfSsY9OyRo5xOdEUb1aZmZcL2NVx4qwJ"
    "scqfwRAmWD2q0Niv9bALo6wDl6vsuxzfLS5hYq4CkNr2eyvtLwXiLXZTQ8pYwoZWTXMnOL"
    "+jfljqk1JiDYW3vwdo9Df7JzonD6eq1iweV0ObXiC4jvC+Ixn1AU9UVabiv09pMHhkED4t"
    "QxZr0NLN8wieETI8qEi6UfH41ndGvASxc1iw20v3oVIPbDMWCdkayTwVFUvvPdbwZ1egud"
    "laedrqv0mdDsS5HPoTjOQk2TK+XMA6FP/oDsTgp+puZaQ9E3S7k/ou+AEl2kCiVz233inM"
    "I1hJjU8RhPYts+vqHjsrAKle+/CiSl+CoVSKlA+6sCbVKs/3LxGyhDE6P0cG5ys1bAxxot"
    "On9O2nsQ2vOBymJC6IsK13CZHK340DkRlV+G4sAXDo4ItmNJTu4DwHZq4ozX177yIeybLK"
    "58CBv2IcQrg2wQZUKx/RjK3WyqGwmIZBYCUbKI1FZ1SFFtsaZDtLRsF/Y1FmrwGAj+voY/"
    "G9Zhy9LtcdQwf4eoXKF4r47WYgtBf2KLpgmy8oQdDhsewCgjbjzYPyStLptOSyYADMeTN3"
    "5Z1F3UAh/S5RemhS8mTzdwP7u8fTU6Pnn168UXPL0AysyQ6IYD0qDPfmC5YCp5lKFu5Qq/"
    "9HhaAObnV9dnX/9eHtB9XjIzzv9+d3lWzh90epSeua0zUBZpO1zgU0wKEP3D4Q5hxaKw7x"
    "EYpE0M/yN5cxpdemCgC7DoSck1bTf2S2W3qmZIj+1WKmCjZ1xXARvKWtkBSLcTsOEBoprR"
    "Nlbj5izwp7fQ1FWfkns0i9VIMH10aamDOaS7sdidDf+ThPXXqLVOSNjrAbWJ8Ts8rFBm+k"
    "7OMdQYvlMFPpZbvYEtoDaMmUh7kcsq57uMnSaB7kKjwNAUzzNwLfIxawZzzAWGoCRl7OGZ"
    "gvV7Q/3cW/iT3/aAm6/J1WwWcChOCRsbIqGHC3fDbwl/8/z+lHjGg4kZ/u+te+uMONSfpk"
    "JqqEfgJqMuiOWPeGzXO01lBYHhQ0sB83iFAYe6jA8xfJQccJsEsO7e+h5eg2Xru4hQsODl"
    "yPcxc/zp90MSWCa0KfKJ8GYINVGIWPBCkzTqKczaaVhkPjX06b2lU49hENAUnuUvE3YN6O"
    "KQ7LlFDtJ946uJNNZDXhnhOygZT1rmAd+7t/Kvcvia3NrQfIQODo3wgU3YnPCJRmC2AiSe"
    "Ti0P094dJI0OCX/Nw+G9NbXn7BnTqFBrQR6ARJ8Kdz/nPb7sa3KXpDzwxGcyNZAdC+geej"
    "AZfWbcAXJvPdj20xNjDmdv4GffdVh8O7iE2dNFxZLvh6cItm9QE15B7Kn4LcH739mubxse"
    "plz4/toGQe7g8DuM+UmMdbam3KdZ7UcuUUkEjBZiwqe8VDaUsuSrgSub9jTuF2kqOyW/f7"
    "r8eknuo5bvB+TqlsCqGla/yg0p4YxYb+EjkUp7Ew8makCQSkMhPu+w24bvL2hbwd6wR9e2"
    "/epctzHk8UuFoJcBnpsPCerNR4VNSYwq12P9B1HS/yAucfDag2VYn2qwnQTY2kEoBg5JDm"
    "K4EE8sftPHFWxQ+Sai3fSr/Hp1nXsbVKsOJtTzhe5K/gwL0+QwfkvXNhm+2jU5+IlvXkPy"
    "U7JpHRb40BBr2D4ZndXlPopHAj36gQdj+TP5KSb7SQVf7trhuzO9eUv25y7kIsZZWO5Yub"
    "SCWUF3zubQCWm77GAfeAvPZ7Mhl4+HiVQcScOreFvensg43/MGp5Tv/aTE9e43TokTk3TY"
    "t7WOFWQjKXHqivBVO4GzVK1cwPuD/0Y8uxxJoXg250CKTvFgdR7EYmwW/Eq/Yfx8l1PTxV"
    "owfbCfuZ4PMpAwNYjBS3sER2/fvX/34ejkXewIjK/U+f/KQk7SyoOsKJOl2g9pZmK4nh+b"
    "ekKDSvgi25RqSnQ2WdhLSLuPfWzEAhEyw4PTMMZHWLhgMsT2I6z6uU2WJDakJst9lmoPFv"
    "tBYmIlcyqMqPxQYmhlTa9Gp/w5LI/36i8klbGnezsFN5WXqwnlfIsJ+iCb5ioSSsXejmpi"
    "b0fF2FvHtZ+NcZkjsxrjNE3/YD55J4HyybtKkPFWblMwLMObaiLzaxOgC4QK7eVoB+X5x6"
    "qX+phgP1b5J2Z53B2EdlZLX2AWZHdGYZgiJrt7i7huew1PMkcUnZb308eYRYVy4riGyDMG"
    "O6/e6WPMWCj9qTRNeI0KnKLZi7mCvkmUB9A9HY6dPJi2/tTRqPMZ8ykapZswJU2zL0yhjm"
    "Maesr03E12qFDZ6kVrP4MmZUJlIz97geU19boSku6r7OEEZNaYhwcIVZAfUQ3DaIytWkyE"
    "D7SJVJxQdFgcHsT+XIwA8pnrBo4v0v5MqIFnBg6oCI/CipTf4Z1cX+O/vx9+DOta6PbM4e"
    "GSK8jV63cV4bADt0SyrnYVpUi6zKr5dMFNIyJaLWLPd/zjQOheh98PW8+JzRRYeGEldrYS"
    "GJCyjqRjj2SBzRB1fj/YbQy9qt+4Skz9SvUbk1i4liDLJ2bv5he8FN7MBM4Ae31Dzi7urk"
    "DXkDq2IGKXW55aSFdo7Mn3nA0Egl3XKDsS3wSk3n2T2V1+GlhPLRH6isLNBTbU1w+J+760"
    "GR2XyKhNkLqzbfMC2uoOTkJniyPIIjc3V9rwfeMsio2EVBk0RT7T0hQhm0F0i0owd5hGWI"
    "oXRQNhQ/V3beexhMJYDbT8gSw+1TuD9fbPYuE/v6ElflB2HCu5O6w9kYWXNG7QlzyV9TtO"
    "RyoszgQ9GCLWgV8S53ysU5LyGmCYCqYP0wPXRUeOKFlsmCYGTws/TzEh2aY6aXhAJu0Cjl"
    "3u3Ighk4VYnAtJAawJUs6A8oMaKiR+tyHxO4kT6JoYsmnX9ZajXboN70bCXZIlqoByvUcn"
    "Q7g/Dp1B5IsWuwSmag6T0cfHWp1oL3xZ+ZsNywkaRiXEJJ1Or57e4GHfofqU5yyCoYf7va"
    "Q7YTfZifhwtRWYk6fcGx6lWSPOavOpyt+n86zS5q7hl+nbyziVEO4no3D4PkMRuvucsgO/"
    "8XRKaPaGP2LIIYOGRHjuuEZv6WYwlo2OU2nZuiYW9ivWpOANq/YkNLIkNbSS8Kw9F6bBuJ"
    "2lYCZJ3x7W2UlseMGppvMnJQ0ld1PDy8WAuezRQDKuJc8Nf4qZZPgYCLZvu8b/0jD5usiz"
    "zs2emDkTDRoFK8nae7i3ossuGxsu033y7esVD8MVr06iODx+zWWBh2khFwQTqCxqk7/nzC"
    "zK0LFbQ4dp20+B00QJTyjWo4UvB3qFjfL20xmmnEVzYNmXPCTpONLdW0LEGJtwIaHosi2E"
    "Ox6SehFhSTjQ0FeBffTm3QcpE8m7DzU2EryZBd/wvKAZ+AlFh+O8VrZDbQbl5rnFWyYV75"
    "xct+FM4o1TiLfLHd41eOtUkg3lBldKTPXH/mKVmFzG0XXkcO1jstGN6nkCsCo1L4ZzmZaX"
    "MLBBZS6hY4Vms3TJLFHEJ8qhPwyVsgcPFgWfEV4tc8G1KUqiRKB24aTQpvq5t3h0jVDfuK"
    "2SzALPh4ZN056vlFOS64mSGRzTeIfKNeeHco53UWfse571KGEcTKNdpIrLzn55G3aWrrul"
    "RnChmmH9EL4yiSWHr2ORl6HLhuutqzEd29R7psVsNf5SOGrCGjq4Zftot63e7Duj6HSoCP"
    "jWzsihsxPDkHWdJz/n61P4Nq351CWVRyp6xGJs7GlhWYqS+VlXP7FAu8UqivGVhnM1CuUj"
    "Lptw1wZehL8B0qlI9YUCDcGX8jD/BX2kxhqm7/qqL/b39GqaPSCdmRS0FM4l2uw4wNbOrM"
    "LM8JjGo9Carp450v1ZPmk0WUhg4TSa08UwCcRrP1P2bgFVpsJqibJfpkJVhq7PXC+Z7MWj"
    "ZLHlq8D0mvQEaSJ1ij53UEB3NGGPaYhqgXC71r5OAluXniC2vLY8M58Lp9rLb3Z5WoL0lM"
    "2cm4cRhDVkmgS7lX3vRV5E5yJlsxdc/HYRt7SPX/hSNhTmuETdxfYuprCuYpWPKSm7uMzJ"
    "lK71KONmwudfGVYiWJ/yZD6//fXiEgsyG/ASbuz7mdjwGMbl8fzgPrAeVKYp9aa8TseYx/"
    "sVD11uqpOGHqQsY6W9SBGgqRlU4UfKFT5K2aqadyb8aspppZxWXZe81yOS8Xmu4Sxv4gvJ"
    "Uu1H/ChP7I/jlnRLbThUVMXR9csDtU2fdmb/jjxRyuvUGSatYw3vuLVEmUb7bySTMY1206"
    "TT3Wm9ulGnzpjQPBliG3NCN9DdiEFha+cYRbKrErNDnAWr2uCQSj0oYWmwSlKwiaRdova8"
    "OMsTHQw/yOZ0FvYCHkgKgsbUnpNZoBfKwm2kk3vLxzwfWHieeqKSvPA8xjEdgoLoNlz3eK"
    "l403heyUTRrm55yI92Zcsr7QohnE2X1wyVMpe/aJtCJyonq5zfG4X3JdR/cBl04fE9QSS+"
    "9D7yQoE+Rh7TJwZf9fN2P2qxBTUBPaHo/ifMQZ/Czmsy2FtNe44RdLbYdwF5y8a9FTf2ML"
    "xum8iHlqMC8pVh9QlBd0Pq9SlFaQ4+7LiqiSh/maRS3n45XhSqVox7y1DuT9hbIlxGkYkP"
    "jPrEMQOPC544Wjvwo4InQkQlzJJO1rMnBgBl91F2n3WlACooNMWvpWlIhHTy/E7qMMvtFx"
    "kVbtPREKlE+1VWiTgNf71pYqElu5VMJIRjMJ0XP48rSxHU/Ieo0eMZswksu9OkytdH8sQc"
    "P5UOVNQ/gtW3JO/02lsvMSz8M/1FY9CBSo3UKe2+bGOqlBJL96JuJQ9MCYmhW1t8ow9sgq"
    "cxZQsBrFtMxFlVBLr6nEr0fC+c2ds+jNI1o2B34W/hcKmSUzZYeqqjwK5fVtmao+UWVktW"
    "JtKIG7XSjIePSMsxKOy/skHaJ6ZhPaGhhGaMrqehI2QO/wSOuB/iNsQCm5GbpEyKWWvbDZ"
    "0j/MysCPZa4gzhBTIEaBqnqvSGFII2U/b0rFoo54IJO8VW5PvMm5Xl+8nX/1Oxop2U/FJf"
    "bgHuukiwLF3HA8JyIY587B+TP9E8a9k+V2taG6c2FSJmMjppKMukSLrvvKDEs6jjTW0/Mi"
    "imhIutWcyN57KU93Vn/iOSjh/1B2DnwjKbXpjjTa/9Z7++A/3KWlrJgJ5ZS9UB4j5zXeoA"
    "sYp42OR+1veond1aPyJVqqXp41vYzH5CutTukfqglpcyV1XjVzqeLVs1fjf2pTv6OCixLu"
    "HlYZ1tyaeP0pYli4fRAiOZSahIWeUEWCQVZFxrASOaPcAlUADTWJXakVq0VOr5ilYJ/vbK"
    "8dUt8wf/twB09QHD6PleeGSyxwvfSlXlfFtTlfNtsSqn0uWq0d9PqV7pci+R6zK6nFI2lL"
    "Kxa0l4qbJRLQFXGCUiITRnEm5Q2CKthIQyb0/Q32h5izvqlcbZ8etL9AZPOrQOY8fZTAS/"
    "heUmfHtsE9Pw/CGZTw19KpIjJ2f3+IDRlu7awSPWpbDNMkVinS03dEe39BRz/LijWAvJOb"
    "yNndT2zMH5t45xxFlJlBu5k3qUb/hmI0UqJuihJnUspUkd12hSx0VNKj2yAs7VIYQ5sg6n"
    "u+5sIGFmHWvgGc7Qdds9vA7slQdY6Y/KaqC4rqwGymrQLUg3aTXYqAYMQsIFNc1BmRYc3R"
    "vWasLwlKbDY9J+NKQgSMEV15KcNSLNjIidhEejTDa8puLEcL0o7wA/KlbmX9tAD+1T2eB4"
    "JOObE0xlY5xzKnL2IIBkz0Gu66gRPfwG5LqG1mGCaakRNHthQV/ZX5zAp9BPPpVP+zDz1K"
    "hspyaMfumY6lMLKftBv9MLbTFdws6zC4UrTQHjaitNiqTLdhoOL9/+AFe+tRiSWSayhpvR"
    "8YmE4QaeqjTc8HtKme23WiOjzKrA1o2uZS/jcO8g5x9KS8IzOmbiPEcoAW4L+qIM2YADpc"
    "T7sX1nlBGhgQDY0rkENqLeq3DZjYbLlqw4a0C5c0fdN7PMrOVAfPXCs1VG7N0ysxT80oV4"
    "DZW91mf9+oYD+5mWZoCO7w3rrF8Bf7UxXUhbv8I4jTBzZmSHMjCBMgZteMEMY8Md5pJvdx"
    "cEWuaP8K5PyRznCz5CXYN5WCUKH7ALOt6m+rm3+APCfPYQjB+Z7w15WgRyQMmEzYmLZ0Ap"
    "Ps5zSDNYBTHoZJENZT9sGXIyFnyJKhcPIpZKmbgSnmlPTBWZ2rXEXZMySny7RazPjcfq1F"
    "EJUWczjMprryI71J9Go6Oj96M3Rycfjt+9f3/84U2cJqp4qy5f1PnVr+gKH6Y11qJv3LCc"
    "wBepQxqCn6dUHFiNAzrVp2ysrc6IigYUP1rwQ+PJaFdnR4FecWM1btiBv+q8KJAqHqzGA5"
    "D5PNuCca3EhjJqxYkV1yYQqhquRiFFZxEfzAzdtV9BF36zbOtbhj6wHNfQS6M2a+BPU3WX"
    "BZHiODf8KbFswseMifAntqvLVu/cCVdC5bDoBqsIXw51yRrfV4fsaKCstzYGo/Mqh1lak5"
    "b13KZpuuy6XTHEfv3FZoWJogHCMUEP4R1JnWAY1ZxgGBVPMKhITxXpuWvXT0cjPbk9+6tt"
    "moEzqDJ3h7eHyy3eLn9yA0ZvbjjO5g/MmaVpaJhetDJ6N+jn3nrImq+5wbvtqclQ7CiLxG"
    "hh1Q75ogzbO19Hh8qw3TnNQBm2d80BZdjuID+UYbsj3FCG7d3zQBm2u8IJZdhWhm1l2H7B"
    "Af+FI01Dwp6ZRWwLGCYMK5JncNYTlq4cC0uwVI4F5VjYObzKsaAcC/sI6f46Frjdu8SjIL"
    "hR50oI7ZlS9YnhWdsi86lNPPgqPJTY4iyGICfAhmH5hr8g0e5RWoZ4pUaaGflLjPWDzze/"
    "X349uB+wGTXM+8HhoMR8D0PT+H3NtOe1BfSU+X635nvOpSbbbUzQw+32aCSz3cJTldstv5"
    "fdbr3g4X+Y7jdMJZClWg/WO61Rn08dcCyVOuC4JnXAsUodII9+f1MHqDx4feN6hFE+D15B"
    "6q4WEpPPIzzZV2L9a5CT/Jw3sodfQJU8XmmLW2Py9r7CNWFsjF9dO6R+SbXSS5Rsc1weF9"
    "IEJN5IXyGa2rhatQLoky32tT7CM9MdfGJitK0o8eXitwveTl+REjXk24F0i230FaD2VUl6"
    "VokkC05Y/6MNOl5vN7JsWozVMUon4egvTqlg6pZQJQHcfUFr/ZbrP/4fDfgXfg=="
)
