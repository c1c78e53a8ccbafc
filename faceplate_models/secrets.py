"""MCP secrets at rest: a key ring, authenticated encryption, and rotation.

An MCP config's secret values (env values, header values, tokens) are stored only as one
AES-256-GCM box per config: a fresh 96-bit nonce per write, the ciphertext and its tag,
with the id of the key that sealed it beside it. The associated data is the row's identity
(the user, the config's name, the secrets' names) and the box's version, which goes up
with every box a row is given, so a box copied into another row, or another user's, fails
to open, and so does a row's earlier box written back over a later one (the database
refuses a box whose version does not go up; an earlier box with its earlier version does
not open under the row's later one). Boxes sealed before versions (0) open as they were
sealed; rotation gives them a version. Listings show the names only.

Keys come from FACEPLATE_SECRET_KEYS (`id:base64-of-32-bytes`, comma-separated): the first
seals, all open. With the embedded development server and no keys, a development key is
made in its data directory; anywhere else, storing a secret without keys is a
`ConfigError`. Rotation (`faceplate-db rotate-secrets`) re-seals every box under the first
key in batches, each its own transaction, skipping rows a live request holds.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import logging
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from faceplate_models.config import parse_secret_keys
from faceplate_models.engine import Connection, current, texts
from faceplate_models.errors import ConfigError, SecretError

log = logging.getLogger(__name__)

NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
DEVELOPMENT_KEY_FILE: Final = "secret-key"
_AAD_PREFIX: Final = b"faceplate/mcp-secrets/v1\x00"
_VERSIONED_AAD_PREFIX: Final = b"faceplate/mcp-secrets/v2\x00"
_RECORD_AAD_PREFIX: Final = b"faceplate/record/v1\x00"


@dataclass(frozen=True)
class KeyRing:
    """Keys by id: `primary` seals, every key opens. `repr` never shows a key."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)

    @property
    def primary(self) -> str:
        return self.keys[0][0]

    def key(self, key_id: str) -> bytes | None:
        return next((key for kid, key in self.keys if kid == key_id), None)


# The ring `init_db` installs; None: no keys, and secrets cannot be stored.
_ring: KeyRing | None = None


def use(ring: KeyRing | None) -> None:
    """Install the key ring the store seals and opens secrets with (`init_db` does)."""
    global _ring
    _ring = ring


def development_ring(data_dir: Path) -> KeyRing:
    """The embedded server's key, made on first use in its data directory (mode 0600)."""
    path = data_dir / DEVELOPMENT_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        encoded = base64.b64encode(os.urandom(32)).decode()  # an AES-256 key
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(f"dev:{encoded}\n")
        log.warning(
            "FACEPLATE_SECRET_KEYS is unset: MCP secrets are sealed with a development key "
            "made in %s (fine for the embedded server; set keys anywhere else)",
            path,
        )
    keys = parse_secret_keys(path.read_text(), variable=f"the development key in {path}")
    return KeyRing(keys)


def _ring_or_refuse(what: str) -> KeyRing:
    if _ring is None:
        raise ConfigError(
            f"cannot {what}: FACEPLATE_SECRET_KEYS is not set. Set it to one or more "
            "`id:base64-of-32-random-bytes` keys, comma-separated (the first seals, all "
            'open); `python -c "import os, base64; print(base64.b64encode(os.urandom(32))'
            '.decode())"` makes one'
        )
    return _ring


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """The box: a fresh nonce, then the AES-GCM ciphertext and tag."""
    # Imported on first use: cryptography takes 20 ms to import, which a process that
    # starts per request and seals nothing should not pay.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, box: bytes, aad: bytes) -> bytes | None:
    """What `_encrypt` sealed in `box` with `aad`; None if the box or `aad` was altered (or
    the box is too short to hold a nonce)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key).decrypt(box[:NONCE_BYTES], box[NONCE_BYTES:], aad)
    except (InvalidTag, ValueError):
        return None


def _aad(user_id: uuid.UUID, name: str, names: list[str], version: int) -> bytes:
    if version == 0:  # sealed before versions
        return _AAD_PREFIX + json.dumps([str(user_id), name, names]).encode()
    return _VERSIONED_AAD_PREFIX + json.dumps([str(user_id), name, names, version]).encode()


def seal(
    user_id: uuid.UUID, name: str, secrets: Mapping[str, str], version: int
) -> tuple[list[str], str, bytes]:
    """Encrypt `secrets` for this row's box of `version` (one more than its stored box's):
    (the sorted names, the key id, the box)."""
    ring = _ring_or_refuse("store MCP secrets")
    names = sorted(secrets)
    plaintext = json.dumps({n: secrets[n] for n in names}).encode()
    key = ring.key(ring.primary)
    assert key is not None  # noqa: S101 - the primary is one of the ring's keys
    box = _encrypt(key, plaintext, _aad(user_id, name, names, version))
    return names, ring.primary, box


def open_box(
    user_id: uuid.UUID,
    name: str,
    names: list[str],
    key_id: str | None,
    box: bytes | None,
    version: int,
) -> dict[str, str]:
    """Decrypt a box sealed for this row; `SecretError` when it was not.

    A row with no secrets has no names, no key id and no box; any other row without a key
    id or a box, or with a box too short to hold a nonce and a tag, was altered.
    """
    if not names and key_id is None and box is None:
        return {}
    altered = SecretError(
        f"the secrets of MCP config {name!r} do not open: the stored box was altered, or "
        "copied from another row"
    )
    if key_id is None or box is None or len(box) < NONCE_BYTES + _TAG_BYTES:
        raise altered
    ring = _ring_or_refuse("read MCP secrets")
    key = ring.key(key_id)
    if key is None:
        raise ConfigError(
            f"the secrets of MCP config {name!r} are sealed with key {key_id!r}, which "
            "FACEPLATE_SECRET_KEYS does not hold: add that key back (after the current one) "
            "to read them, then rotate"
        )
    plaintext = _decrypt(key, box, _aad(user_id, name, names, version))
    if plaintext is None:
        raise altered
    opened: dict[str, str] = json.loads(plaintext)
    return opened


def seal_record(kind: str, identity: list[str], record: Mapping[str, object]) -> tuple[str, bytes]:
    """Encrypt `record` (JSON) for the row that `kind` and `identity` name (its associated
    data, as for MCP secrets): (the key id, the box). OAuth tokens, client registrations and
    sign-ins are sealed so."""
    ring = _ring_or_refuse(f"store {kind}")
    key = ring.key(ring.primary)
    assert key is not None  # noqa: S101 - the primary is one of the ring's keys
    aad = _RECORD_AAD_PREFIX + json.dumps([kind, *identity]).encode()
    return ring.primary, _encrypt(key, json.dumps(record).encode(), aad)


def open_record(kind: str, identity: list[str], key_id: str, box: bytes) -> dict[str, object]:
    """Decrypt a record `seal_record` sealed for this row; `SecretError` when it was not."""
    ring = _ring_or_refuse(f"read {kind}")
    key = ring.key(key_id)
    if key is None:
        raise ConfigError(
            f"a stored {kind} is sealed with key {key_id!r}, which FACEPLATE_SECRET_KEYS does "
            "not hold: add that key back (after the current one)"
        )
    aad = _RECORD_AAD_PREFIX + json.dumps([kind, *identity]).encode()
    plaintext = _decrypt(key, box, aad)
    if plaintext is not None:
        with contextlib.suppress(ValueError):  # it opened but holds no JSON: altered too
            opened: dict[str, object] = json.loads(plaintext)
            return opened
    raise SecretError(f"a stored {kind} does not open: it was altered, or copied from another row")


# --- rotation ----------------------------------------------------------------------------

# Boxes under another key, or sealed before versions.
_STALE = "secret_key_id <> $1 OR (secret_box IS NOT NULL AND secret_version = 0)"
_OLD_BOXES = f"""SELECT id, user_id, name, secret_names, secret_key_id, secret_box,
        secret_version
    FROM faceplate.mcp_configs WHERE {_STALE}
    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"""
_RESEAL = """UPDATE faceplate.mcp_configs AS c
    SET secret_key_id = $1, secret_box = r.box, secret_version = c.secret_version + 1
    FROM unnest($2::text[]::uuid[], $3::text[]::bytea[]) AS r(id, box) WHERE c.id = r.id"""
_REMAINING = f"""SELECT secret_key_id, count(*) AS n FROM faceplate.mcp_configs
    WHERE {_STALE} GROUP BY secret_key_id ORDER BY secret_key_id"""

#: The kinds of record `seal_record` seals (bound into their associated data), each in its
#: table, with the SQL of a row's identity.
OAUTH_TOKENS: Final = "OAuth tokens"
OAUTH_CLIENT: Final = "OAuth client registration"
OAUTH_SIGN_IN: Final = "OAuth sign-in"
_RECORDS: Final = (
    (
        OAUTH_TOKENS,
        "oauth_grants",
        "ARRAY[t.user_id::text, c.name::text, t.generation::text]",
        "JOIN faceplate.mcp_configs c ON c.id = t.mcp_config_id",
    ),
    (OAUTH_CLIENT, "oauth_clients", "ARRAY[t.lookup::text]", ""),
    (OAUTH_SIGN_IN, "oauth_sign_ins", "ARRAY[t.user_id::text, t.state_hash::text]", ""),
)


_REMAINING_RECORDS: Final = " UNION ALL ".join(
    f"SELECT key_id, count(*) AS n FROM faceplate.{table} WHERE key_id <> $1 GROUP BY key_id"
    for _, table, _, _ in _RECORDS
)


async def _reseal_records(
    record: tuple[str, str, str, str], key_id: str, batch: int, conn: Connection
) -> int:
    """Re-seal one batch of a table's records under `key_id`; how many."""
    kind, table, identity, join = record
    async with current().atomic(conn, long=True):
        rows = await conn.fetch(
            f"""SELECT t.id, t.key_id, t.box, {identity} AS identity
                FROM faceplate.{table} t {join} WHERE t.key_id <> $1
                ORDER BY t.id LIMIT $2 FOR UPDATE OF t SKIP LOCKED""",
            key_id,
            batch,
        )
        boxes = [
            seal_record(
                kind,
                list(row["identity"]),
                open_record(kind, list(row["identity"]), row["key_id"], row["box"]),
            )[1]
            for row in rows
        ]
        await conn.execute(
            f"""UPDATE faceplate.{table} AS t SET key_id = $1, box = r.box
                FROM unnest($2::text[]::uuid[], $3::text[]::bytea[]) AS r(id, box)
                WHERE t.id = r.id""",
            key_id,
            texts(row["id"] for row in rows),
            texts(boxes),
        )
    return len(rows)


@dataclass(frozen=True)
class Rotation:
    """What a rotation did: rows re-sealed, and rows still under other keys, by key id."""

    key_id: str
    rotated: int
    remaining: dict[str, int]


async def rotate(*, batch: int = 100) -> Rotation:
    """Re-seal every box under the primary key, `batch` rows per transaction: MCP secrets,
    then OAuth tokens, client registrations and sign-ins.

    Safe to interrupt and run again (each batch commits on its own) and beside live
    traffic (rows a request holds are skipped, and counted as remaining).
    """
    ring = _ring_or_refuse("rotate MCP secrets")
    client = current()
    rotated = 0

    async def one_batch(conn: Connection) -> int:
        async with client.atomic(conn, long=True):
            rows = await conn.fetch(_OLD_BOXES, ring.primary, batch)
            boxes = []
            for row in rows:
                names = json.loads(row["secret_names"])
                user, name, version = row["user_id"], row["name"], row["secret_version"]
                opened = open_box(
                    user, name, names, row["secret_key_id"], row["secret_box"], version
                )
                _, _, box = seal(user, name, opened, version + 1)
                boxes.append(box)
            await conn.execute(_RESEAL, ring.primary, texts(r["id"] for r in rows), texts(boxes))
        return len(rows)

    while done := await client.run(one_batch, long=True):
        rotated += done
        log.info("re-sealed %d MCP secret boxes under key %r", rotated, ring.primary)
    for record in _RECORDS:
        sealing = functools.partial(_reseal_records, record, ring.primary, batch)
        while done := await client.run(sealing, long=True):
            rotated += done
    rows = await client.run(lambda conn: conn.fetch(_REMAINING, ring.primary))
    remaining = {row["secret_key_id"]: row["n"] for row in rows}
    for row in await client.run(lambda conn: conn.fetch(_REMAINING_RECORDS, ring.primary)):
        remaining[row["key_id"]] = remaining.get(row["key_id"], 0) + row["n"]
    return Rotation(ring.primary, rotated, dict(sorted(remaining.items())))


__all__ = [
    "OAUTH_CLIENT",
    "OAUTH_SIGN_IN",
    "OAUTH_TOKENS",
    "KeyRing",
    "Rotation",
    "development_ring",
    "open_box",
    "open_record",
    "rotate",
    "seal",
    "seal_record",
    "use",
]
