"""The `openai:` backend end to end against an OpenAI-compatible test server: CLI, REST and its event stream."""

import json
import time

import httpx
import pytest

from .conftest import SEEDS
from .fake_openai import FakeOpenAI, passage_number
from .test_cli import run_qa
from .test_server import _free_port, start_server, stop_server

pytestmark = pytest.mark.slow
QUESTION = "How old was Daniel Whitworth?"
FACT = "Mr Whitworth, 21, was killed by Port after being given a fatal dose of the date rape drug GHB."
GOOD = "Whitworth was 21 when Port killed him with GHB"
BAD = "Port was 52"


def half_true(prompt: str) -> str:
    """A model that answers, then hallucinates a sentence citing the same passage."""
    n = passage_number(prompt, FACT)
    return f"{GOOD} [{n}]. {BAD} [{n}]."


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(half_true) as server:
        yield server


def _exact(answer: dict) -> None:
    texts = {s: (SEEDS / s).read_text(encoding="utf-8") for s in {c["source"] for c in answer["citations"]}}
    for c in answer["citations"]:
        assert texts[c["source"]][c["start"]:c["end"]] == c["text"]


def test_ask_with_an_openai_backend_shows_only_guarded_sentences(seed_settings, fake):
    result = run_qa("ask", QUESTION, "--llm", fake.spec(), "--json", index_dir=seed_settings.index_dir)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["generator"] == fake.spec() and answer["answer"] == f"{GOOD} [1]."
    assert [(s["text"], s["kept"]) for s in answer["sentences"]] == [(f"{GOOD}.", True), (f"{BAD}.", False)]
    assert [c["text"] for c in answer["citations"]] == [FACT]
    _exact(answer)
    request = fake.requests[-1]
    assert request["model"] == "fake" and request["stream"] is True and request["temperature"] == 0
    assert FACT in request["messages"][-1]["content"] and QUESTION in request["messages"][-1]["content"]


def test_show_unsupported_flags_the_sentence_without_citing_it(seed_settings, fake):
    result = run_qa("ask", QUESTION, "--llm", fake.spec(), "--show-unsupported", index_dir=seed_settings.index_dir)
    assert result.returncode == 0, result.stderr
    assert f"{GOOD} [1]. {BAD} [unsupported]." in result.stdout
    assert "[2]" not in result.stdout


@pytest.mark.parametrize("args, message", [
    (("--llm", "chatgpt"), "unknown LLM 'chatgpt': use ollama:MODEL, openai:BASE_URL:MODEL or gguf:PATH"),
    (("--llm", "olama:llama3"), "unknown LLM 'olama:llama3'"),
    (("--llm", "openai:llama3"), "openai needs a base URL and a model"),
    (("--show-unsupported",), "--show-unsupported needs --llm"),
    (("--llm", "openai:http://h:abc/v1:good"), "openai needs a base URL and a model"),  # was an httpx traceback
    (("--llm", "openai:http://127.0.0.1:1/v1:go\nod"), "unknown LLM"),  # a two-line warning later
])
def test_a_bad_llm_option_is_a_one_line_usage_error(seed_settings, args, message):
    result = run_qa("ask", QUESTION, *args, index_dir=seed_settings.index_dir)
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_backend_that_is_down_gives_the_extractive_answer_and_one_warning(seed_settings):
    spec = f"openai:http://127.0.0.1:{_free_port()}/v1:nobody"
    result = run_qa("ask", QUESTION, "--llm", spec, "--json", index_dir=seed_settings.index_dir)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["generator"].startswith(f"extractive (fallback: {spec} failed: ")
    assert "21" in answer["answer"] and answer["sentences"] == []
    _exact(answer)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "showing the extractive answer" in warnings[0] and "Traceback" not in result.stderr


def test_a_backend_slower_than_the_timeout_gives_the_extractive_answer(seed_settings):
    def slow(prompt: str) -> str:
        time.sleep(4)
        return half_true(prompt)

    with FakeOpenAI(slow) as server:
        t0 = time.perf_counter()
        result = run_qa("ask", QUESTION, "--llm", server.spec(), "--json", index_dir=seed_settings.index_dir,
                        env_extra={"QA_LLM_TIMEOUT": "1"})
        elapsed = time.perf_counter() - t0
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["generator"].startswith("extractive (fallback: ") and "Timeout" in answer["generator"]
    assert elapsed < 60


@pytest.fixture(scope="module")
def llm_server(seed_settings, fake):
    proc, url = start_server(SEEDS, seed_settings.index_dir, ("--llm", fake.spec()))
    yield url
    stop_server(proc)


def test_rest_ask_with_an_offered_llm_is_guarded(llm_server, fake):
    body = httpx.post(llm_server + "/api/ask", json={"question": QUESTION, "llm": fake.spec()}, timeout=60).json()
    assert body["generator"] == fake.spec() and body["answer"] == f"{GOOD} [1]."
    assert [s["kept"] for s in body["sentences"]] == [True, False]
    _exact(body)
    plain = httpx.post(llm_server + "/api/ask", json={"question": QUESTION}, timeout=60).json()
    assert plain["generator"] == "extractive" and plain["sentences"] == []


def test_rest_refuses_an_llm_the_server_does_not_offer(llm_server):
    other = f"openai:http://127.0.0.1:{_free_port()}/v1:elsewhere"
    response = httpx.post(llm_server + "/api/ask", json={"question": QUESTION, "llm": other}, timeout=60)
    assert response.status_code == 400 and "is not offered by this server" in response.json()["error"]


def _events(response) -> list[tuple[str, dict]]:
    out, kind = [], None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            out.append((kind, json.loads(line.removeprefix("data: "))))
    return out


def test_rest_stream_sends_draft_tokens_then_the_guarded_answer(llm_server, fake):
    with httpx.stream("POST", llm_server + "/api/ask/stream", json={"question": QUESTION, "llm": fake.spec()},
                      timeout=60) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
    kinds = [k for k, _ in events]
    assert kinds[-1] == "answer" and set(kinds[:-1]) == {"token"} and len(kinds) > 5
    assert all(d["draft"] is True for k, d in events if k == "token")
    drafted = "".join(d["text"] for k, d in events if k == "token")
    assert BAD in drafted  # the draft is unguarded ...
    answer = events[-1][1]
    assert answer["answer"] == f"{GOOD} [1]." and BAD not in answer["answer"]  # ... the answer is not
    _exact(answer)


def test_rest_stream_without_an_llm_sends_the_answer_alone(llm_server):
    with httpx.stream("POST", llm_server + "/api/ask/stream", json={"question": QUESTION}, timeout=60) as response:
        events = _events(response)
    assert [k for k, _ in events] == ["answer"] and events[0][1]["generator"] == "extractive"


def test_rest_stream_rejects_a_bad_request_before_streaming(llm_server):
    response = httpx.post(llm_server + "/api/ask/stream", json={"question": "  "}, timeout=60)
    assert response.status_code == 400 and "error" in response.json()


def quote_then_invent(prompt: str) -> str:
    """A generic model: the first sentence of passage [1], cited, then an invented figure citing it too."""
    lines = prompt.split("<passages>\n", 1)[1].splitlines()
    first = lines[1].split(". ")[0].rstrip(".")
    return f"{first} [1]. The total cost was 987,654 pounds [1]."


def test_qa_eval_with_an_llm_reports_what_the_guard_removed(tmp_path):
    from .test_eval import DATA_DIR

    out = tmp_path / "reports"
    with FakeOpenAI(quote_then_invent) as server:
        result = run_qa("eval", "--set", str(DATA_DIR / "harbour.jsonl"), "--llm", server.spec(), "--out", str(out),
                        index_dir=tmp_path / "idx")
    assert result.returncode == 0, result.stderr
    systems = json.loads((out / "latest.json").read_text())["runs"]["harbour"]["systems"]
    assert set(systems) == {"ours (hybrid)", f"{server.spec()} (guarded)"}
    guard = systems[f"{server.spec()} (guarded)"]["guard"]
    # every invented figure is removed; the quoted sentences are kept unless the answer fell back
    assert guard["sentences_removed"] >= guard["sentences_generated"] / 2 > 0
    assert guard["removed_share"] == round(guard["sentences_removed"] / guard["sentences_generated"], 4)
    assert "987,654" not in json.dumps([i["answer"] for i in systems[f"{server.spec()} (guarded)"]["items"]])
    assert "Grounding guard" in result.stdout and "Grounding guard" in (out / "latest.md").read_text()


@pytest.mark.parametrize("env, message", [
    ({"QA_LLM_TIMEOUT": "nan"}, "QA_LLM_TIMEOUT must be more than 0 and at most 3600 seconds"),
    ({"QA_LLM_TIMEOUT": "inf"}, "QA_LLM_TIMEOUT must be more than 0 and at most 3600 seconds"),
    ({"QA_LLM_API_KEY": "sk-abc\r\nX-Injected: 1"}, "QA_LLM_API_KEY must be printable ASCII"),
])
def test_bad_backend_settings_are_usage_errors_not_silent_fallbacks(seed_settings, fake, env, message):
    # Hostile-tester finding: these made every LLM call fail, reported only as a fallback warning.
    result = run_qa("ask", QUESTION, "--llm", fake.spec(), index_dir=seed_settings.index_dir, env_extra=env)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_server_offering_a_missing_gguf_model_refuses_to_start(seed_settings, tmp_path):
    result = run_qa("serve", "--port", str(_free_port()), "--llm", f"gguf:{tmp_path}/none.gguf",
                    index_dir=seed_settings.index_dir)
    assert result.returncode == 2 and f"no GGUF model at {tmp_path}/none.gguf" in result.stderr


def test_a_backend_that_trickles_on_is_cut_at_the_deadline(seed_settings):
    # Hostile-tester finding (high): QA_LLM_TIMEOUT bounded only the wait between streamed tokens, so a backend
    # sending a word every 0.2 s held the request, and a server worker, for as long as it went on.
    with FakeOpenAI(lambda prompt: "on " * 500, pause=0.2) as server:
        t0 = time.perf_counter()
        result = run_qa("ask", QUESTION, "--llm", server.spec(), "--json", index_dir=seed_settings.index_dir,
                        env_extra={"QA_LLM_TIMEOUT": "2"})
        elapsed = time.perf_counter() - t0
        request = server.requests[-1]
        assert request.get("max_completion_tokens", request.get("max_tokens")) == 300  # a cap the backend sees
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert "no whole reply within 2 s" in answer["generator"] and "21" in answer["answer"]
    assert elapsed < 40  # 500 words at 0.2 s would take 100 s


def test_odd_characters_from_a_backend_are_cleaned_not_a_crash(seed_settings):
    # Hostile-tester finding: a lone surrogate in a streamed token was a 500 on REST and a traceback in the CLI;
    # a NUL reached a kept sentence.
    def odd(prompt: str) -> str:
        n = passage_number(prompt, FACT)
        return f"Whitworth was 21 \ud800 when Port killed him with GHB \x00 [{n}]."

    with FakeOpenAI(odd) as server:
        result = run_qa("ask", QUESTION, "--llm", server.spec(), "--json", index_dir=seed_settings.index_dir)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    answer = json.loads(result.stdout)
    assert "\x00" not in result.stdout and "\\u0000" not in result.stdout and "\\ud800" not in result.stdout
    assert "21" in answer["answer"]
    _exact(answer)


def test_a_reply_that_never_ends_is_cut_at_max_reply_chars():
    from types import SimpleNamespace

    from qa.generate import MAX_REPLY_CHARS, generate

    class Endless:
        def stream(self, messages):
            while True:
                yield SimpleNamespace(content="and on ")

    shown = []
    text = generate(Endless(), [], shown.append)
    assert len(text) == MAX_REPLY_CHARS and "".join(shown) == text


def test_a_chat_user_waiting_on_a_slow_llm_does_not_hold_up_another(seed_settings):
    # Hostile-tester finding: Gradio ran one chat answer at a time, so one user's slow LLM reply queued every
    # other user's question behind it.
    from gradio_client import Client

    from ui.chat import EXTRACTIVE

    with FakeOpenAI(half_true, pause=1.0) as slow:  # about 10 s of streaming
        proc, url = start_server(SEEDS, seed_settings.index_dir, ("--llm", slow.spec()))
        try:
            waiting = Client(url + "/", verbose=False).submit(QUESTION, 5, "hybrid", slow.spec(), api_name="/chat")
            deadline = time.time() + 30
            while not slow.requests and time.time() < deadline:  # A's reply has started
                time.sleep(0.1)
            t0 = time.perf_counter()
            chat, _, _ = Client(url + "/", verbose=False).predict(QUESTION, 5, "hybrid", EXTRACTIVE, api_name="/chat")
            elapsed = time.perf_counter() - t0
            assert not waiting.done() and elapsed < 5
            assert "21" in str(chat[-1]["content"])
            waiting.cancel()
        finally:
            stop_server(proc)
