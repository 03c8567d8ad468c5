"""What keeps a web page the user visits from using the API: the Host check (DNS rebinding), the refusal of
cross-site state-changing requests (a form or ``fetch`` from another origin needs no preflight), and security
headers on every response (no framing, no sniffing, no script in served files).

An ASGI middleware each; ``install(app, settings)`` adds them in order.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from fastapi import FastAPI

from rag.settings import Settings

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
# Swagger UI and ReDoc (/docs, /redoc) are FastAPI's pages, loaded from their CDN with an inline script; they
# hold no documents, so they get what they need and nothing more.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "font-src https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
            "https://cdn.redoc.ly; worker-src blob:; frame-ancestors 'none'")


def host_name(host: str) -> str:
    """The name of a ``Host`` header or an origin's netloc, without the port: ``[::1]:8000`` -> ``::1``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_hosts(settings: Settings) -> frozenset[str]:
    names = set(LOOPBACK_HOSTS) | {host_name(h) for h in settings.allowed_hosts}
    if settings.host not in ("0.0.0.0", "::", ""):
        names.add(host_name(settings.host))
    return frozenset(names)


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in HEADERS.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Adds ``HEADERS`` to every response that does not set them itself (a served file sets its own CSP)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        extra = dict(HEADERS, **({"content-security-policy": DOCS_CSP} if path in ("/docs", "/redoc") else {}))

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((k.encode(), v.encode()) for k, v in extra.items()
                                                    if k.encode() not in present)]}
            await send(message)

        await self.app(scope, receive, with_headers)


class HostCheck:
    """400 unless the ``Host`` header names this server: loopback names, the bound host, ``RAG_ALLOWED_HOSTS``.
    A DNS-rebinding page reaches 127.0.0.1 under its own name, and is refused here."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.any = "*" in settings.allowed_hosts
        self.names = allowed_hosts(settings)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket") or self.any:
            await self.app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        # The address the client connected to is this server's own (``rag serve --host 192.168.1.5`` reached by
        # its address); a rebinding page connects to it under the attacker's name, never under that address.
        server = scope.get("server") or ("",)
        if host_name(host) not in self.names and host_name(host) != str(server[0]).lower():
            await _refuse(send, 400, f"this server does not answer to the host {host[:100]!r}; add the name to "
                                     "RAG_ALLOWED_HOSTS to reach it under that name")
            return
        await self.app(scope, receive, send)


class CrossSiteCheck:
    """403 for a state-changing request (POST, PUT, PATCH, DELETE) sent by a page of another origin: a browser
    says so in ``Sec-Fetch-Site`` and ``Origin``, which a page cannot forge. Same-origin pages (the one at ``/``),
    ``RAG_CORS_ORIGINS`` and clients that are not browsers (no such headers) pass. Keys or not: with no key set,
    this is all that stops a page from uploading a document that runs script."""

    def __init__(self, app, settings: Settings) -> None:
        self.app = app
        self.origins = frozenset(o.rstrip("/").lower() for o in settings.cors_origins)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1").strip().rstrip("/").lower()
        fetch_site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        listed = origin in self.origins
        if origin and not listed and (origin == "null" or urlsplit(origin).netloc != host):
            await _refuse(send, 403, f"cross-site request refused: a page of {origin[:100]} may not "
                                     f"{scope['method']} here (list its origin in RAG_CORS_ORIGINS to allow it)")
            return
        if fetch_site in ("cross-site", "same-site") and not listed:
            await _refuse(send, 403, f"cross-site request refused: a page of another site ({fetch_site}) may not "
                                     f"{scope['method']} here (list its origin in RAG_CORS_ORIGINS to allow it)")
            return
        await self.app(scope, receive, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Outermost first: headers on every answer (refusals included), then Host, then cross-site."""
    app.add_middleware(CrossSiteCheck, settings=settings)
    app.add_middleware(HostCheck, settings=settings)
    app.add_middleware(SecurityHeaders)
