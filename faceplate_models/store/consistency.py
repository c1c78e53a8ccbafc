"""Reading one's own writes across processes, and ORM reads that may use a replica.

With read replicas configured, a user's reads in the process that wrote see the write at
once. Another process (another replica of the backend) learns of it from a token: hand
`consistency_token()` to the client after a write (a response header, say) and pass what
comes back to `read_after()` at the start of the next request. Without replicas both
functions do nothing, so a backend can call them unconditionally.
"""

from __future__ import annotations

import uuid

from tortoise import connections

from faceplate_models import replicas
from faceplate_models.engine import FaceplateClient
from faceplate_models.errors import ConfigError, ValidationError
from faceplate_models.validation import as_uuid


def consistency_token(*, user_id: uuid.UUID | str) -> str | None:
    """The position of this user's last write seen by this process, a short string (a WAL
    position such as `0/3A1F2B8`); None when there is nothing to wait for."""
    uid = as_uuid("user_id", user_id)
    router = replicas.router()
    return None if router is None else router.token(uid)


def read_after(*, user_id: uuid.UUID | str, token: str | None) -> None:
    """Make this user's reads in this process see the writes `token` names, whichever
    process made them; None changes nothing."""
    uid = as_uuid("user_id", user_id)
    if token is not None and (not isinstance(token, str) or len(token) > 32):
        raise ValidationError("token", "must be a consistency token string")
    router = replicas.router()
    if token is not None and router is not None:
        router.read_after(uid, token)


async def read_client(*, user_id: uuid.UUID | str | None = None) -> FaceplateClient:
    """A client for an ORM read that may use a replica, as the store's reads do:
    `await fm.Task.filter(...).using_db(await fm.read_client(user_id=...))`."""
    uid = None if user_id is None else as_uuid("user_id", user_id)
    router = replicas.router()
    if router is not None:
        return await router.client_for(uid)
    client = connections.get("default")
    if not isinstance(client, FaceplateClient):
        raise ConfigError("read_client() is for reads outside a transaction")
    return client


__all__ = ["consistency_token", "read_after", "read_client"]
