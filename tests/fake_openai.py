"""An OpenAI-compatible chat server in a few lines of FastAPI, to test the `openai:` backend end to end.

`FakeOpenAI(reply, pause=0)` serves POST /v1/chat/completions (plain and streamed) on a free port in a thread;
reply(prompt) -> the text "the model" writes, given the last user message. It records each request.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeOpenAI:
    def __init__(self, reply, pause: float = 0.0):
        self.reply = reply
        self.pause = pause  # seconds between streamed words: a backend that trickles
        self.requests: list[dict] = []
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def completions(request: Request):
            body = await request.json()
            self.requests.append(body)
            text = self.reply(body["messages"][-1]["content"])
            base = {"id": "chatcmpl-fake", "created": int(time.time()), "model": body["model"]}
            if not body.get("stream"):
                return JSONResponse({**base, "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def chunk(delta: dict, finish: str | None = None) -> str:
                data = {**base, "object": "chat.completion.chunk",
                        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                return f"data: {json.dumps(data)}\n\n"

            def events():
                yield chunk({"role": "assistant", "content": ""})
                for word in text.split(" "):
                    yield chunk({"content": word + " "})
                    time.sleep(self.pause)
                yield chunk({}, "stop")
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def spec(self, model: str = "fake") -> str:
        return f"openai:{self.url}:{model}"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def passage_number(prompt: str, text: str) -> int:
    """The [n] of the passage in the prompt that contains text (as a model that read the prompt would cite it)."""
    number = None
    for line in prompt.splitlines():
        if line.startswith("[") and "] (" in line:
            number = int(line[1:line.index("]")])
        elif text in line and number is not None:
            return number
    raise AssertionError(f"no passage in the prompt holds {text!r}")
