"""`qa serve`: one FastAPI app with the REST API and the Gradio chat mounted at /."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException

from index.collections import DEFAULT_COLLECTION
from index.errors import NotFoundError, QAError, UsageError, said
from index.uploads import MAX_REQUEST_BYTES, MAX_UPLOAD_BYTES, list_documents, remove_document
from qa.engine import check_question
from qa.library import Library
from qa.llm import open_llm

from .conversations import (
    conversation_markdown,
    delete_conversation,
    list_conversations,
    load_conversation,
    store_path,
)
from .render import render_source_page
from .schema import (
    AnswerJSON,
    AskRequest,
    CollectionName,
    Collections,
    ConversationJSON,
    Conversations,
    Deleted,
    Documents,
    Health,
    Removed,
    Sources,
    error_responses,
)
from .security import (
    FileUploads,
    HostCheck,
    RequestGuard,
    SecurityHeaders,
    TokenGate,
    allowed_host_names,
    is_loopback,
    validation_line,
)

ASK_WORKERS = 2  # one per core: more threads only fight over the GIL and starve the event loop


def create_api(library: Library, llms: list[str] | tuple[str, ...] = ()) -> FastAPI:
    """The REST API (and the source viewer) over every collection; user errors become 4xx JSON, never 500.

    llms: the generative backends a request may name (its `llm`); no other, so a client cannot make the
    server connect to an address of its choosing."""
    # /docs serves Swagger UI from the package, not a CDN: it works offline and within the CSP ('self').
    app = FastAPIOffline(title="Grounded QA", version="0.1.0", redoc_url=None, static_url="/docs/static",
                         swagger_ui_parameters={"validatorUrl": None},
                         description="Every answer sentence cites an exact span: source[start:end] == text. "
                                     "Errors are JSON `{\"error\": \"...\"}`.")
    ask_pool = ThreadPoolExecutor(max_workers=ASK_WORKERS, thread_name_prefix="qa-ask")

    @app.exception_handler(UsageError)
    async def usage_error(_: Request, exc: UsageError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError):
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(QAError)
    async def qa_error(_: Request, exc: QAError):
        return JSONResponse({"error": said(exc)}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        if first.get("type") == "json_invalid":  # its loc is a character offset, not a field
            return JSONResponse({"error": f"the body is not valid JSON (at character {first['loc'][-1]})"},
                                status_code=422)
        return JSONResponse({"error": validation_line(first)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # FastAPI's words
            # a body that is not UTF-8, or JSON nested past the parser's limit: the same error as other bad JSON
            return JSONResponse({"error": "the body is not valid JSON (not UTF-8, or nested too deeply)"},
                                status_code=422)
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    offered = tuple(llms)

    def llm_for(request: AskRequest):
        if request.llm is None:
            return None
        if request.llm not in offered:
            raise UsageError(f"llm {request.llm!r} is not offered by this server"
                             + (f" (offered: {', '.join(offered)})" if offered else
                                "; start it with qa serve --llm SPEC or QA_LLM=SPEC"))
        return open_llm(request.llm)

    @app.post("/api/ask", summary="Answer a question with exact citations", response_model=AnswerJSON,
              responses=error_responses(400, 401, 404, 405, 413, 422, 503))
    async def ask(request: AskRequest) -> dict:
        # CPU work runs on a small pool of its own, so /healthz and the chat stay responsive under load.
        qa = library.get(request.collection)
        work = partial(qa.ask, request.question, history=request.history, k=request.k, mode=request.mode,
                       llm=llm_for(request), show_unsupported=request.show_unsupported)
        answer = await asyncio.get_running_loop().run_in_executor(ask_pool, work)
        return answer.to_json()

    @app.post("/api/ask/stream", summary="Answer a question, streaming a generated answer's tokens (SSE)",
              response_class=StreamingResponse,
              responses={200: {"description": (
                  "server-sent events: `token` events `{\"text\": ..., \"draft\": true}` while an llm writes "
                  "(unguarded drafts: not the answer), then one `answer` event with the guarded Answer JSON, "
                  "or one `error` event `{\"error\": ...}`"), "content": {"text/event-stream": {}}},
                  **error_responses(400, 401, 404, 405, 413, 422, 503)})
    async def ask_stream(request: AskRequest) -> StreamingResponse:
        qa = library.get(request.collection)
        llm = llm_for(request)
        check_question(request.question, request.k, request.mode)  # a bad request is a 4xx, before the stream
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def put(kind: str, data: dict) -> None:
            loop.call_soon_threadsafe(events.put_nowait, (kind, data))

        def work() -> None:
            try:
                answer = qa.ask(request.question, history=request.history, k=request.k, mode=request.mode, llm=llm,
                                show_unsupported=request.show_unsupported,
                                on_token=lambda text: put("token", {"text": text, "draft": True}))
                put("answer", answer.to_json())
            except QAError as exc:
                put("error", {"error": str(exc)})
            except BaseException:
                put("error", {"error": "internal error while answering"})
                raise

        loop.run_in_executor(ask_pool, work)

        async def stream():
            while True:
                kind, data = await events.get()
                yield f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
                if kind != "token":
                    return

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/sources", summary="List indexed sources", response_model=Sources,
             responses=error_responses(401, 404, 405, 422, 503))
    def sources(collection: CollectionName = DEFAULT_COLLECTION) -> dict:
        return {"sources": library.get(collection).index.sources()}

    @app.get("/api/collections", summary="List collections: documents, chunks, size, last indexed",
             response_model=Collections, responses=error_responses(401, 405))
    def collections() -> dict:
        return {"collections": [c.to_json() for c in library.collections()]}

    @app.get("/api/collections/{name}/documents", summary="A collection's documents with their chunk counts",
             response_model=Documents, responses=error_responses(401, 404, 405, 422))
    def documents(name: CollectionName) -> dict:
        found = list_documents(library.settings, name)
        return {"collection": name, "documents": [{"source": s, "chunks": n} for s, n in found]}

    # A plain def: FastAPI runs it on its thread pool, so re-indexing never blocks the event loop.
    @app.delete("/api/collections/{name}/documents/{source:path}", response_model=Removed,
                summary="Remove a document from an upload collection and re-index it",
                responses=error_responses(400, 401, 404, 405, 422, 503))
    def remove_document_route(name: CollectionName, source: str) -> dict:
        report = remove_document(library.settings, name, source)
        return {"removed": source, "documents": report.documents, "chunks": report.chunks}

    saved = store_path(library.settings.index_dir)  # the chat's conversations, in the index root

    def find(conversation_id: str):
        conversation = load_conversation(saved, conversation_id)
        if conversation is None:
            raise NotFoundError(f"no saved conversation {conversation_id!r}")
        return conversation

    @app.get("/api/conversations", summary="List the chat's saved conversations", response_model=Conversations,
             responses=error_responses(401, 405, 503))
    def conversations() -> dict:
        return {"conversations": [c.summary_json() for c in list_conversations(saved)]}

    @app.get("/api/conversations/{conversation_id}", summary="A saved conversation with each turn's Answer JSON",
             response_model=ConversationJSON, responses=error_responses(401, 404, 405, 422, 503))
    def conversation(conversation_id: str) -> dict:
        return find(conversation_id).to_json()

    @app.get("/api/conversations/{conversation_id}/markdown", summary="A saved conversation as Markdown",
             response_class=Response, responses={200: {"description": "each answer with its exact cited text",
                                                       "content": {"text/markdown": {"schema": {"type": "string"}}}},
                                                 **error_responses(401, 404, 405, 422, 503)})
    def conversation_as_markdown(conversation_id: str) -> Response:
        found = find(conversation_id)
        name = "-".join(re.findall(r"[a-z0-9]+", found.title.lower()))[:60] or "conversation"
        return Response(conversation_markdown(found), media_type="text/markdown; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.md"'})

    @app.delete("/api/conversations/{conversation_id}", summary="Delete a saved conversation", response_model=Deleted,
                responses=error_responses(401, 404, 405, 422, 503))
    def forget(conversation_id: str) -> dict:
        if not delete_conversation(saved, conversation_id):
            raise NotFoundError(f"no saved conversation {conversation_id!r}")
        return {"deleted": conversation_id}

    # response_class=Response has no media type of its own, so the errors are documented as the JSON they are.
    @app.get("/api/sources/{source:path}", summary="Canonical text of an indexed source", response_class=Response,
             responses={200: {"description": "the canonical text",
                              "content": {"text/plain": {"schema": {"type": "string"}}}},
                        **error_responses(401, 404, 405, 422, 503)})
    def source(source: str, collection: CollectionName = DEFAULT_COLLECTION) -> PlainTextResponse:
        return PlainTextResponse(library.get(collection).source_text(source))

    @app.get("/view/{source:path}", response_class=HTMLResponse, include_in_schema=False)
    def view(source: str, start: int | None = None, end: int | None = None,
             collection: CollectionName = DEFAULT_COLLECTION) -> str:
        return render_source_page(source, library.get(collection).source_text(source), start, end)

    @app.get("/healthz", summary="Liveness and index size", response_model=Health,
             responses=error_responses(405, 503))
    async def healthz() -> dict:
        index = await asyncio.get_running_loop().run_in_executor(None, lambda: library.default.index)
        return {"status": "ok", "documents": index.n_documents, "chunks": index.n_chunks}

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    @app.api_route("/api/{rest:path}", methods=methods, include_in_schema=False)
    @app.api_route("/healthz", methods=[m for m in methods if m != "GET"], include_in_schema=False)
    def api_fallback(request: Request) -> JSONResponse:
        """JSON 405 (wrong method on a real route) or 404 (no such route) under /api, not Gradio's pages."""
        path = request.url.path
        allowed = sorted({m for r in app.routes if isinstance(r, APIRoute) and r.endpoint is not api_fallback
                          and r.path_regex.match(path) for m in r.methods})
        if allowed:
            return JSONResponse({"error": f"{request.method} is not allowed on {path}; use {', '.join(allowed)}"},
                                status_code=405, headers={"Allow": ", ".join(allowed)})
        return JSONResponse({"error": f"no such API route: {path}"}, status_code=404)

    return app


def create_app(library: Library, host: str = "127.0.0.1", allow_hosts: list[str] | None = None,
               token: str | None = None, collection: str = DEFAULT_COLLECTION,
               llms: list[str] | tuple[str, ...] = ()) -> FastAPI:
    """The API with the chat mounted at /, behind the host check, body limit, optional token and headers."""
    import gradio as gr

    from .chat import COPY_JS, CSS, build_chat
    from .documents import (DOCUMENTS_CSS, MAX_WAITING_UPLOADS_BYTES, MAX_WAITING_UPLOADS_FILES, UPLOAD_API,
                            in_upload_folder, sweep_upload_folder)

    app = create_api(library, llms)
    # Gradio serves nothing from disk beyond its own assets: no allowed paths, the index root and the
    # corpora blocked outright, and its file routes closed in SecurityHeaders (its upload route open, POST only).
    blocked = {str(library.settings.index_dir.resolve()), str(library.settings.corpus.resolve())}
    blocked |= {c.corpus for c in library.collections() if c.corpus}
    demo = build_chat(library, collection, llms)
    # Uploads (the Documents panel): Gradio's upload route takes files up to the limits, and only the upload
    # event may name them, by paths inside Gradio's upload folder (FileUploads); the rest stays closed.
    uploads = FileUploads({i for i, fn in demo.fns.items() if fn.api_name == UPLOAD_API}, {UPLOAD_API},
                          in_upload_folder, MAX_REQUEST_BYTES, sweep_upload_folder, MAX_WAITING_UPLOADS_BYTES,
                          MAX_WAITING_UPLOADS_FILES)
    app = gr.mount_gradio_app(app, demo, path="/", css=CSS + DOCUMENTS_CSS, js=COPY_JS, footer_links=["api"],
                              theme=gr.themes.Soft(primary_hue="blue"), allowed_paths=[],
                              blocked_paths=sorted(blocked), max_file_size=MAX_UPLOAD_BYTES,
                              # Run history would keep every answer in the browser and, with a bucket header or a
                              # connect call, reach the Hugging Face Hub with the host's own HF_TOKEN; monitoring
                              # would show anyone the endpoints' counts and latencies.
                              run_history=False, enable_monitoring=False)
    app.add_middleware(RequestGuard, uploads=uploads,
                       endpoints={fn.api_name for fn in demo.fns.values() if isinstance(fn.api_name, str)},
                       fn_ids=set(demo.fns))
    if token:  # outside the body guard: a client without the token is refused before any body is read
        app.add_middleware(TokenGate, token=token)
    names = allowed_host_names(host, allow_hosts)
    app.add_middleware(HostCheck, names=names)
    # outermost: the refusals of the layers inside carry the headers too
    app.add_middleware(SecurityHeaders, uploads=True)
    return app


def check_port(host: str, port: int) -> None:
    """Fail early, in one line, when the address cannot be bound."""
    import socket

    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, got {port}")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise QAError(f"Cannot listen on {host}:{port} ({exc.strerror}): choose another --port or --host") from exc


UPLOAD_FOLDER_PREFIX = "grounded-qa-uploads-"  # then the server's process id


def sweep_upload_folders_of_dead_servers(temp: Path) -> None:
    """Remove the private upload folders that servers killed before their own cleanup left behind: those of
    this user whose process id no longer runs (a reused id keeps its folder: nothing is removed in doubt)."""
    import shutil

    for folder in temp.glob(f"{UPLOAD_FOLDER_PREFIX}*-*"):
        pid = folder.name[len(UPLOAD_FOLDER_PREFIX):].split("-", 1)[0]
        try:
            if not pid.isdigit() or folder.is_symlink() or folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # another user's process, or the folder vanished: leave it
            continue


HEADER_DEADLINE_S = 10.0  # a connection that has not sent a whole request head by then is closed


def with_header_deadline(seconds: float = HEADER_DEADLINE_S):
    """uvicorn's HTTP protocol, closing a connection that sends no complete request head within `seconds`.

    uvicorn waits forever for the rest of a half-sent request, so idle sockets ("slowloris") could take every
    file descriptor and starve the server (hostile tester: 20,000 of them left /healthz unanswered). Only the
    first request head is timed: a keep-alive connection, a long upload or a stream is not cut."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class HeaderDeadline(AutoHTTPProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._deadline = self.loop.call_later(seconds, self._drop_if_silent)

        def _drop_if_silent(self) -> None:
            # no request yet (a WebSocket upgrade hands the transport to another protocol, which is left alone)
            if self.cycle is None and self.transport.get_protocol() is self and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc) -> None:
            self._deadline.cancel()
            super().connection_lost(exc)

    return HeaderDeadline


def serve(library: Library, host: str = "127.0.0.1", port: int = 7860, allow_hosts: list[str] | None = None,
          collection: str = DEFAULT_COLLECTION, llms: list[str] | tuple[str, ...] = ()) -> None:
    """Serve the chat and the API until interrupted."""
    import sys

    import uvicorn
    from threadpoolctl import threadpool_limits

    # One BLAS thread per request thread: with a thread per core per call, concurrent requests on a
    # small machine oversubscribe the cores and throughput collapses (measured 10x in bench/load.py).
    threadpool_limits(limits=1)
    token = os.environ.get("QA_TOKEN") or None
    if not is_loopback(host):
        print(f"warning: --host {host} makes the chat reachable from other machines"
              + ("" if token else "; set QA_TOKEN to require a token"), file=sys.stderr)
    where = f"http://{host}:{port}/" + (" (open it with ?token=QA_TOKEN)" if token else "")
    print(f"Serving the chat on {where}  (API docs: http://{host}:{port}/docs)", file=sys.stderr)
    # Uploads land in a folder of this server's own: the hourly sweep of unindexed uploads deletes old files
    # there, and Gradio's default (/tmp/gradio) is shared with every other Gradio app on the machine.
    private = None
    if not os.environ.get("GRADIO_TEMP_DIR"):
        import tempfile

        sweep_upload_folders_of_dead_servers(Path(tempfile.gettempdir()))
        private = os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix=f"{UPLOAD_FOLDER_PREFIX}{os.getpid()}-")
    # uvicorn shuts down on SIGTERM, then raises the signal again under the handler it found: the default one
    # ended the process there, before the clean-up below. This handler turns it into an exit that runs it.
    previous = signal.signal(signal.SIGTERM, _exit_on_signal) \
        if threading.current_thread() is threading.main_thread() else None
    try:
        uvicorn.run(create_app(library, host, allow_hosts, token, collection, llms), host=host, port=port,
                    log_level="warning", server_header=False, http=with_header_deadline())
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if private:
            import shutil

            shutil.rmtree(private, ignore_errors=True)


def _exit_on_signal(signum, frame) -> None:
    raise SystemExit(128 + signum)
