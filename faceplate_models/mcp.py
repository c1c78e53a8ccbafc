"""The MCP Python SDK's side of stored configs: what its client takes to start or reach a
stored server (`launch_parameters`), and its OAuth `TokenStorage` over this package's grants
(`mcp_token_storage`). Needs the `mcp` package (`pip install faceplate-models[mcp]`).

The SDK's client does not refresh a token it loaded from storage: it learns no expiry from
it, and signs in again at the first 401. So `get_tokens` refreshes an expired access token
first, single-flight across processes (`refresh_mcp_grant`), with the stored client
registration and the token endpoint the server's metadata names. Make one
`OAuthClientProvider` per connection (they are cheap): a long-lived one keeps its tokens in
memory and would refresh them itself, per process.
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from faceplate_models import store
from faceplate_models.errors import ProviderError, SignInRequired, ValidationError
from faceplate_models.models import MCPConfig
from faceplate_models.validation import as_uuid

if TYPE_CHECKING:
    from mcp.client.stdio import StdioServerParameters
    from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

    from faceplate_models.store.oauth import GrantTokens

#: How long a token request or a metadata read may take.
HTTP_TIMEOUT = 10.0


def _secret(config: MCPConfig, part: str, name: str) -> str:
    value = (config.secrets or {}).get(f"{part}.{name}")
    if value is None:
        raise ValidationError(
            "config", f"MCP config {config.name!r} names {part} {name!r} but has no secret for it"
        )
    return value


def _arg(config: MCPConfig, arg: str) -> str:
    """A command-line argument, with the secret the import moved out of it put back."""
    for name, value in (config.secrets or {}).items():
        if name.startswith("args."):
            arg = arg.replace("${" + name + "}", value)
    return arg


def launch_parameters(config: MCPConfig) -> StdioServerParameters | dict[str, Any]:
    """What the `mcp` client takes for a stored config whose secrets were revealed
    (`get_mcp_config(..., reveal_secrets=True)`): `StdioServerParameters` for a command,
    with its environment; for a URL server, `{"transport", "url", "headers"}` (streamable
    HTTP or SSE) with its header values. An OAuth grant is not a header: pass
    `mcp_token_storage(...)` to an `OAuthClientProvider` for those servers.

    A command runs on the machine that calls this, with that machine's rights: launching
    users' stdio commands on a shared backend runs their code there."""
    if config.secret_names and config.secrets is None:
        raise ValidationError(
            "config", f"MCP config {config.name!r} has secrets: read it with reveal_secrets=True"
        )
    body: dict[str, Any] = dict(config.config)
    transport = str(body.get("transport") or ("http" if "url" in body else "stdio"))
    if transport == "stdio":
        from mcp.client.stdio import StdioServerParameters

        command = body.get("command")
        if not isinstance(command, str) or not command:
            raise ValidationError("config", f"MCP config {config.name!r} has no command")
        env = {name: _secret(config, "env", name) for name in body.get("env") or ()}
        return StdioServerParameters(
            command=command,
            args=[_arg(config, str(arg)) for arg in body.get("args") or ()],
            env=env or None,
            cwd=body.get("cwd"),
        )
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise ValidationError("config", f"MCP config {config.name!r} has no url")
    headers = {name: _secret(config, "headers", name) for name in body.get("headers") or ()}
    kind = "sse" if transport == "sse" else "streamable-http"
    return {"transport": kind, "url": url, "headers": headers}


class MCPTokenStorage:
    """The MCP SDK's `TokenStorage` for one user and MCP config, over the package's grants."""

    def __init__(
        self,
        *,
        user_id: uuid.UUID,
        name: str,
        server_url: str | None,
        client_metadata: OAuthClientMetadata,
    ) -> None:
        self.user_id = user_id
        self.name = name
        self._server_url = server_url
        self.client_metadata = client_metadata
        self._generation = 0  # of the grant last read: a write makes the next

    async def server_url(self) -> str:
        """The MCP server's URL: as given, else the stored config's `url`."""
        if self._server_url is None:
            config = await store.get_mcp_config(user_id=self.user_id, name=self.name)
            url = config.config.get("url")
            if not isinstance(url, str) or not url:
                raise ValidationError("server_url", f"MCP config {self.name!r} has no url")
            self._server_url = url
        return self._server_url

    async def _registration_key(self) -> dict[str, Any]:
        # Scope is chosen per sign-in by the SDK; the registration does not depend on it.
        metadata = self.client_metadata.model_dump(mode="json", exclude_none=True)
        metadata.pop("scope", None)
        return {
            "server": await self.server_url(),
            "redirect_uri": ",".join(map(str, self.client_metadata.redirect_uris or ())),
            "metadata": metadata,
        }

    async def get_tokens(self) -> OAuthToken | None:
        from mcp.shared.auth import OAuthToken

        grant = await store.get_mcp_grant(user_id=self.user_id, name=self.name)
        if grant is not None and not grant.needs_sign_in and grant.expired():
            try:
                grant = await store.refresh_mcp_grant(
                    user_id=self.user_id, name=self.name, refresh=self._refresh
                )
            except SignInRequired:
                grant = await store.get_mcp_grant(user_id=self.user_id, name=self.name)
        self._generation = 0 if grant is None else grant.generation
        if grant is None or grant.needs_sign_in or grant.expired():
            return None  # the SDK signs in
        return OAuthToken(
            access_token=grant.access_token,
            token_type="Bearer",  # noqa: S106 - the scheme's name
            expires_in=grant.expires_in(),
            refresh_token=grant.refresh_token,
            scope=grant.scope,
        )

    async def set_tokens(self, tokens: OAuthToken) -> None:
        grant = await store.save_mcp_grant(
            user_id=self.user_id,
            name=self.name,
            generation=self._generation,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            scope=tokens.scope,
            expires_in=tokens.expires_in,
        )
        self._generation = grant.generation

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        from mcp.shared.auth import OAuthClientInformationFull

        stored = await store.get_mcp_client(**await self._registration_key())
        return None if stored is None else OAuthClientInformationFull.model_validate(stored)

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        await store.save_mcp_client(
            **await self._registration_key(),
            client_info=client_info.model_dump(mode="json", exclude_none=True),
            issuer=client_info.issuer,
        )

    async def _token_endpoint(self, http: Any, server: str) -> str:
        """The token endpoint the MCP server's metadata names (RFC 9728, then RFC 8414)."""
        from mcp.client.auth.utils import (
            build_oauth_authorization_server_metadata_discovery_urls,
            build_protected_resource_metadata_discovery_urls,
        )

        issuer = None
        for url in build_protected_resource_metadata_discovery_urls(None, server):
            answer = await http.get(url)
            if answer.status_code == 200:
                issuer = (answer.json().get("authorization_servers") or [None])[0]
                break
        for url in build_oauth_authorization_server_metadata_discovery_urls(issuer, server):
            answer = await http.get(url)
            if answer.status_code == 200 and answer.json().get("token_endpoint"):
                return str(answer.json()["token_endpoint"])
        raise ProviderError(f"the authorization server of {server} publishes no token endpoint")

    async def _refresh(self, tokens: GrantTokens) -> dict[str, Any]:
        import httpx2

        server = await self.server_url()
        client = await self.get_client_info()
        if client is None or not client.client_id:
            raise SignInRequired(f"no client registration for {server}: sign in again")
        form = {
            "grant_type": "refresh_token",
            "refresh_token": tokens.refresh_token or "",
            "client_id": client.client_id,
            "resource": server,
        }
        headers: dict[str, str] = {}
        basic = client.token_endpoint_auth_method == "client_secret_basic"  # noqa: S105
        if client.client_secret and basic:
            pair = f"{quote(client.client_id)}:{quote(client.client_secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        elif client.client_secret:
            form["client_secret"] = client.client_secret
        try:
            async with httpx2.AsyncClient(timeout=HTTP_TIMEOUT) as http:
                endpoint = await self._token_endpoint(http, server)
                answer = await http.post(endpoint, data=form, headers=headers)
        except httpx2.HTTPError as exc:
            raise ProviderError(
                f"the token endpoint of {server}'s provider could not be reached "
                f"({type(exc).__name__})"
            ) from None
        body: dict[str, Any] = {}
        with contextlib.suppress(ValueError):  # not JSON: judged by its status alone
            body = dict(answer.json())
        if answer.status_code == 200 and body.get("access_token"):
            return body
        if answer.status_code in (400, 401) and body.get("error") in (
            "invalid_grant",
            "invalid_client",
            "unauthorized_client",
        ):
            raise SignInRequired(
                f"the provider refused the refresh token ({body['error']}): sign in again"
            )
        raise ProviderError(
            f"the token endpoint of {server}'s provider answered "
            f"{answer.status_code} {body.get('error', '')}".rstrip()
        )


def mcp_token_storage(
    *,
    user_id: uuid.UUID | str,
    name: str,
    client_metadata: OAuthClientMetadata,
    server_url: str | None = None,
) -> MCPTokenStorage:
    """An MCP SDK `TokenStorage` for the user's MCP config `name` (at `server_url`, by
    default the config's `url`), to pass to `OAuthClientProvider` with the same
    `client_metadata`: tokens in the user's grant,
    the client registration shared by every user of that server, redirect URI and metadata,
    made once and reused."""
    return MCPTokenStorage(
        user_id=as_uuid("user_id", user_id),
        name=name,
        server_url=server_url,
        client_metadata=client_metadata,
    )


__all__ = ["MCPTokenStorage", "launch_parameters", "mcp_token_storage"]
