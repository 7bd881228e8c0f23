"""What stands between the network and the app: host check, body limit, optional token, headers.

Plain ASGI middleware, outermost first: headers (and Gradio's file routes closed) -> TrustedHost (DNS
rebinding) -> body limit and file check -> token -> the FastAPI app with the Gradio chat mounted at /.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import socket
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlencode

MAX_BODY_BYTES = 1_000_000
TOKEN_COOKIE = "qa_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
# Gradio routes that take files from the client; the chat takes text only, so they are closed.
GRADIO_API = ("/gradio_api/", "/queue/", "/run/", "/call/", "/api/predict")
BLOCKED_PREFIXES = ("/gradio_api/upload", "/upload", "/gradio_api/file=/", "/file=/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_host_names(host: str, extra: list[str] | None = None) -> list[str]:
    """Host header values the server answers to: its own names, plus --allow-host ('*' allows any)."""
    names = {host, *LOOPBACK_NAMES}
    if not is_loopback(host):
        names |= {socket.gethostname(), socket.getfqdn()}
    names |= set(extra or [])
    return sorted(n for n in names if n)


async def send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers]})
    await send({"type": "http.response.body", "body": data})


def names_a_file(value) -> bool:
    """True if a JSON value holds anything shaped like Gradio's FileData (a dict with a path or url).

    Gradio copies such a value into its cache and serves it, whichever component it is sent to (even a
    Textbox), so a request naming /etc/shadow would get it back. The chat takes text, never files.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "path" in item or "url" in item or "_type" in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


class RequestGuard:
    """413 for a request body over max_bytes, declared or streamed, before any of it is parsed; 422 for a
    Gradio call that names a file."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        too_big = {"error": f"request body over {self.max_bytes} bytes"}
        declared = dict(scope["headers"]).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            return await send_json(send, 413, too_big)
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await send_json(send, 413, too_big)
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body, replayed = b"".join(parts), False
        if scope["path"].startswith(GRADIO_API) and body:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            if payload is None or names_a_file(payload):
                return await send_json(send, 422, {"error": "the chat takes text only"})

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


class TokenGate:
    """With QA_TOKEN set: REST needs `Authorization: Bearer TOKEN`; a browser opens /?token=TOKEN once
    and keeps it in an HttpOnly cookie. /healthz stays open for liveness probes."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token

    def _ok(self, candidate: str | None) -> bool:
        return bool(candidate) and hmac.compare_digest(candidate.encode(), self.token.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or scope["path"] == "/healthz":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        cookie = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if self._ok(auth.removeprefix("Bearer ").strip()) or (
                TOKEN_COOKIE in cookie and self._ok(cookie[TOKEN_COOKIE].value)):
            return await self.app(scope, receive, send)
        if scope["type"] == "http" and self._ok((query.get("token") or [None])[0]):
            rest = {k: v for k, v in query.items() if k != "token"}
            location = scope["path"] + ("?" + urlencode(rest, doseq=True) if rest else "")
            await send({"type": "http.response.start", "status": 303, "headers": [
                (b"location", location.encode()),
                (b"set-cookie", f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode())]})
            return await send({"type": "http.response.body", "body": b""})
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        return await send_json(send, 401, {"error": "this server needs its token: open /?token=QA_TOKEN in the "
                                                    "browser, or send Authorization: Bearer QA_TOKEN"},
                               [(b"www-authenticate", b"Bearer")])


VIEW_SCRIPT = 'document.getElementById("span")?.scrollIntoView({block:"center"});'
_VIEW_SCRIPT_HASH = base64.b64encode(hashlib.sha256(VIEW_SCRIPT.encode()).digest()).decode()
# The source viewer is static HTML: nothing loads but its own style and its one script.
VIEW_CSP = (f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_VIEW_SCRIPT_HASH}'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
# Gradio's page needs its own inline scripts and styles; nothing may come from elsewhere or frame it.
APP_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
           "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' blob: data:; "
           "worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; object-src 'none'; "
           "base-uri 'self'; form-action 'self'")


class SecurityHeaders:
    """nosniff, no framing, no referrer, a CSP; and Gradio's file routes closed (the chat is text only)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path.startswith(BLOCKED_PREFIXES):
            return await send_json(send, 403, {"error": "file transfer is disabled: the chat takes text only"})
        csp = VIEW_CSP if path.startswith("/view/") else APP_CSP
        extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                 (b"referrer-policy", b"no-referrer"), (b"content-security-policy", csp.encode())]

        not_found: list | None = None  # a JSON 404 from a mounted app, held back to be said our way

        async def with_headers(message):
            nonlocal not_found
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if message["status"] == 404 and headers.get(b"content-type", b"").startswith(b"application/json"):
                    not_found = []
                    return None
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = {**message, "headers": [*message.get("headers", []),
                                                  *[(k, v) for k, v in extra if k not in names]]}
            elif message["type"] == "http.response.body" and not_found is not None:
                not_found.append(message.get("body", b""))
                if message.get("more_body"):
                    return None
                # Gradio answers unknown routes {"detail": "Not Found"}; every JSON error here is {"error": ...}.
                try:
                    body = json.loads(b"".join(not_found) or b"{}")
                except ValueError:
                    body = {}
                detail = body.get("error") or body.get("detail") if isinstance(body, dict) else None
                return await send_json(send, 404, {"error": detail if isinstance(detail, str) and detail != "Not Found"
                                                   else f"no such page: {path}"}, extra)
            await send(message)

        return await self.app(scope, receive, with_headers)
