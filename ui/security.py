"""What stands between the network and the app: host check, body limit, optional token, headers.

Plain ASGI middleware, outermost first: headers (and Gradio's file routes closed) -> HostCheck (DNS
rebinding) -> body limit and file check -> token -> the FastAPI app with the Gradio chat mounted at /.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import json
import re
import socket
import time
from collections.abc import Callable
from urllib.parse import parse_qs, quote, urlencode

from starlette.requests import cookie_parser

MAX_BODY_BYTES = 1_000_000
BODY_DEADLINE_S = 30.0  # a whole request body (1 MB at most) within this; uploads get a rate instead:
UPLOAD_GRACE_S, UPLOAD_MIN_RATE = 30.0, 20_000  # 30 s, then at least 20 kB/s on average
TOKEN_COOKIE = "qa_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
# Gradio routes that take files from the client are closed, except its upload route when the chat's
# Documents panel is on (create_app passes FileUploads): then only that route takes a file body, and only
# the upload event may name the files it saved (see FileUploads).
GRADIO_API = ("/gradio_api/", "/queue/", "/run/", "/call/", "/api/predict")
# Every spelling of Gradio's file routes (file=PATH, file/PATH, relative or absolute) and its URL proxy.
BLOCKED_PREFIXES = ("/gradio_api/upload", "/upload", "/gradio_api/file", "/file=", "/file/", "/gradio_api/proxy",
                    "/proxy=")
# Gradio's run history (it reaches the Hugging Face Hub with the host's token) and monitoring: off in create_app,
# and their routes refused here whatever a later Gradio registers.
# /gradio_api/dev/reload is Gradio's reload mode's stream: never used here, and held open forever it cost CPU.
CLOSED_PREFIXES = ("/gradio_api/run-history", "/gradio_api/runs", "/run-history", "/runs", "/monitoring",
                   "/gradio_api/monitoring", "/gradio_api/dev")
UPLOAD_ROUTE = "/gradio_api/upload"
UPLOAD_PROGRESS_ROUTE = "/gradio_api/upload_progress"  # progress events of an upload: no file goes either way
_CALL_ROUTE = re.compile(r"/gradio_api/(?:run|api|call)/([^/]+)/?")
_NAMED_CALL = re.compile(r"/gradio_api/(?:run|api|call|call/v2)/([^/]+)/?")  # a call that names its endpoint
_FILE_KEYS = {"path", "url", "size", "orig_name", "mime_type", "is_stream", "meta"}


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


def same_origin(scope) -> bool:
    """True unless the request carries an Origin header naming another site than the Host it was sent to."""
    headers = dict(scope.get("headers", []))
    origins = [v for k, v in scope.get("headers", []) if k == b"origin"]
    if not origins:
        return True  # same-origin GETs and non-browser clients send none
    if len(origins) > 1:
        return False  # no browser sends two; which one a check reads must not matter
    origin = origins[0]
    netloc = origin.decode("latin-1").partition("://")[2].rstrip("/").lower()
    return bool(netloc) and netloc == headers.get(b"host", b"").decode("latin-1").lower()


class HostCheck:
    """Only the bound host names are answered, which stops DNS rebinding (Starlette's TrustedHostMiddleware rules:
    an exact name or a '*.suffix' pattern; '*' allows any), with the refusal as one line of JSON saying what to do."""

    def __init__(self, app, names: list[str]):
        from starlette.middleware.trustedhost import parse_host_header

        self.app, self.parse = app, parse_host_header
        self.names = [n.lower() for n in names]
        self.any = "*" in self.names

    def _allowed(self, host: str) -> bool:
        return any(host == n or (n.startswith("*") and host.endswith(n[1:])) for n in self.names)

    async def __call__(self, scope, receive, send):
        if self.any or scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        hosts = [v.decode("latin-1") for k, v in scope["headers"] if k == b"host"]
        # Gradio builds its URLs from X-Forwarded-Host when sent, so that name must be one of ours too.
        forwarded = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-host"]
        refused = next((h for h in hosts + forwarded if not self._ok(h)), None)
        if len(hosts) == 1 and len(forwarded) <= 1 and refused is None:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 1008})
        if refused is None:  # two Host headers: this check and the app could each read a different one
            return await send_json(send, 400, {"error": "a request must carry exactly one Host header"})
        shown = ascii(refused[:100])[1:-1]
        return await send_json(send, 400, {"error": f"this server does not answer to the host name {shown!r}: "
                                                    "start it with --allow-host NAME to allow it"})

    def _ok(self, raw: str) -> bool:
        parsed = [self.parse(part.strip()) for part in raw.split(",")]  # a proxy chain lists several
        return all(p is not None and self._allowed(p.host.lower()) for p in parsed)


def validation_line(error: dict) -> str:
    """One line from a validation error (pydantic's shape): where in the body, and what is wrong."""
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    return f"{where or 'body'}: {error.get('msg', 'invalid request')}"


def _first_line(message: str) -> str:
    """A Gradio error's first line, without the object addresses Python prints."""
    line = next((part.strip() for part in message.splitlines() if part.strip()), "the call failed")
    return re.sub(r"<[^<>]* object at 0x[0-9a-fA-F]+>", "<object>", line)[:300]


def _detail_line(detail, status: int, path: str) -> str:
    """One line from a {"detail": ...} body: a string as it is, a validation error list as its first message."""
    if status == 404 and detail in ("Not Found", None):
        return f"no such page: {path}"
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return validation_line(detail[0])
    return detail if isinstance(detail, str) else json.dumps(detail)[:200]


async def send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers]})
    await send({"type": "http.response.body", "body": data})


MAX_JSON_DEPTH = 32  # a chat call nests 5 deep; a history of messages with content parts, under 10


def _finite(text: str) -> float:
    """A JSON number as a float, refused when it overflows (1e309 reached Gradio's slider as inf: a traceback)."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _not_a_number(text: str):
    raise ValueError(f"{text} is not JSON")


def nested_deeper(value, limit: int) -> bool:
    """True if a parsed JSON value nests lists and objects more than `limit` deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


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


class FileUploads:
    """The one Gradio call that may name files: the upload event's, with every file a FileData whose path
    resolves inside Gradio's upload folder (what its upload route saved), no URL of another place, and
    files nowhere else in the call. Everything else that names a file stays refused.

    fn_ids / api_names: the upload event's Gradio function ids and API name; in_upload_folder(path) says
    whether a path resolves (links followed) to a file in Gradio's upload folder; sweep() deletes uploads
    left unclaimed there and returns the bytes still waiting, which may not pass max_waiting_bytes.
    """

    def __init__(self, fn_ids: set[int], api_names: set[str], in_upload_folder: Callable[[object], bool],
                 max_request_bytes: int, sweep: Callable[[], tuple[int, int]] = lambda: (0, 0),
                 max_waiting_bytes: int = 0, max_waiting_files: int = 0):
        self.fn_ids, self.api_names = fn_ids, api_names
        self.in_upload_folder, self.max_request_bytes = in_upload_folder, max_request_bytes
        self.sweep, self.max_waiting_bytes, self.max_waiting_files = sweep, max_waiting_bytes, max_waiting_files
        self.reserved = 0  # bytes of uploads under way that have arrived, not yet on the sweep's count
        self.waiting = 0  # bytes waiting in the upload folder at the last sweep
        self.admit = asyncio.Lock()  # the sweep and the check: one request at a time

    async def admit_upload(self, size: int) -> str | None:
        """Whether an upload declaring `size` bytes fits now; the reason it must wait, or None.

        Under one lock, and the sweep walks the folder off the event loop. What an upload holds is what it
        has sent (charge), not what it declared: held uploads declaring 200 MB each and trickling at the
        minimum rate kept every other upload out for hours."""
        async with self.admit:
            self.waiting, files = await asyncio.to_thread(self.sweep)
            if self.max_waiting_files and files >= self.max_waiting_files:
                return f"{files} uploaded files are waiting to be indexed"
            if self.max_waiting_bytes and self.waiting + self.reserved + size > self.max_waiting_bytes:
                return f"{(self.waiting + self.reserved) // 1_000_000} MB of uploads are waiting to be indexed"
            return None

    def charge(self, size: int) -> bool:
        """Count `size` more bytes of an upload under way; False once the waiting uploads pass the cap (parallel
        uploads admitted together cannot all land: 20 of them left 26.6 MB waiting under an 8 MB cap)."""
        self.reserved += size
        return not self.max_waiting_bytes or self.waiting + self.reserved <= self.max_waiting_bytes

    def release(self, size: int) -> None:
        self.reserved -= size

    def _targets_upload(self, path: str, payload: dict) -> bool:
        fn_index = payload.get("fn_index")
        if path.rstrip("/") == "/gradio_api/queue/join":
            return fn_index in self.fn_ids
        call = _CALL_ROUTE.fullmatch(path)
        if not call:
            return False
        # Gradio takes fn_index over the name in the path, so both must point at the upload event.
        return call[1] in self.api_names and (fn_index is None or fn_index in self.fn_ids)

    def _file_ok(self, item, host: str) -> bool:
        if not isinstance(item, dict) or set(item) - _FILE_KEYS or "path" not in item:
            return False
        if item.get("meta") != {"_type": "gradio.FileData"} or item.get("is_stream"):
            return False
        if any(isinstance(v, (dict, list)) for k, v in item.items() if k != "meta"):
            return False
        path, url = item["path"], item.get("url")
        # The browser echoes the URL Gradio's file route would give this very path on this host; Gradio
        # does not read it (no proxy). Any other URL (http://elsewhere, another path) is refused.
        own = f"/gradio_api/file={path}"
        if url is not None and url not in (own, f"http://{host}{own}", f"https://{host}{own}"):
            return False
        return self.in_upload_folder(path)

    def allows(self, path: str, payload, host: str = "") -> bool:
        """True if this Gradio call is the upload event and names only files Gradio's upload route saved."""
        if not isinstance(payload, dict) or not self._targets_upload(path, payload):
            return False
        data = payload.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], list) or not data[0]:
            return False
        if names_a_file(data[1:]) or names_a_file({k: v for k, v in payload.items() if k != "data"}):
            return False
        return all(self._file_ok(item, host) for item in data[0])


def _no_such_endpoint(name: str) -> dict:
    return {"error": f"no such endpoint: {ascii(name[:60])[1:-1]} (see /gradio_api/info)"}


class RequestGuard:
    """413 for a request body over max_bytes, declared or streamed, before any of it is parsed; 422 for a
    Gradio call that names a file (unless `uploads` allows it). With `uploads`, Gradio's upload route takes
    bodies up to uploads.max_request_bytes, streamed through (not held in memory)."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES, uploads: FileUploads | None = None,
                 endpoints: set[str] | None = None, fn_ids: set[int] | None = None):
        self.app, self.max_bytes, self.uploads, self.endpoints = app, max_bytes, uploads, endpoints
        self.fn_ids = fn_ids

    async def _upload(self, scope, receive, send):
        """Gradio's upload route, its body counted as it streams: past the limit the app is cut off, 413;
        slower than UPLOAD_MIN_RATE on average after UPLOAD_GRACE_S, 408."""
        limit = self.uploads.max_request_bytes
        too_big = {"error": f"upload over {limit // 1_000_000} MB"}
        declared = dict(scope["headers"]).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return await send_json(send, 413, too_big)
        refusal = await self.uploads.admit_upload(int(declared) if declared and declared.isdigit() else 0)
        if refusal:
            return await send_json(send, 429, {"error": f"{refusal}: index them, or try again in a few minutes"})
        size, over, slow, full, started, failed = 0, False, False, False, False, False
        began = time.monotonic()

        async def counted():
            nonlocal size, over, slow, full
            if over or slow or full:
                return {"type": "http.disconnect"}
            allowed = began + UPLOAD_GRACE_S + size / UPLOAD_MIN_RATE - time.monotonic()
            try:
                message = await asyncio.wait_for(receive(), timeout=max(allowed, 0.01))
            except TimeoutError:
                slow = True
                return {"type": "http.disconnect"}
            size += len(message.get("body", b""))
            full = not self.uploads.charge(len(message.get("body", b"")))
            if size > limit:
                over = True
            if over or full:
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal started, failed
            if over or slow or full or failed:
                return
            if message["type"] == "http.response.start" and message["status"] >= 500:
                # Gradio raises on a malformed form (a file field without a filename): a client error, said so.
                failed = True
                return
            started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if started and not (over or slow or full or failed):
                raise  # a response is under way: nothing to replace it with
            failed = not (over or slow or full)  # over a limit is a 413 or 429, too slow a 408; else the form
        finally:
            self.uploads.release(size)
        if over and not started:
            await send_json(send, 413, too_big)
        elif full and not started:
            await send_json(send, 429, {"error": "uploads waiting to be indexed reached their limit: index them, "
                                                 "or try again in a few minutes"})
        elif slow and not started:
            await send_json(send, 408, {"error": "the upload arrived too slowly"})
        elif failed and not started:
            await send_json(send, 400, {"error": "the upload could not be read: send files as multipart "
                                                 "form fields named 'files', each with a filename"})
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        if self.uploads is not None and scope["path"] == UPLOAD_ROUTE and scope["method"] == "POST":
            return await self._upload(scope, receive, send)
        named = _NAMED_CALL.fullmatch(scope["path"])
        unknown_name = named[1] if named and self.endpoints is not None and named[1] not in self.endpoints else None
        too_big = {"error": f"request body over {self.max_bytes} bytes"}
        declared = dict(scope["headers"]).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            return await send_json(send, 413, too_big)
        parts, size, deadline = [], 0, time.monotonic() + BODY_DEADLINE_S
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(deadline - time.monotonic(), 0.01))
            except TimeoutError:  # a body trickled in a byte at a time held a connection (and a file) forever
                return await send_json(send, 408, {"error": f"the request body did not arrive within "
                                                            f"{BODY_DEADLINE_S:.0f} s"})
            if message["type"] == "http.disconnect":
                return None
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await send_json(send, 413, too_big)
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body, replayed = b"".join(parts), False
        if unknown_name is not None and not body:
            return await send_json(send, 404, _no_such_endpoint(unknown_name))
        if scope["path"].startswith(GRADIO_API) and body:
            try:
                payload = json.loads(body, parse_constant=_not_a_number, parse_float=_finite)
            except (ValueError, RecursionError):  # deep nesting: Python's parser gives up with a RecursionError
                payload = None
            if payload is None or nested_deeper(payload, MAX_JSON_DEPTH):
                # Gradio and pydantic would recurse over it too: a plain-text 500 and a traceback in the log
                return await send_json(send, 422, {"error": "the body is not valid JSON, or nested too deeply"})
            fn_index = payload.get("fn_index") if isinstance(payload, dict) else None
            if unknown_name is not None and fn_index is None:
                # Gradio looks the name up in a dict and fails with a KeyError: a 500 and a traceback in the log.
                # (With a fn_index Gradio ignores the name: the page's own queue-less events, an example's
                # click among them, post to /run/predict.)
                return await send_json(send, 404, _no_such_endpoint(unknown_name))
            if self.fn_ids is not None and fn_index is not None and (
                    type(fn_index) is not int or fn_index not in self.fn_ids):
                # Gradio indexes its functions with it: 9999 or -1 was a 500 and a traceback in the log
                return await send_json(send, 404, {"error": "no such function (fn_index; see /gradio_api/info)"})
            if (names_a_file(payload) and not (
                    self.uploads is not None and self.uploads.allows(
                        scope["path"], payload, dict(scope["headers"]).get(b"host", b"").decode("latin-1")))):
                return await send_json(send, 422, {"error": "the chat takes text only"})

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


TOKEN_CHARS = re.compile(r"[A-Za-z0-9._~+/=!#$%&'*^`|-]{1,512}")


def check_token(token: str) -> None:
    """QA_TOKEN must be one a client can send as it is: printable ASCII with no space, quote, comma or ';'
    (headers arrive as latin-1, URLs and cookies split at those)."""
    if not TOKEN_CHARS.fullmatch(token):
        from index.errors import UsageError

        raise UsageError("QA_TOKEN must be up to 512 printable ASCII characters without spaces, quotes, ',', ';' "
                         "or '\\' (for example: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")


class TokenGate:
    """With QA_TOKEN set: REST needs `Authorization: Bearer TOKEN`; a browser opens /?token=TOKEN once and
    keeps a session in an HttpOnly cookie. /healthz stays open for liveness probes.

    The cookie holds a random value of this server process, never the token: browsers send a host's cookies
    to every port of it, so another web app on the same machine would otherwise receive the secret."""

    def __init__(self, app, token: str):
        import secrets

        self.app, self.token = app, token
        self.session = secrets.token_urlsafe(32)

    @staticmethod
    def _same(candidate: str | None, secret: str) -> bool:
        return bool(candidate) and hmac.compare_digest(candidate.encode("utf-8", "replace"), secret.encode())

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or scope["path"] == "/healthz":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        # Starlette's parser, as browsers read cookies: SimpleCookie dropped them all when another app's
        # cookie on this host held a space, a quote or JSON (a 401 after a good login).
        cookie = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        scheme, _, credential = auth.partition(" ")  # the scheme is case-insensitive (RFC 9110)
        if (scheme.lower() == "bearer" and self._same(credential.strip(), self.token)) or (
                self._same(cookie.get(TOKEN_COOKIE), self.session)):
            return await self.app(scope, receive, send)
        if scope["type"] == "http" and self._same((query.get("token") or [None])[0], self.token):
            rest = {k: v for k, v in query.items() if k != "token"}
            # Back to the same page on this server: "//host/x" would leave it, and raw CR/LF would break the header.
            location = quote("/" + scope["path"].lstrip("/"), safe="/-._~!$&'()*+,;=:@%")
            location += "?" + urlencode(rest, doseq=True) if rest else ""
            secure = "; Secure" if scope.get("scheme") == "https" else ""
            await send({"type": "http.response.start", "status": 303, "headers": [
                (b"location", location.encode("ascii")),
                (b"set-cookie",
                 f"{TOKEN_COOKIE}={self.session}; HttpOnly; SameSite=Strict; Path=/{secure}".encode())]})
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
    """nosniff, no framing, no referrer, a CSP; and Gradio's file routes closed (its upload route open, for
    POST only, when uploads is true)."""

    def __init__(self, app, uploads: bool = False):
        self.app, self.uploads = app, uploads

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        csp = VIEW_CSP if path.startswith("/view/") else APP_CSP
        extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                 (b"referrer-policy", b"no-referrer"), (b"content-security-policy", csp.encode())]
        if not same_origin(scope):
            # Another web page (another port on this machine included) may not drive the chat or the API:
            # Gradio's CORS would let local pages read replies, and a form could post files from anywhere.
            return await send_json(send, 403, {"error": "cross-origin requests are refused"}, extra)
        upload = self.uploads and ((path == UPLOAD_ROUTE and scope["method"] == "POST")
                                   or (path == UPLOAD_PROGRESS_ROUTE and scope["method"] == "GET"))
        if path.startswith(BLOCKED_PREFIXES) and not upload:
            return await send_json(send, 403, {"error": "file transfer is disabled: the chat takes text only"}, extra)
        if any(path.rstrip("/") == c or path.startswith(c + "/") for c in CLOSED_PREFIXES):
            return await send_json(send, 404, {"error": f"no such page: {path[:100]}"}, extra)

        held: dict | None = None  # a JSON 4xx held back until its body shows whether it is Gradio's {"detail": ...}
        failed: int | None = None  # a plain-text 5xx from Gradio (its traceback's last line): said as one JSON line

        def with_extra(start: dict) -> dict:
            names = {k.lower() for k, _ in start.get("headers", [])}
            return {**start, "headers": [*start.get("headers", []), *[(k, v) for k, v in extra if k not in names]]}

        async def with_headers(message):
            nonlocal held, failed
            if failed is not None:
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    await send_json(send, failed, {"error": "the chat could not handle this call: see "
                                                            "/gradio_api/info for its endpoints and inputs"}, extra)
                return None
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                json_body = headers.get(b"content-type", b"").startswith(b"application/json")
                if json_body and (400 <= message["status"] < 500
                                  or (message["status"] >= 500 and path.startswith(GRADIO_API))):
                    held = {"start": message, "body": []}
                    return None
                if message["status"] >= 500 and not json_body and path.startswith(GRADIO_API):
                    failed = message["status"]
                    return None
                message = with_extra(message)
            elif message["type"] == "http.response.body" and held is not None:
                held["body"].append(message.get("body", b""))
                if message.get("more_body"):
                    return None
                raw, status = b"".join(held["body"]), held["start"]["status"]
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                # Gradio and Starlette answer {"detail": ...}; every JSON error here is {"error": "one line"}.
                if isinstance(body, dict) and "error" not in body and "detail" in body:
                    return await send_json(send, status, {"error": _detail_line(body["detail"], status, path)}, extra)
                if isinstance(body, dict) and status >= 500 and isinstance(body.get("error"), str):
                    # Gradio's 500s on a malformed call spell out its inputs, memory addresses included.
                    return await send_json(send, status, {**body, "error": _first_line(body["error"])}, extra)
                await send(with_extra(held["start"]))
                return await send({"type": "http.response.body", "body": raw})
            await send(message)

        return await self.app(scope, receive, with_headers)
