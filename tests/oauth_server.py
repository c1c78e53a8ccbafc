"""An MCP server with its own OAuth 2.1 authorization server, run by the tests on loopback:
dynamic client registration, PKCE, short-lived access tokens, and refresh tokens rotated on
every use, a reused one revoking its whole family (as providers do). `GET /stats` counts
the token endpoint's refreshes, reuses and registrations.

    python -m tests.oauth_server PORT ACCESS_SECONDS
"""

from __future__ import annotations

import secrets
import sys
import time
from typing import Any

import uvicorn
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse


class RotatingProvider:
    """An authorization server in memory, rotating refresh tokens."""

    def __init__(self, access_seconds: int) -> None:
        self.access_seconds = access_seconds
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, tuple[RefreshToken, str]] = {}  # token -> (it, family)
        self.used: dict[str, str] = {}  # rotated refresh token -> family
        self.revoked: set[str] = set()
        self.stats = {"refreshes": 0, "reuses": 0, "registrations": 0, "codes": 0}

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info
        self.stats["registrations"] += 1

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + 300,
            client_id=client.client_id or "",
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        self.stats["codes"] += 1
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: Any, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    def _issue(
        self, client_id: str, scopes: list[str], family: str, resource: str | None
    ) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        expires = int(time.time()) + self.access_seconds
        self.access[access] = AccessToken(
            token=access, client_id=client_id, scopes=scopes, expires_at=expires, resource=resource
        )
        self.refresh[refresh] = (
            RefreshToken(token=refresh, client_id=client_id, scopes=scopes, resource=resource),
            family,
        )
        return OAuthToken(
            access_token=access,
            token_type="Bearer",
            expires_in=self.access_seconds,
            refresh_token=refresh,
            scope=" ".join(scopes) or None,
        )

    async def exchange_authorization_code(
        self, client: Any, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        family = secrets.token_hex(8)
        return self._issue(
            client.client_id, authorization_code.scopes, family, authorization_code.resource
        )

    async def load_refresh_token(self, client: Any, refresh_token: str) -> RefreshToken | None:
        if refresh_token in self.used:  # reuse of a rotated token: the family is revoked
            self.stats["reuses"] += 1
            self._revoke(self.used[refresh_token])
            return None
        found = self.refresh.get(refresh_token)
        return None if found is None else found[0]

    def _revoke(self, family: str) -> None:
        self.revoked.add(family)
        for token, (_, owner) in list(self.refresh.items()):
            if owner == family:
                del self.refresh[token]

    async def exchange_refresh_token(
        self, client: Any, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        self.stats["refreshes"] += 1
        _, family = self.refresh.pop(refresh_token.token)
        self.used[refresh_token.token] = family
        return self._issue(client.client_id, refresh_token.scopes, family, refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        found = self.access.get(token)
        if found is None or (found.expires_at is not None and found.expires_at < time.time()):
            return None
        return found

    async def revoke_token(self, token: Any) -> None:
        return None

    async def exchange_identity_assertion(self, client: Any, params: Any) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "no enterprise identity provider here")


def main() -> None:
    port, access_seconds = int(sys.argv[1]), int(sys.argv[2])
    base = f"http://127.0.0.1:{port}"
    provider = RotatingProvider(access_seconds)
    server = MCPServer(
        "notes",
        auth_server_provider=provider,
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(base),
            resource_server_url=AnyHttpUrl(f"{base}/mcp"),
            client_registration_options=ClientRegistrationOptions(enabled=True),
            validate_token_resource=False,
        ),
    )

    @server.tool()
    def echo(text: str) -> str:
        """Say it back."""
        return text

    @server.custom_route("/stats", methods=["GET"])  # type: ignore[untyped-decorator]
    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(provider.stats)

    uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
