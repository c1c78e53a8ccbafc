"""Search: a user's messages and conversation titles by words, newest first.

PostgreSQL's own full-text search, the only kind every supported server has (the embedded
one has no `pg_trgm` nor `btree_gin`). A row's document (`faceplate.search_document`, made
by the migrations) holds its words ('simple': no stemming, no stop words) and, as tokens no
word can be, its owner, its conversation, and its owner with its 36-hour bucket of time; one
GIN index per table holds the documents. So "this user's rows with these words in this
bucket" is one index lookup led by its rarest token, and a page is found in three steps,
each ending the search when it has the page:

1. the newest buckets (a dozen days before the cursor), one probe each, newest first: a
   frequent word fills the page here;
2. otherwise every older match, unordered, if there are at most `_FEW` of them: a rare or
   absent word ends here, its matches sorted;
3. otherwise the older buckets one by one, newest first, until the page is full.

No step reads the user's history: each reads matches, or a bucket's matches. The costly
case is a word with many matches, all of them old (step 3 then probes each empty bucket in
between, some 30 microseconds each).

Words are what PostgreSQL's parser finds between spaces and punctuation, so text written
without spaces (Chinese, Japanese) is found only by a whole run of it: a word inside a run
is not found.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from faceplate_models.errors import ValidationError
from faceplate_models.store import _cursors as cursors
from faceplate_models.store._rows import Page, fetch, now
from faceplate_models.validation import as_uuid, page_size, text

#: Longest query, in characters; most results per page.
MAX_QUERY: Final = 500
MAX_RESULTS: Final = 100
#: How many older matches step 2 sorts; more go to step 3.
_FEW: Final = 200
#: Buckets (of 2^17 s, about 36 hours) step 1 reads: about 12 days.
_WINDOW: Final = 8
_BUCKET_SECONDS: Final = 131_072
#: Characters of a message its excerpt is cut from, and of an excerpt.
_EXCERPT_SOURCE: Final = 20_000
MAX_EXCERPT: Final = 300
# Private-use characters mark the highlights in the server's excerpt; the caller gets plain
# text and offsets, so an excerpt is never HTML to escape.
_START, _STOP = "\ue000", "\ue001"


@dataclass(frozen=True)
class SearchHit:
    """A message, or a conversation's title, that matched: its conversation, an excerpt
    (plain text) and where the matched words are in it (`highlights`: start and end
    offsets)."""

    conversation_id: uuid.UUID
    conversation_title: str | None
    message_id: uuid.UUID | None  # None: the title matched
    role: str | None
    created_at: datetime
    excerpt: str
    highlights: list[tuple[int, int]] = field(default_factory=list)

    def marked(self, start: str = "**", end: str = "**") -> str:
        """The excerpt with each highlight between `start` and `end` (no escaping: add
        the markup of your choice, after escaping the excerpt's text for it)."""
        parts, at = [], 0
        for begin, finish in self.highlights:
            parts += [self.excerpt[at:begin], start, self.excerpt[begin:finish], end]
            at = finish
        return "".join([*parts, self.excerpt[at:]])


def _part(name: str, source: str, document: str, where: str, at: str, key: str) -> str:
    """The CTEs that find the newest matches (at most $3) of one table, in three steps."""
    bucket = "('''' || query.prefix || b.bucket || '''')::tsquery"
    probe = f"""SELECT {at} AS at, {key} AS id FROM {source}
        WHERE {document} @@ (query.words && coalesce(query.within, {bucket}) && {bucket})
          AND {where}
        ORDER BY {at} DESC, {key} DESC LIMIT $3"""
    return f"""{name}_recent AS MATERIALIZED (
        SELECT h.* FROM query, generate_series($6::bigint, $6 - {_WINDOW}, -1) AS b(bucket),
            LATERAL ({probe}) h
        LIMIT $3
    ), {name}_found AS MATERIALIZED (
        SELECT {at} AS at, {key} AS id FROM query, {source}
        WHERE {document} @@ (query.words && query.scope) AND {where}
          AND faceplate.search_bucket({at}) < $6 - {_WINDOW}
          AND (SELECT count(*) FROM {name}_recent) < $3
        LIMIT {_FEW + 1}
    ), {name}_older AS (
        SELECT h.* FROM query, generate_series($6::bigint - {_WINDOW + 1}, 0, -1) AS b(bucket),
            LATERAL ({probe}) h
        WHERE (SELECT count(*) FROM {name}_found) > {_FEW}
        LIMIT $3
    ), {name} AS (
        SELECT * FROM {name}_recent
        UNION ALL (SELECT * FROM {name}_found WHERE (SELECT count(*) FROM {name}_found) <= {_FEW}
                   ORDER BY at DESC, id DESC LIMIT $3)
        UNION ALL SELECT * FROM {name}_older
    )"""


_MESSAGES = _part(
    "message_hits",
    """faceplate.messages m JOIN faceplate.conversations mc
        ON mc.id = m.conversation_id AND mc.trashed_at IS NULL""",
    "faceplate.search_document(m.user_id, m.conversation_id, m.created_at, m.content)",
    "m.role IN ('user', 'assistant') AND m.user_id = $1 AND (m.created_at, m.id) < ($4, $5)",
    "m.created_at",
    "m.id",
)
_TITLES = _part(
    "title_hits",
    "faceplate.conversations c",
    "faceplate.search_document(c.user_id, c.id, c.created_at, c.title)",
    "c.trashed_at IS NULL AND c.user_id = $1 AND (c.created_at, c.id) < ($4, $5)",
    "c.created_at",
    "c.id",
)
_HEADLINE: Final = (
    f"StartSel={_START}, StopSel={_STOP}, MaxWords=24, MinWords=8, MaxFragments=1, "
    'FragmentDelimiter=" … "'
)
#: $1 user, $2 the query (web-search syntax), $3 the rows wanted, $4 and $5 the cursor's
#: position, $6 the bucket to start from, $7 the scope's token (the user's or the
#: conversation's), $8 the user's bucket prefix.
SEARCH_SQL: Final = f"""WITH query AS MATERIALIZED (
        SELECT websearch_to_tsquery('simple', $2) AS words,
            ('''' || $7::text || '''')::tsquery AS scope, $8::text AS prefix,
            -- A bucket's token names its owner: only a conversation narrows a probe more.
            CASE WHEN $7::text <> left($8::text, -1)
                THEN ('''' || $7::text || '''')::tsquery END AS within
        WHERE numnode(websearch_to_tsquery('simple', $2)) > 0
    ), {_MESSAGES}, {_TITLES}
    SELECT hits.id, hits.at, m.id IS NOT NULL AS in_message, c.id AS conversation_id,
        c.title, m.role,
        ts_headline('simple',
            translate(left(coalesce(m.content, c.title), {_EXCERPT_SOURCE}), '{_START}{_STOP}', ''),
            (SELECT words FROM query), '{_HEADLINE}') AS excerpt
    FROM (
        SELECT at, id FROM message_hits UNION ALL SELECT at, id FROM title_hits
        ORDER BY at DESC, id DESC LIMIT $3
    ) hits
    LEFT JOIN faceplate.messages m ON m.id = hits.id AND m.user_id = $1
    JOIN faceplate.conversations c ON c.id = coalesce(m.conversation_id, hits.id)
    ORDER BY hits.at DESC, hits.id DESC"""


def bucket(at: datetime) -> int:
    """The bucket of time `at` falls in, as `faceplate.search_bucket` counts."""
    return int(at.timestamp() // _BUCKET_SECONDS)


def token(key: uuid.UUID) -> str:
    """The document token of a user or a conversation."""
    return f"~{key.hex}"


def _query(query: object) -> str:
    words = text("query", query, MAX_QUERY, strip=True)
    if not any(char.isalnum() for char in words):
        raise ValidationError("query", "must have a word to search for")
    return words


def _excerpt(raw: str) -> tuple[str, list[tuple[int, int]]]:
    """The server's excerpt as plain text and the offsets of its highlights, cut to
    MAX_EXCERPT characters around the first."""
    plain: list[str] = []
    spans: list[tuple[int, int]] = []
    start = 0
    for char in raw:
        if char == _START:
            start = len(plain)
        elif char == _STOP:
            spans.append((start, len(plain)))
        else:
            plain.append(char)
    excerpt = "".join(plain)
    if len(excerpt) <= MAX_EXCERPT:
        return excerpt, spans
    begin = max(0, min(spans[0][0] - MAX_EXCERPT // 3, len(excerpt) - MAX_EXCERPT) if spans else 0)
    end = begin + MAX_EXCERPT
    kept = [(a - begin, b - begin) for a, b in spans if a >= begin and b <= end]
    return excerpt[begin:end], kept


async def search_messages(
    *,
    user_id: uuid.UUID | str,
    query: str,
    limit: int = 20,
    cursor: str | None = None,
    conversation_id: uuid.UUID | str | None = None,
) -> Page[SearchHit]:
    """The user's messages (their own and the assistant's) and conversation titles that
    match `query`, newest first, `limit` at a time; within one conversation when
    `conversation_id` is given. Conversations in the trash are not searched.

    `query` is web-search syntax: words (all must match), "a phrase", `-word` (must not
    match), `or`. Words match whole words, case-insensitively, with no stemming ("run"
    does not find "running"); text without spaces between words (Chinese, Japanese) is
    found only by a whole run of it. Only the first 100,000 characters of a message are
    searched.
    """
    uid = as_uuid("user_id", user_id)
    words = _query(query)
    size = page_size(limit, MAX_RESULTS)
    cid = None if conversation_id is None else as_uuid("conversation_id", conversation_id)
    scope = (words, cid)
    if cursor is None:
        position = (cursors.LATEST, uuid.UUID(int=0))
        # A day ahead: another server's clock may run ahead of this one's.
        start = bucket(now() + timedelta(days=1))
    else:
        position = cursors.decode("cursor", cursor, cursors.SEARCH, uid, scope)
        start = bucket(position[0])
    rows = await fetch(
        SEARCH_SQL,
        uid,
        words,
        size + 1,
        *position,
        start,
        token(cid or uid),
        f"{token(uid)}.",
        user=uid,
    )
    hits = []
    for row in rows[:size]:
        excerpt, highlights = _excerpt(row["excerpt"] or "")
        hits.append(
            SearchHit(
                conversation_id=row["conversation_id"],
                conversation_title=row["title"],
                message_id=row["id"] if row["in_message"] else None,
                role=row["role"],
                created_at=row["at"],
                excerpt=excerpt,
                highlights=highlights,
            )
        )
    if len(rows) <= size:
        return Page(hits, None)
    last = rows[size - 1]
    return Page(hits, cursors.encode(cursors.SEARCH, uid, scope, last["at"], last["id"]))


__all__ = ["MAX_QUERY", "MAX_RESULTS", "SEARCH_SQL", "SearchHit", "bucket", "search_messages"]
