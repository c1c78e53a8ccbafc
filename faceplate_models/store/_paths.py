"""SQL for walking a conversation's tree, written once for the store's reads and writes.

A message continues its parent's segment (same `segment_id`, next `depth`) unless the parent
already has a continuation; then it heads a segment of its own, whose `fork_segment_id` is
its parent's segment. So a path is a chain of segments, one index range scan on (segment_id,
depth) each, and the tree below a message is the segments that branch from its own below it.
"""

from __future__ import annotations


def leaf(conversation: str, user: str, chosen: str | None = None) -> str:
    """A lateral subquery: the message a path ends at, in the conversation row `conversation`
    (with `id` and `active_leaf_id`): message `chosen` (a parameter), or without one the
    active leaf, or, when that is unset or gone (deleted through the ORM), the newest
    message, which is always a leaf since a reply is newer than what it answers.

    One statement per shape, never a `$n IS NULL` switch: a generic plan cannot fold such a
    switch away, so PostgreSQL would plan the statement again on every call.
    """
    if chosen is not None:
        return f"""(SELECT id, depth, segment_id, open_calls FROM faceplate.messages
        WHERE id = {chosen} AND conversation_id = {conversation}.id AND user_id = {user})"""
    return f"""(
        (SELECT id, depth, segment_id, open_calls FROM faceplate.messages
         WHERE id = {conversation}.active_leaf_id
           AND conversation_id = {conversation}.id AND user_id = {user})
        UNION ALL
        (SELECT id, depth, segment_id, open_calls FROM faceplate.messages
         WHERE conversation_id = {conversation}.id AND user_id = {user}
         ORDER BY created_at DESC, id DESC LIMIT 1)
        LIMIT 1)"""


def subtree(message: str, conversation: str, user: str) -> str:
    """A recursive CTE, `subtree(segment_id, from_depth)`: the segments holding `message` and
    everything below it (its own segment from its depth on, and every segment branching
    below that, found through the small index of segments' first messages)."""
    return f"""subtree(segment_id, from_depth) AS (
        SELECT segment_id, depth FROM faceplate.messages
        WHERE id = {message} AND conversation_id = {conversation} AND user_id = {user}
      UNION ALL
        -- Each segment found probes the index of forks (OFFSET 0 keeps the subquery a
        -- subquery: pulled up, a merge join would sort the segments).
        SELECT h.id, h.depth FROM subtree s, LATERAL (
            SELECT id, depth FROM faceplate.messages
            WHERE fork_segment_id = s.segment_id AND depth > s.from_depth AND user_id = {user}
            OFFSET 0
        ) h
    )"""


__all__ = ["leaf", "subtree"]
