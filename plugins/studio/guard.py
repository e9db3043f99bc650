"""The studio's doors: loopback by default, same-origin requests only, a token when reachable from elsewhere, and
an upload cap. A pure ASGI middleware, so streamed responses (progress events) pass through untouched.

Why each rule: a page on any other site can make the user's browser send requests to ``127.0.0.1`` (so requests
whose ``Origin`` or ``Sec-Fetch-Site`` says they come from elsewhere are refused), or point a name it controls at it
(DNS rebinding: so the ``Host`` must be a loopback name unless a token guards the server).
"""

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
TOKEN_COOKIE = "chromaflow_token"


def is_loopback(host: str) -> bool:
    """``host`` (a name or address, IPv6 with or without brackets) is this machine only."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(value: str) -> str:
    """The name part of a Host header (``[::1]:8765`` -> ``::1``)."""
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Refuses foreign hosts, cross-origin requests, missing tokens and oversized bodies before the app runs."""

    def __init__(self, app: ASGIApp, *, token: str | None, max_body: int) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    def _token_given(self, scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        if b"x-chromaflow-token" in headers:
            return headers[b"x-chromaflow-token"].decode("latin-1")
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            return query["token"][0]
        cookie = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
        return cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if self.token is None and not is_loopback(_host_name(host)):
            await _refuse(
                send, 403, f"host {host!r} refused: the studio answers on this machine's loopback only"
            )
            return
        origin = headers.get(b"origin", b"").decode("latin-1")
        if origin and origin != f"{scope.get('scheme', 'http')}://{host}":
            await _refuse(send, 403, f"cross-origin request from {origin} refused")
            return
        if headers.get(b"sec-fetch-site", b"") == b"cross-site":
            await _refuse(send, 403, "cross-site request refused")
            return
        if self.token is not None:
            given = self._token_given(scope, headers)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                await _refuse(send, 401, "this studio needs its token: open the URL it printed (…?token=…)")
                return
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _refuse(send, 413, f"upload too large: the limit is {self.max_body // (1 << 20)} MiB")
            return
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLargeError(self.max_body)
            return message

        await self.app(scope, capped, self._with_cookie(scope, send))

    def _with_cookie(self, scope: Scope, send: Send) -> Send:
        """``send`` that gives the page its token as a cookie (EventSource and <img> cannot send headers)."""
        if self.token is None:
            return send

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and scope.get("path") == "/":
                cookie = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        return sending


class BodyTooLargeError(Exception):
    """A streamed body went past the cap (the app answers 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"upload too large: the limit is {limit // (1 << 20)} MiB")
