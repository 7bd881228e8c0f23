"""`qa serve`: one FastAPI app with the REST API and the Gradio chat mounted at /."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from index.errors import NotFoundError, QAError, UsageError
from qa.engine import MAX_K, MAX_QUESTION_CHARS, QA

from .render import render_source_page


class AskRequest(BaseModel):
    question: str = Field(..., max_length=MAX_QUESTION_CHARS, description="the question")
    history: list[tuple[str, str]] = Field(default_factory=list, description="[[user, assistant], ...]")
    k: int = Field(5, ge=1, le=MAX_K, description="passages to retrieve")
    mode: str = Field("hybrid", pattern="^(hybrid|dense|lexical)$")


def create_api(qa: QA) -> FastAPI:
    """The REST API (and the source viewer); user errors become 4xx JSON, never 500."""
    app = FastAPI(title="Grounded QA", version="0.1.0",
                  description="Every answer sentence cites an exact span: source[start:end] == text.")

    @app.exception_handler(UsageError)
    async def usage_error(_: Request, exc: UsageError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(NotFoundError)
    async def not_found(_: Request, exc: NotFoundError):
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(QAError)
    async def qa_error(_: Request, exc: QAError):
        return JSONResponse({"error": str(exc)}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where or 'body'}: {first.get('msg', 'invalid request')}"}, status_code=422)

    @app.post("/api/ask", summary="Answer a question with exact citations")
    def ask(request: AskRequest) -> dict:
        return qa.ask(request.question, history=request.history, k=request.k, mode=request.mode).to_json()

    @app.get("/api/sources", summary="List indexed sources")
    def sources() -> dict:
        return {"sources": qa.index.sources()}

    @app.get("/api/sources/{source:path}", response_class=PlainTextResponse,
             summary="Canonical text of an indexed source")
    def source(source: str) -> str:
        return qa.source_text(source)

    @app.get("/view/{source:path}", response_class=HTMLResponse, include_in_schema=False)
    def view(source: str, start: int | None = None, end: int | None = None) -> str:
        return render_source_page(source, qa.source_text(source), start, end)

    @app.get("/healthz", summary="Liveness and index size")
    def healthz() -> dict:
        return {"status": "ok", "documents": len(qa.index.sources()), "chunks": qa.index.n_chunks}

    return app


def create_app(qa: QA) -> FastAPI:
    import gradio as gr

    from .chat import CSS, build_chat

    app = create_api(qa)
    return gr.mount_gradio_app(app, build_chat(qa), path="/", css=CSS, footer_links=["api"],
                               theme=gr.themes.Soft(primary_hue="blue"))


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


def serve(qa: QA, host: str = "127.0.0.1", port: int = 7860) -> None:
    """Serve the chat and the API until interrupted."""
    import sys

    import uvicorn

    print(f"Serving the chat on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)", file=sys.stderr)
    uvicorn.run(create_app(qa), host=host, port=port, log_level="warning")
