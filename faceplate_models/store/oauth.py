"""MCP OAuth: a user's grant for each MCP config, this application's client registrations,
and sign-ins under way.

A grant's tokens are sealed with the key ring (`secrets.seal_record`), bound to the user,
the config's name and the grant's generation, with the access token's absolute expiry in
plain beside them. Every write names the generation it read and makes the next one; a write
from an older generation is refused (`Conflict`), never applied over a newer one. A refresh
is single-flight across processes (`refresh_mcp_grant`): the caller that takes the grant's
short lease calls the provider, outside any transaction, and writes the next generation;
the others wait for it. A provider that refuses the refresh token (`invalid_grant`) marks
the grant as needing sign-in (`SignInRequired`); nothing deletes a newer token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from faceplate_models import secrets as sealed
from faceplate_models.errors import Conflict, LockTimeout, SignInRequired, ValidationError
from faceplate_models.ids import uuid7
from faceplate_models.models import MCP_NAME_MAX, URL_MAX
from faceplate_models.store._rows import execute, fetchrow, missing, now, run, write_row
from faceplate_models.validation import as_uuid, json_object, required_text, text, whole_number

#: Most characters of a token (a JWT with many claims stays far below).
MAX_TOKEN: Final = 16_384
#: A token this close to its expiry counts as expired: it would expire on the way.
EXPIRY_MARGIN: Final = timedelta(seconds=30)
#: How long a refresh may hold the grant's lease; the others wait that long at most.
LEASE_SECONDS: Final = 30.0
#: The most a generation counts to (the column's BIGINT), and the longest an access token's
#: `expires_in` may be (ten years; a longer one is no expiry to speak of).
MAX_GENERATION: Final = 2**63 - 2
MAX_TOKEN_SECONDS: Final = 10 * 365 * 86_400
#: How long a sign-in's PKCE verifier and state are kept, by default.
SIGN_IN_SECONDS: Final = 600

_GRANT: Final = sealed.OAUTH_TOKENS
_CLIENT: Final = sealed.OAUTH_CLIENT
_SIGN_IN: Final = sealed.OAUTH_SIGN_IN


@dataclass(frozen=True)
class GrantTokens:
    """A user's tokens for one MCP config, opened; `repr` never shows a token."""

    access_token: str = field(repr=False)
    token_type: str
    refresh_token: str | None = field(repr=False)
    scope: str | None
    expires_at: datetime | None
    generation: int
    needs_sign_in: bool = False

    def expired(self) -> bool:
        """Whether the access token has expired, or will within `EXPIRY_MARGIN`."""
        return self.expires_at is not None and self.expires_at - EXPIRY_MARGIN <= now()

    def expires_in(self) -> int | None:
        """Seconds the access token has left, as OAuth's `expires_in` says it."""
        if self.expires_at is None:
            return None
        return max(0, int((self.expires_at - now()).total_seconds()))


# $1 user, $2 config name.
_READ_SQL: Final = """SELECT c.id AS config_id, g.generation, g.key_id, g.box, g.expires_at,
        g.needs_sign_in
    FROM faceplate.mcp_configs c LEFT JOIN faceplate.oauth_grants g ON g.mcp_config_id = c.id
    WHERE c.user_id = $1 AND c.name = $2"""
# $1 user, $2 name, $3 a new row's id, $4 the generation read (0: none), $5 key, $6 box,
# $7 expiry. The next generation is written only over the one read.
_SAVE_SQL: Final = """INSERT INTO faceplate.oauth_grants AS g (id, mcp_config_id, user_id,
        generation, key_id, box, expires_at, needs_sign_in, created_at, updated_at)
    SELECT $3, c.id, $1, $4 + 1, $5, $6, $7, false, now(), now()
    FROM faceplate.mcp_configs c WHERE c.user_id = $1 AND c.name = $2
    ON CONFLICT (mcp_config_id) DO UPDATE SET generation = EXCLUDED.generation,
        key_id = EXCLUDED.key_id, box = EXCLUDED.box, expires_at = EXCLUDED.expires_at,
        needs_sign_in = false, failure = NULL, lease_until = NULL, updated_at = now()
    WHERE g.generation = $4
    RETURNING generation"""
_OWNED: Final = """FROM faceplate.mcp_configs c
    WHERE c.id = g.mcp_config_id AND c.user_id = $1 AND c.name = $2 AND g.generation = $3"""
# The lease of a refresh: $4 its seconds. Taken only when free, and not over a refused grant.
_LEASE_SQL: Final = f"""UPDATE faceplate.oauth_grants g
    SET lease_until = clock_timestamp() + $4 * interval '1 second' {_OWNED}
      AND NOT g.needs_sign_in AND (g.lease_until IS NULL OR g.lease_until < clock_timestamp())"""
_UNLEASE_SQL: Final = f"UPDATE faceplate.oauth_grants g SET lease_until = NULL {_OWNED}"
_REFUSED_SQL: Final = f"""UPDATE faceplate.oauth_grants g
    SET needs_sign_in = true, failure = $4, lease_until = NULL {_OWNED}"""
_CLIENT_SQL: Final = "SELECT key_id, box FROM faceplate.oauth_clients WHERE lookup = $1"
_SAVE_CLIENT_SQL: Final = """INSERT INTO faceplate.oauth_clients
        (id, lookup, server, issuer, key_id, box, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (lookup) DO NOTHING"""
_BEGIN_SQL: Final = """INSERT INTO faceplate.oauth_sign_ins
        (id, mcp_config_id, user_id, state_hash, key_id, box, expires_at, created_at)
    SELECT $3, c.id, $1, $4, $5, $6, now() + $7 * interval '1 second', now()
    FROM faceplate.mcp_configs c WHERE c.user_id = $1 AND c.name = $2
    ON CONFLICT (state_hash) DO NOTHING
    RETURNING id"""
# Used once: the row goes as it is read.
_COMPLETE_SQL: Final = """DELETE FROM faceplate.oauth_sign_ins s USING faceplate.mcp_configs c
    WHERE s.state_hash = $2 AND s.user_id = $1 AND c.id = s.mcp_config_id
      AND s.expires_at > now()
    RETURNING c.name, s.key_id, s.box"""
#: Sign-ins past their time, for `purge_expired`: a batch of $1.
EXPIRED_SIGN_INS_SQL: Final = """DELETE FROM faceplate.oauth_sign_ins WHERE id IN (
    SELECT id FROM faceplate.oauth_sign_ins WHERE expires_at < now() LIMIT $1)"""


def _identity(uid: uuid.UUID, name: str, generation: int) -> list[str]:
    return [str(uid), name, str(generation)]


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _name(name: object) -> str:
    return required_text("name", name, MCP_NAME_MAX)


async def get_mcp_grant(*, user_id: uuid.UUID | str, name: str) -> GrantTokens | None:
    """The user's tokens for MCP config `name`, opened; None before the first sign-in."""
    uid, label = as_uuid("user_id", user_id), _name(name)
    row = await fetchrow(_READ_SQL, uid, label, user=uid)
    if row is None:
        raise missing("MCP config", label)
    if row["generation"] is None:
        return None
    record = sealed.open_record(
        _GRANT, _identity(uid, label, row["generation"]), row["key_id"], row["box"]
    )
    return GrantTokens(
        access_token=str(record["access_token"]),
        token_type=str(record.get("token_type") or "Bearer"),
        refresh_token=None if record.get("refresh_token") is None else str(record["refresh_token"]),
        scope=None if record.get("scope") is None else str(record["scope"]),
        expires_at=row["expires_at"],
        generation=row["generation"],
        needs_sign_in=row["needs_sign_in"],
    )


def _token(field_name: str, value: object, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    return text(field_name, value, MAX_TOKEN)


async def save_mcp_grant(
    *,
    user_id: uuid.UUID | str,
    name: str,
    generation: int,
    access_token: str,
    refresh_token: str | None = None,
    token_type: str = "Bearer",  # noqa: S107 - the scheme's name
    scope: str | None = None,
    expires_in: int | None = None,
) -> GrantTokens:
    """Store the user's tokens for MCP config `name` as the generation after `generation`,
    the one the caller read (0 when there was none): after a sign-in, or a refresh made
    outside `refresh_mcp_grant`. A newer generation stored meanwhile is a `Conflict`: the
    caller's tokens are older than the stored ones, and are not written."""
    uid, label = as_uuid("user_id", user_id), _name(name)
    whole_number("generation", generation, 0, MAX_GENERATION)
    record = {
        "access_token": _token("access_token", access_token, required=True),
        "refresh_token": _token("refresh_token", refresh_token),
        "token_type": text("token_type", token_type, 64),
        "scope": None if scope is None else text("scope", scope, 4096),
    }
    if expires_in is not None:
        whole_number("expires_in", expires_in, 0, MAX_TOKEN_SECONDS, " of seconds")
    expires_at = None if expires_in is None else now() + timedelta(seconds=expires_in)
    key_id, box = sealed.seal_record(_GRANT, _identity(uid, label, generation + 1), record)
    row = await write_row(
        _SAVE_SQL, uid, label, uuid7(), generation, key_id, box, expires_at, user=uid
    )
    if row is None:
        stored = await get_mcp_grant(user_id=uid, name=label)
        if (
            stored is not None
            and stored.generation == generation + 1
            and (stored.access_token == record["access_token"])
        ):
            return stored  # a retry of this very write, which landed
        raise Conflict(
            f"the OAuth tokens of MCP config {label!r} were written by another process "
            f"(generation {stored.generation if stored else 0}, not {generation}): these older "
            "tokens are not stored; read the grant again"
        )
    return GrantTokens(
        access_token=str(record["access_token"]),
        token_type=str(record["token_type"]),
        refresh_token=record["refresh_token"],
        scope=record["scope"],
        expires_at=expires_at,
        generation=row["generation"],
    )


async def refresh_mcp_grant(
    *,
    user_id: uuid.UUID | str,
    name: str,
    refresh: Callable[[GrantTokens], Awaitable[Mapping[str, Any]]],
    lease_seconds: float = LEASE_SECONDS,
) -> GrantTokens:
    """The user's tokens for MCP config `name`, refreshed first if the access token has
    expired: single-flight across processes.

    One caller takes the grant's lease and awaits `refresh(tokens)`, which calls the
    provider's token endpoint and returns its answer (`access_token`, `expires_in`, and a
    rotated `refresh_token` when the provider rotates); the others wait for the generation
    it writes. `refresh` raises `SignInRequired` when the provider refuses the refresh
    token: the grant is marked, and every caller gets `SignInRequired` until the user signs
    in again. A refresh that outlives its lease loses it: another may start, and of the
    two, the write based on the older generation is refused."""
    uid, label = as_uuid("user_id", user_id), _name(name)
    if not callable(refresh):
        raise ValidationError("refresh", "must be an async function of the tokens")
    if (
        isinstance(lease_seconds, bool)
        or not isinstance(lease_seconds, int | float)
        or not 1 <= lease_seconds <= 600
    ):
        raise ValidationError("lease_seconds", "must be 1 to 600 seconds")
    deadline = time.monotonic() + lease_seconds + 5
    while True:
        tokens = await get_mcp_grant(user_id=uid, name=label)
        if tokens is None or tokens.needs_sign_in:
            raise SignInRequired(
                f"MCP config {label!r} has no usable OAuth grant"
                + (" (the provider refused its refresh token)" if tokens else "")
                + ": the user signs in again"
            )
        if not tokens.expired():
            return tokens
        if tokens.refresh_token is None:
            raise SignInRequired(
                f"the access token of MCP config {label!r} expired and there is no refresh "
                "token: the user signs in again"
            )
        at = (uid, label, tokens.generation)
        if await execute(_LEASE_SQL, *at, lease_seconds, user=uid) == "UPDATE 1":
            return await _refresh_leased(tokens, at, refresh)
        if time.monotonic() > deadline:
            raise LockTimeout(
                f"another process's refresh of MCP config {label!r} held its lease for more "
                f"than {lease_seconds:g} s without a new token: the provider is slow or down"
            )
        await asyncio.sleep(0.05)


async def _refresh_leased(
    tokens: GrantTokens,
    at: tuple[uuid.UUID, str, int],
    refresh: Callable[[GrantTokens], Awaitable[Mapping[str, Any]]],
) -> GrantTokens:
    uid, label, generation = at
    try:
        answer = dict(await refresh(tokens))
    except SignInRequired as refused:
        await execute(_REFUSED_SQL, *at, str(refused)[:2000], user=uid)
        raise
    except BaseException:
        await asyncio.shield(execute(_UNLEASE_SQL, *at, user=uid))
        raise
    expires = answer.get("expires_in")
    return await save_mcp_grant(
        user_id=uid,
        name=label,
        generation=generation,
        access_token=answer.get("access_token"),  # type: ignore[arg-type]
        refresh_token=answer.get("refresh_token") or tokens.refresh_token,
        token_type=answer.get("token_type") or tokens.token_type,
        scope=answer.get("scope") or tokens.scope,
        expires_in=None if expires is None else int(expires),
    )


def _client_lookup(server: str, redirect_uri: str, metadata: object) -> str:
    """The key of a registration: its server, redirect URI and client metadata, hashed."""
    url = text("server", server, URL_MAX)
    redirect = text("redirect_uri", redirect_uri, URL_MAX)
    if not isinstance(metadata, Mapping):
        raise ValidationError("metadata", "must be the client metadata, a dict")
    described = json.loads(json_object("metadata", dict(metadata)))  # its size and depth
    return _hash(json.dumps([url, redirect, described], sort_keys=True))


async def get_mcp_client(
    *, server: str, redirect_uri: str, metadata: Mapping[str, Any]
) -> dict[str, object] | None:
    """This application's registration with the authorization server of MCP server `server`
    for this redirect URI and client metadata (what `save_mcp_client` stored), or None."""
    lookup = _client_lookup(server, redirect_uri, metadata)
    row = await fetchrow(_CLIENT_SQL, lookup, user=None)
    if row is None:
        return None
    return sealed.open_record(_CLIENT, [lookup], row["key_id"], row["box"])


async def save_mcp_client(
    *,
    server: str,
    redirect_uri: str,
    metadata: Mapping[str, Any],
    client_info: Mapping[str, Any],
    issuer: str | None = None,
) -> dict[str, object]:
    """Store a client registration (dynamic or static; it may hold a client secret,
    sealed) for reuse by every user of MCP server `server`: the first one stored wins, and
    is returned, so processes registering at once settle on one."""
    lookup = _client_lookup(server, redirect_uri, metadata)
    if not isinstance(client_info, Mapping):
        raise ValidationError("client_info", "must be the client information, a dict")
    info = json.loads(json_object("client_info", dict(client_info)))  # its size and depth
    key_id, box = sealed.seal_record(_CLIENT, [lookup], info)
    found = None if issuer is None else text("issuer", issuer, URL_MAX)
    await run(
        lambda conn: conn.execute(_SAVE_CLIENT_SQL, uuid7(), lookup, server, found, key_id, box),
        user=None,
    )
    stored = await get_mcp_client(server=server, redirect_uri=redirect_uri, metadata=metadata)
    assert stored is not None  # noqa: S101 - just written, or written before
    return stored


async def begin_mcp_sign_in(
    *,
    user_id: uuid.UUID | str,
    name: str,
    state: str,
    code_verifier: str,
    seconds: int = SIGN_IN_SECONDS,
) -> None:
    """Keep a sign-in's PKCE `code_verifier` (sealed) under its `state` until the provider
    redirects back, for at most `seconds`: the callback may reach another process."""
    uid, label = as_uuid("user_id", user_id), _name(name)
    key = _hash(text("state", state, 1024))
    verifier = text("code_verifier", code_verifier, 128)
    whole_number("seconds", seconds, 1, 3600)
    key_id, box = sealed.seal_record(_SIGN_IN, [str(uid), key], {"code_verifier": verifier})
    row = await write_row(_BEGIN_SQL, uid, label, uuid7(), key, key_id, box, seconds, user=uid)
    if row is None:
        found = await fetchrow(_READ_SQL, uid, label, user=uid)
        if found is None:
            raise missing("MCP config", label)
        raise Conflict("this state is taken: make a new random state per sign-in")


async def complete_mcp_sign_in(*, user_id: uuid.UUID | str, state: str) -> tuple[str, str]:
    """The MCP config's name and the PKCE verifier of the sign-in this `state` began; once
    only, and only before it expires (else `NotFound`)."""
    uid = as_uuid("user_id", user_id)
    key = _hash(text("state", state, 1024))
    row = await write_row(_COMPLETE_SQL, uid, key, user=uid)
    if row is None:
        raise missing("sign-in", "for this state (used already, expired, or another user's)")
    record = sealed.open_record(_SIGN_IN, [str(uid), key], row["key_id"], row["box"])
    return row["name"], str(record["code_verifier"])


__all__ = [
    "EXPIRED_SIGN_INS_SQL",
    "GrantTokens",
    "begin_mcp_sign_in",
    "complete_mcp_sign_in",
    "get_mcp_client",
    "get_mcp_grant",
    "refresh_mcp_grant",
    "save_mcp_client",
    "save_mcp_grant",
]
