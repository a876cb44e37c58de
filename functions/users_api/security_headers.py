"""Protective response headers on every response, whoever serves the app (pure ASGI).

- `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`, `X-Frame-Options: DENY`.
- `Cache-Control`: `no-store` by default (user data, health, errors: nothing personal lands
  in a browser's or a proxy's cache); the documentation may be cached briefly: the /docs
  and /redoc pages an hour, `/openapi.json` five minutes (it changes with each deploy). A
  header the app set itself wins.
- `Content-Security-Policy`: the JSON API loads nothing (`default-src 'none'`); the
  documentation pages load Swagger UI / ReDoc from the app itself (`routes/docs.py`, no
  CDN) and run one inline script each, allowed by its SHA-256 hash (computed from the page
  as sent, so it follows the root path written into it) instead of `'unsafe-inline'`.
- `Strict-Transport-Security` when the request came over HTTPS: through API Gateway (or a
  function URL; the event is in the scope) or a TLS-terminating server. Browsers ignore it
  on plain http, which is why local serving does not send it.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Header values as the ASGI messages carry them (bytes), encoded once, not per request.
NO_STORE = b"no-store"
CACHE_RULES = {
    "/docs": b"public, max-age=3600",
    "/docs/oauth2-redirect": b"public, max-age=3600",
    "/redoc": b"public, max-age=3600",
    "/openapi.json": b"public, max-age=300",
}
DOCS_PAGES = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
HSTS = b"max-age=31536000; includeSubDomains"
API_CSP = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"
# What the documentation pages load, all from the app (routes/docs.py): Swagger UI's and
# ReDoc's scripts and styles, inline styles and data: images they generate, ReDoc's web
# worker (a blob: URL). Nothing from another origin, so the pages work offline.
DOCS_CSP = (
    "default-src 'none'; "
    "script-src 'self' {hashes}; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "font-src 'self' data:; "
    "connect-src 'self'; "
    "worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)

Headers = list[tuple[bytes, bytes]]


def route_path(scope: Scope) -> str:
    """The path below the root path (a stage prefix, when a server keeps it in the path)."""
    path: str = scope["path"]
    root: str = scope.get("root_path") or ""
    if root and path.startswith(root + "/"):
        return path[len(root) :]
    return path


def served_over_https(scope: Scope) -> bool:
    return scope.get("aws.event") is not None or scope.get("scheme") == "https"


def docs_csp(html: bytes) -> str:
    hashes = (
        "'sha256-" + base64.b64encode(hashlib.sha256(script).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    )
    return DOCS_CSP.format(hashes=" ".join(hashes))


def with_defaults(headers: Headers, defaults: dict[bytes, bytes]) -> Headers:
    """`headers` plus each default whose name is not set yet."""
    present = {name.lower() for name, _ in headers}
    return [*headers, *((k, v) for k, v in defaults.items() if k not in present)]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        defaults = {
            b"x-content-type-options": b"nosniff",
            b"referrer-policy": b"no-referrer",
            b"x-frame-options": b"DENY",
            b"cache-control": CACHE_RULES.get(path, NO_STORE),
        }
        if served_over_https(scope):
            defaults[b"strict-transport-security"] = HSTS
        if path in DOCS_PAGES:
            await self._docs_page(scope, receive, send, defaults)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = with_defaults(
                    list(message.get("headers", [])),
                    {**defaults, b"content-security-policy": API_CSP},
                )
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _docs_page(
        self, scope: Scope, receive: Receive, send: Send, defaults: dict[bytes, bytes]
    ) -> None:
        """Hold a documentation page (a few kB) until its body is complete: its CSP
        names the hashes of its inline scripts."""
        start: Message | None = None
        body = bytearray()

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            csp = docs_csp(bytes(body)).encode()
            headers = with_defaults(
                list(start.get("headers", [])), {**defaults, b"content-security-policy": csp}
            )
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": bytes(body)})

        await self.app(scope, receive, buffer)
