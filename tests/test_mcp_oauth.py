"""MCP OAuth with the real `mcp` client against an authorization server and MCP server run
on loopback, refresh tokens rotated on use: sign in once, then expired tokens refreshed once
for ten processes at once, and nobody signs in again."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

import faceplate_models as fm
from faceplate_models.config import DatabaseTarget
from faceplate_models.errors import Conflict, NotFound, SignInRequired
from faceplate_models.mcp import launch_parameters, mcp_token_storage
from faceplate_models.store import oauth
from tests.commands import ROOT
from tests.servers import free_port, wait_for_port

pytestmark = pytest.mark.usefixtures("faceplate_db")

# Counted as expired EXPIRY_MARGIN (30 s) before the provider's time: 2 s after issue.
ACCESS_SECONDS = 32
REDIRECT = "http://127.0.0.1:1/callback"
METADATA = OAuthClientMetadata(
    redirect_uris=[REDIRECT],  # type: ignore[list-item]
    client_name="faceplate tests",
    grant_types=["authorization_code", "refresh_token"],
    response_types=["code"],
    token_endpoint_auth_method="none",
)


@pytest.fixture
def provider_url() -> Iterator[str]:
    """The MCP server and its authorization server, on loopback, stopped after the test."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.oauth_server", str(port), str(ACCESS_SECONDS)],
        cwd=ROOT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def stats(base: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base}/stats", timeout=5) as answer:  # noqa: S310 - loopback
        found: dict[str, int] = json.load(answer)
    return found


class Browser:
    """The user's browser: follows the authorization redirect and hands back the code."""

    def __init__(self) -> None:
        self.sign_ins = 0
        self.result: AuthorizationCodeResult | None = None

    async def redirect(self, url: str) -> None:
        self.sign_ins += 1
        async with httpx2.AsyncClient() as http:
            answer = await http.get(url, follow_redirects=False)
        location = httpx2.URL(answer.headers["location"])
        self.result = AuthorizationCodeResult(
            code=location.params["code"], state=location.params.get("state")
        )

    async def callback(self) -> AuthorizationCodeResult:
        assert self.result is not None
        return self.result


async def call_echo(user: fm.User, base: str, browser: Browser, text: str) -> str:
    # The server's URL is the stored config's.
    storage = mcp_token_storage(user_id=user.id, name="notes", client_metadata=METADATA)
    auth = OAuthClientProvider(
        f"{base}/mcp",
        METADATA,
        storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
    )
    async with (
        httpx2.AsyncClient(auth=auth, timeout=20) as http,
        Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client,
    ):
        result = await client.call_tool("echo", {"text": text})
    return str(result.content[0].text)  # type: ignore[union-attr]


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    import faceplate_models as fm
    from tests.test_mcp_oauth import Browser, call_echo

    async def main():
        await fm.init_db(sys.argv[1])
        user = await fm.get_user(user_id=sys.argv[2])
        browser = Browser()
        print(await call_echo(user, sys.argv[3], browser, sys.argv[4]), browser.sign_ins)
        await fm.close_db()

    asyncio.run(main())
    """
)


async def test_sign_in_then_ten_processes_refresh_once_and_nobody_signs_in_again(
    provider_url: str, faceplate_database: DatabaseTarget
) -> None:
    await wait_for_port(int(provider_url.rsplit(":", 1)[1]), 20)
    ada = await fm.get_or_create_user(subject_id="oauth|ada", email="ada@example.com")
    await fm.save_mcp_config(
        user_id=ada.id, name="notes", config={"url": f"{provider_url}/mcp", "transport": "http"}
    )
    browser = Browser()
    assert await call_echo(ada, provider_url, browser, "signed in") == "signed in"
    assert browser.sign_ins == 1
    grant = await oauth.get_mcp_grant(user_id=ada.id, name="notes")
    assert grant is not None and grant.generation == 1 and not grant.expired()
    assert "access_token" not in repr(grant) and grant.access_token not in repr(grant)
    # Used again within the hour: no refresh, no sign-in.
    assert await call_echo(ada, provider_url, browser, "again") == "again"
    assert browser.sign_ins == 1 and stats(provider_url)["refreshes"] == 0

    await asyncio.sleep(ACCESS_SECONDS - 30 + 0.5)  # the access token is about to expire
    assert (await oauth.get_mcp_grant(user_id=ada.id, name="notes")).expired()  # type: ignore[union-attr]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            faceplate_database.url(),
            str(ada.id),
            provider_url,
            f"call {n}",
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(10)
    ]
    outputs = [await asyncio.wait_for(child.communicate(), 120) for child in children]
    for n, (child, (out, err)) in enumerate(zip(children, outputs, strict=True)):
        assert child.returncode == 0, err.decode()[-3000:]
        assert out.decode().split() == ["call", str(n), "0"]  # answered, and no sign-in
    counted = stats(provider_url)
    assert counted["refreshes"] == 1 and counted["reuses"] == 0
    assert counted["registrations"] == 1 and counted["codes"] == 1  # registered once
    refreshed = await oauth.get_mcp_grant(user_id=ada.id, name="notes")
    assert refreshed is not None and refreshed.generation == 2
    assert refreshed.expires_at is not None and grant.expires_at is not None
    assert refreshed.expires_at > grant.expires_at


async def test_an_older_generation_never_overwrites_a_newer_one() -> None:
    ada = await fm.get_or_create_user(subject_id="oauth|gen", email="gen@example.com")
    await fm.save_mcp_config(user_id=ada.id, name="notes", config={"url": "http://x/mcp"})
    at: dict[str, Any] = {"user_id": ada.id, "name": "notes"}
    assert await oauth.get_mcp_grant(**at) is None
    first = await oauth.save_mcp_grant(
        **at, generation=0, access_token="a1", refresh_token="r1", expires_in=0
    )
    assert first.generation == 1
    # Two processes refreshed from generation 1; the second write is refused.
    await oauth.save_mcp_grant(
        **at, generation=1, access_token="a2", refresh_token="r2", expires_in=60
    )
    with pytest.raises(Conflict, match="another process"):
        await oauth.save_mcp_grant(**at, generation=1, access_token="a3", refresh_token="r3")
    stored = await oauth.get_mcp_grant(**at)
    assert stored is not None and (stored.access_token, stored.generation) == ("a2", 2)

    # A refused refresh marks the grant; the newer token is not deleted, and a sign-in heals.
    await oauth.save_mcp_grant(
        **at, generation=2, access_token="a3", refresh_token="r3", expires_in=0
    )

    async def refused(tokens: oauth.GrantTokens) -> dict[str, Any]:
        raise SignInRequired("invalid_grant")

    with pytest.raises(SignInRequired):
        await oauth.refresh_mcp_grant(**at, refresh=refused)
    marked = await oauth.get_mcp_grant(**at)
    assert marked is not None and marked.needs_sign_in and marked.access_token == "a3"
    with pytest.raises(SignInRequired):
        await oauth.refresh_mcp_grant(**at, refresh=refused)
    healed = await oauth.save_mcp_grant(**at, generation=3, access_token="a4", expires_in=60)
    assert not healed.needs_sign_in and healed.generation == 4


async def test_refresh_is_single_flight_within_and_across_callers() -> None:
    ada = await fm.get_or_create_user(subject_id="oauth|flight", email="f@example.com")
    await fm.save_mcp_config(user_id=ada.id, name="notes", config={"url": "http://x/mcp"})
    at: dict[str, Any] = {"user_id": ada.id, "name": "notes"}
    await oauth.save_mcp_grant(
        **at, generation=0, access_token="old", refresh_token="r", expires_in=0
    )
    calls = 0

    async def refresh(tokens: oauth.GrantTokens) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.3)  # the provider is slow: the others wait for it
        return {"access_token": "new", "refresh_token": "r2", "expires_in": 3600}

    got = await asyncio.gather(*(oauth.refresh_mcp_grant(**at, refresh=refresh) for _ in range(8)))
    assert calls == 1 and {t.access_token for t in got} == {"new"}

    async def broken(tokens: oauth.GrantTokens) -> dict[str, Any]:
        raise RuntimeError("network down")

    await oauth.save_mcp_grant(
        **at, generation=2, access_token="x", refresh_token="r3", expires_in=0
    )
    with pytest.raises(RuntimeError):
        await oauth.refresh_mcp_grant(**at, refresh=broken)
    # The lease was given back: the next caller refreshes at once.
    again = await oauth.refresh_mcp_grant(**at, refresh=refresh)
    assert again.access_token == "new" and again.generation == 4


async def test_sign_ins_are_sealed_single_use_and_expire() -> None:
    ada = await fm.get_or_create_user(subject_id="oauth|pkce", email="p@example.com")
    bob = await fm.get_or_create_user(subject_id="oauth|bob", email="b@example.com")
    await fm.save_mcp_config(user_id=ada.id, name="notes", config={"url": "http://x/mcp"})
    verifier = "v" * 64
    await oauth.begin_mcp_sign_in(user_id=ada.id, name="notes", state="s1", code_verifier=verifier)
    with pytest.raises(Conflict):
        await oauth.begin_mcp_sign_in(
            user_id=ada.id, name="notes", state="s1", code_verifier=verifier
        )
    with pytest.raises(NotFound):
        await oauth.complete_mcp_sign_in(user_id=bob.id, state="s1")
    assert await oauth.complete_mcp_sign_in(user_id=ada.id, state="s1") == ("notes", verifier)
    with pytest.raises(NotFound):
        await oauth.complete_mcp_sign_in(user_id=ada.id, state="s1")
    await oauth.begin_mcp_sign_in(
        user_id=ada.id, name="notes", state="s2", code_verifier=verifier, seconds=1
    )
    await asyncio.sleep(1.2)
    with pytest.raises(NotFound):
        await oauth.complete_mcp_sign_in(user_id=ada.id, state="s2")


async def test_launch_parameters_for_each_kind_of_server() -> None:
    ada = await fm.get_or_create_user(subject_id="oauth|launch", email="l@example.com")
    await fm.import_mcp_servers(
        user_id=ada.id,
        document={
            "mcpServers": {
                "files": {"command": "npx", "args": ["-y", "fs"], "env": {"ROOT_TOKEN": "t0k"}},
                "remote": {"url": "https://mcp.example.com/mcp", "headers": {"X-Key": "k3y"}},
            }
        },
    )
    files = await fm.get_mcp_config(user_id=ada.id, name="files", reveal_secrets=True)
    stdio = launch_parameters(files)
    assert (stdio.command, stdio.args, stdio.env) == ("npx", ["-y", "fs"], {"ROOT_TOKEN": "t0k"})  # type: ignore[union-attr]
    remote = await fm.get_mcp_config(user_id=ada.id, name="remote", reveal_secrets=True)
    assert launch_parameters(remote) == {
        "transport": "streamable-http",
        "url": "https://mcp.example.com/mcp",
        "headers": {"X-Key": "k3y"},
    }
    hidden = await fm.get_mcp_config(user_id=ada.id, name="remote")
    with pytest.raises(fm.ValidationError, match="reveal_secrets"):
        launch_parameters(hidden)


async def test_erasure_revokes_grants_best_effort_and_counts_what_it_deleted() -> None:
    ada = await fm.get_or_create_user(subject_id="oauth|erase", email="e@example.com")
    for name in ("a", "b"):
        await fm.save_mcp_config(user_id=ada.id, name=name, config={"url": "http://x/mcp"})
        await oauth.save_mcp_grant(user_id=ada.id, name=name, generation=0, access_token=name)
    seen: list[tuple[str, str]] = []

    async def revoke(name: str, tokens: oauth.GrantTokens) -> None:
        seen.append((name, tokens.access_token))
        if name == "b":
            raise OSError("the provider is down")

    erased = await fm.delete_user(user_id=ada.id, revoke=revoke)
    assert sorted(seen) == [("a", "a"), ("b", "b")]
    assert (erased["revoked"], erased["revocations_failed"]) == (1, 1)
    assert (erased["users"], erased["mcp_configs"], erased["oauth_grants"]) == (1, 2, 2)
    with pytest.raises(NotFound):
        await fm.get_user(user_id=ada.id)
