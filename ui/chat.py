"""The Gradio chat: multi-turn, streamed answers, linked [n] markers, each answer's citation cards under it."""

from __future__ import annotations

import queue
import sys
import threading
from html import escape
from pathlib import Path
from typing import Literal, get_type_hints

import gradio as gr
from pydantic import ValidationError

from index.collections import DEFAULT_COLLECTION, UPLOADS_DIR
from index.errors import QAError
from qa.engine import MAX_QUESTION_CHARS, QA
from qa.followup import FOLLOWUP_TURNS
from qa.library import Library
from qa.llm import open_llm
from qa.types import Answer

from .conversations import (
    Conversation,
    answer_markdown,
    append_turn,
    delete_conversation,
    iso_time,
    list_conversations,
    load_conversation,
    store_path,
)
from .documents import build_documents
from .render import render_answer, render_cards
from .schema import AnswerJSON, AskRequest

CSS = """
.gradio-container {max-width: 1440px !important; margin: auto;}
#qa-title h1 {font-size: 1.45rem; margin: 0;} #qa-title p {color: #52606d; margin: .15rem 0 0;}
.qa-panel-title {font-size: 1.05rem; font-weight: 600; margin: .1rem 0 0;}
#qa-ask-row {flex-wrap: nowrap; gap: .5rem; align-items: stretch;} #qa-ask {align-self: stretch;}
#qa-saved-tools {flex-wrap: nowrap; align-items: center; gap: .5rem;}
#qa-delete {flex: 0 0 auto !important; min-width: 0 !important; width: auto;}
#qa-clear {width: 100%;}
#qa-saved input, #qa-collection input {padding-right: 2.2rem !important; text-overflow: ellipsis;}
#qa-cards {max-height: calc(100vh - 190px); overflow-y: auto; padding-right: .2rem;}
.qa-card {display:block; border:1px solid #d9e2ec; border-radius:10px; padding:.7rem .8rem; margin:.5rem 0;
          text-decoration:none !important; color:inherit !important; background:#fff; text-align:left;}
.qa-card:hover {border-color:#3e7bfa; box-shadow:0 1px 6px rgba(62,123,250,.15);}
.qa-card-head {display:flex; gap:.5rem; align-items:baseline; justify-content:flex-start; font-size:.85rem;
               margin-bottom:.3rem; text-align:left;}
.qa-n {font-weight:700; color:#3e7bfa; white-space:nowrap; flex:0 0 auto;}
.qa-src {color:#52606d; font-family:ui-monospace,monospace; overflow-wrap:anywhere; min-width:0;}
.qa-ctx {font-size:.92rem; line-height:1.5; color:#3e4c59; text-align:left;} .qa-span {background:#ffe58a; color:#1f2933;}
.qa-open {font-size:.8rem; color:#3e7bfa; margin-top:.3rem; text-align:left;}
.qa-conflict {background:#fff4e5; border-left:4px solid #f0a020; padding:.5rem .7rem; margin:.4rem 0;}
.qa-abstain {background:#f0f4f8; border-left:4px solid #9aa5b1; padding:.5rem .7rem; margin:.4rem 0;}
.qa-query {color:#52606d; font-style:italic; margin:.3rem 0;}
.qa-empty {color:#7b8794; padding:1rem 0;}
a.qa-cite {color:#3e7bfa; font-weight:600; text-decoration:none;}
.qa-sources {margin-top:.6rem;} .qa-sources summary {cursor:pointer; color:#52606d; font-size:.85rem;}
.dark .qa-card {background:#1f2933; border-color:#3e4c59;} .dark .qa-ctx {color:#d9e2ec;}
.dark .qa-src, .dark .qa-sources summary, .dark .qa-empty {color:#9aa5b1;} .dark .qa-query {color:#b9c3ce;}
.dark #qa-title p {color:#c3ccd6;}
.dark .qa-conflict {background:#3b2a10; color:#fde8c4; border-left-color:#f0a020;}
.dark .qa-abstain {background:#243b53; color:#d9e2ec;}
.dark .qa-n, .dark .qa-open, .dark a.qa-cite {color:#7ea8ff;}
.qa-tools {margin-top:.4rem;} .qa-copy {font-size:.8rem; color:#3e7bfa; background:none; border:1px solid #d9e2ec;
          border-radius:6px; padding:.15rem .5rem; cursor:pointer;}
.qa-md {display:none !important;} .qa-saved {white-space:pre-wrap; overflow-wrap:anywhere; font-size:.85rem;}
#qa-export a {color:#3e7bfa; font-size:.85rem;} #qa-export .qa-empty {font-size:.8rem; padding:0;}
.dark .qa-copy, .dark #qa-export a {color:#7ea8ff; border-color:#3e4c59;}
/* A desktop shows the latest answer's sources in their own panel, a phone under each answer: never both. */
@media (min-width: 1024px) {#qa-chat .qa-sources {display:none;}}
footer .show-api-divider, footer .divider:last-child {display:none !important;}  /* a "·" after the only link */
#qa-center .gallery-item, #qa-center button.gallery-item {text-align:left;}
#qa-chat .qa-query {font-size:.85rem; margin:0 0 .4rem;}
#qa-sources-col {gap:.3rem;}
@media (max-width: 640px) {.qa-src {font-size:.78rem;}}
@media (max-width: 1023px) {#qa-sources-col {display:none !important;} #qa-center {order:1;} #qa-side {order:2;}}
"""
# Runs once in Gradio's own bundle (mount_gradio_app(js=...)): the chat's HTML is sanitized, so a bubble
# carries a plain button and its answer's Markdown in a hidden <pre>, and one listener copies it.
COPY_JS = """() => {
  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest(".qa-copy");
    if (!button) return;
    const markdown = button.parentElement.querySelector(".qa-md")?.textContent ?? "";
    try {
      await navigator.clipboard.writeText(markdown);
    } catch (error) {  // no clipboard API outside a secure context (plain http to another host)
      const area = document.createElement("textarea");
      area.value = markdown;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "Copied \u2713";
    setTimeout(() => { button.textContent = "Copy answer with citations"; }, 2000);
  });
}"""
# The Delete button asks first; the answer travels as the hidden "confirmed" input (nothing open: no question).
CONFIRM_DELETE_JS = """(conversation, confirmed) => {
  const open = document.querySelector("#qa-saved input")?.value;
  return [conversation, open ? window.confirm(`Delete the saved conversation "${open}"? This cannot be undone.`) : true];
}"""
EXAMPLES_FILE = ".qa-examples.txt"
CHAT_CONCURRENCY = 4  # chat answers computed at once, all users together


def example_questions(corpus: Path, qa: QA, limit: int = 4) -> list[str]:
    """Examples for the loaded corpus: the corpus's own .qa-examples.txt, else built from document titles."""
    path = corpus / EXAMPLES_FILE
    try:  # a link out of the corpus is not followed: its lines would be shown to every client
        text = path.read_text(encoding="utf-8") if path.is_file() and path.resolve().is_relative_to(
            corpus.resolve()) else None
    except (OSError, RuntimeError, UnicodeError) as exc:
        print(f"warning: {EXAMPLES_FILE} ignored: {'not UTF-8' if isinstance(exc, UnicodeError) else exc}",
              file=sys.stderr)
        text = None
    if text is not None:
        lines = [line.strip() for line in text.splitlines()]
        return [line for line in lines if line and not line.startswith("#")][:limit]
    titles = []
    for source in qa.index.sources()[:limit]:
        first = qa.source_text(source).strip().splitlines()[0].strip("# ").strip()
        if 0 < len(first) <= 100:
            titles.append(f"What does the document say about {first.rstrip('.?!')}?")
    return titles


def indexed_folder(qa: QA) -> Path:
    """The folder the collection's index was made from (recorded by `qa index`), not QA_CORPUS: after
    `qa index ~/notes` the default collection answers from ~/notes whatever QA_CORPUS says."""
    return Path(qa.index.meta.get("corpus") or qa.settings.corpus)


_EXAMPLES_CACHE: dict[tuple[str, str], list[str]] = {}


def collection_examples(qa: QA, limit: int = 4) -> list[str]:
    """The "Try" questions for one collection: its folder's own .qa-examples.txt, else questions from its
    document titles that it answers (one that would abstain is no example). Worked out once per index generation."""
    key = (str(qa.settings.index_dir), qa.index.generation)
    if key not in _EXAMPLES_CACHE:
        folder = indexed_folder(qa)
        if (folder / EXAMPLES_FILE).exists():
            found = example_questions(folder, qa, limit)
        else:
            found = [q for q in example_questions(folder, qa, limit) if not _abstains(qa, q)]
        for old in [k for k in _EXAMPLES_CACHE if k[0] == key[0]]:  # an earlier generation's
            del _EXAMPLES_CACHE[old]
        _EXAMPLES_CACHE[key] = found
    return _EXAMPLES_CACHE[key]


def _abstains(qa: QA, question: str) -> bool:
    try:
        return qa.ask(question).abstained
    except QAError:
        return True


def _as_int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0  # check_question turns it into a clear "k must be between" message


MAX_SHOWN_MESSAGES = 200  # per browser session; older bubbles drop off the top


def _title(qa: QA, collection: str) -> str:
    """The header: how many documents, from which folder (its name only: the server's paths are its own)."""
    index = qa.index
    n_docs = index.n_documents
    folder = indexed_folder(qa)
    where = ("uploaded documents" if folder.name == UPLOADS_DIR and folder.parent.name == collection
             else f"<code>{escape(folder.name)}</code>")
    name = "" if collection == DEFAULT_COLLECTION else f" (collection <b>{escape(collection)}</b>)"
    return (f'<div id="qa-title"><h1>Grounded QA</h1><p>Answers from {n_docs} document'
            f'{"s" if n_docs != 1 else ""} in {where}{name}; '
            'every sentence cites the exact span it came from.</p></div>')


def _new_conversation(collection: str) -> dict:
    return {"shown": [], "turns": [], "collection": collection, "id": None}  # id: once saved


def _copy_tools(answer: Answer) -> str:
    """The answer's Markdown with citations, hidden, and the button that copies it (COPY_JS)."""
    return (f'<div class="qa-tools"><button class="qa-copy" type="button">Copy answer with citations</button>'
            f'<pre class="qa-md" hidden>{escape(answer_markdown(answer))}</pre></div>')


def _export_link(conversation_id: str | None) -> str:
    if not conversation_id:
        return '<span class="qa-empty">Conversations are saved once a question is answered.</span>'
    return f'<a href="/api/conversations/{escape(conversation_id)}/markdown" download>Export as Markdown</a>'


SAVED_TITLE_CHARS = 60  # the box shows what fits, cut with an ellipsis clear of its arrow (CSS)


def _saved_label(c: Conversation) -> str:
    """The first question (cut short), then when: the list shows one collection's conversations only."""
    when = iso_time(c.updated)[5:16].replace("T", " ")  # MM-DD HH:MM
    title = c.title if len(c.title) <= SAVED_TITLE_CHARS else c.title[:SAVED_TITLE_CHARS - 1].rstrip() + "\u2026"
    return f"{title} \u00b7 {when}"


def _bubble(answer: Answer, document_text, collection: str) -> str:
    # The chat renders HTML; document text is escaped in render_answer, links come from the citations.
    prefix = (f'<div class="qa-query">searched for: {escape(answer.search_query)}</div>'
              if answer.search_query != answer.question else "")
    return prefix + render_answer(answer, document_text, collection=collection) + _copy_tools(answer)


EXTRACTIVE = "extractive (default)"


def build_chat(library: Library, collection: str = DEFAULT_COLLECTION,
               llms: tuple[str, ...] | list[str] = ()) -> gr.Blocks:
    """The chat; with llms (qa serve --llm / QA_LLM) an "Answer with" picker offers them, their tokens streamed."""
    qa = library.get(collection)
    examples = collection_examples(qa)
    saved = store_path(library.settings.index_dir)

    def respond(message: str, conversation: dict | None, k: int, mode: str, backend: str | None = None,
                on_token=None):
        """Answer one chat message and fill the citation panel (with backend, one of llms, the LLM writes it).

        The conversation lives in server-side State: the browser sends only the message text and the
        two settings, never the history (a client-sent history could smuggle file paths into Gradio).
        """
        message = (message or "").strip() if isinstance(message, str) else ""
        conversation = conversation or _new_conversation(collection)
        name = conversation.get("collection", DEFAULT_COLLECTION)
        shown, turns = list(conversation["shown"]), list(conversation["turns"])
        if not message:
            return shown, gr.update(), conversation, ""
        # A question over the limit is refused below; the chat keeps only its start, not megabytes of it.
        kept = message if len(message) <= MAX_QUESTION_CHARS else f"{message[:200]}\u2026 ({len(message):,} characters)"
        shown.append({"role": "user", "content": escape(kept)})
        try:
            engine = library.get(name)
            llm = open_llm(backend) if backend in llms else None  # only what the server offers
            answer = engine.ask(message, history=turns, k=_as_int(k), mode=str(mode), llm=llm, on_token=on_token)
            if answer.generator.startswith("extractive (fallback: "):
                gr.Warning(f"Answered extractively: {answer.generator.removeprefix('extractive (fallback: ')[:-1]}")
            document_text = lambda source: engine.source_text(source, answer.generation)
            cards = render_cards(answer, document_text, collection=name)
            bubble = _bubble(answer, document_text, name)
        except QAError as exc:
            shown.append({"role": "assistant", "content": f"\u26a0 {escape(str(exc))}"})
            shown = shown[-MAX_SHOWN_MESSAGES:]
            return shown, gr.update(), {**conversation, "shown": shown, "turns": turns}, ""
        shown.append({"role": "assistant", "content": bubble})
        turns = [*turns, (message, answer.answer)][-FOLLOWUP_TURNS:]
        shown = shown[-MAX_SHOWN_MESSAGES:]
        try:
            saved_id = append_turn(saved, conversation.get("id"), message, answer, name)
        except QAError as exc:  # the answer is shown all the same
            gr.Warning(f"This conversation is not saved: {exc}")
            saved_id = conversation.get("id")
        return shown, cards, {**conversation, "id": saved_id, "shown": shown, "turns": turns}, ""

    def respond_streaming(message: str, conversation: dict | None, k: int, mode: str, backend: str):
        """respond, showing the LLM's tokens as an unchecked draft until the guarded answer replaces it."""
        text = (message or "").strip() if isinstance(message, str) else ""
        if backend not in llms or not text:
            yield respond(message, conversation, k, mode)
            return
        drafts: queue.Queue = queue.Queue()
        result: dict = {}

        def work() -> None:
            try:
                result["out"] = respond(message, conversation, k, mode, backend, drafts.put)
            except BaseException as exc:  # noqa: BLE001  (re-raised below, in Gradio's worker)
                result["error"] = exc

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        shown = [*(conversation or {}).get("shown", []), {"role": "user", "content": escape(text)}]
        draft = ""
        while thread.is_alive() or not drafts.empty():
            try:
                draft += drafts.get(timeout=0.1)
            except queue.Empty:
                continue
            bubble = f"<em>Draft by {escape(backend)}, not yet checked against the sources:</em> {escape(draft)}"
            yield [*shown, {"role": "assistant", "content": bubble}], gr.update(), gr.update(), ""
        thread.join()
        if "error" in result:
            raise result["error"]
        yield result["out"]

    def clear(conversation: dict | None):
        name = (conversation or {}).get("collection", collection)
        return [], render_cards(None, qa.source_text), _new_conversation(name), ""

    def switch(name: str):
        """Another collection: a new conversation over it (follow-ups never cross collections)."""
        try:
            engine = library.get(name if isinstance(name, str) else "")
        except QAError as exc:
            gr.Warning(str(exc))
            return gr.update(), gr.update(), gr.update(), gr.update(), gr.update(), gr.update()
        return ([], render_cards(None, engine.source_text), _new_conversation(name), "", _title(engine, name),
                _examples_update(engine))

    def _examples_update(engine: QA):
        found = collection_examples(engine)
        return gr.Dataset(samples=[[e] for e in found] or [[""]], visible=bool(found))

    def on_load():
        """The header and examples as the index is now (`qa index` may have run since the server started)."""
        return _title(qa, collection), _examples_update(qa)

    def list_collections():
        names = [c.name for c in library.collections()]
        return gr.update(choices=names)

    def list_saved(conversation: dict | None):
        """The saved conversations, newest first, with the open one selected, and its export link."""
        current = (conversation or {}).get("id")
        try:
            listed = list_conversations(saved)
        except QAError as exc:
            gr.Warning(str(exc))
            return gr.update(), _export_link(None)
        shown_in = (conversation or {}).get("collection", collection)
        choices = [(_saved_label(c), c.id) for c in listed if c.collection == shown_in]  # this collection's
        found = current in {c.id for c in listed}
        return gr.update(choices=choices, value=current if found else None), _export_link(current if found else None)

    def restore(answer: Answer, engine: QA | None, name: str) -> tuple[str, str]:
        """A saved answer's bubble and cards, against its documents as they are now; as saved (Markdown) when
        a cited document has changed or gone since."""
        if engine is not None:
            try:
                spans = [*answer.citations, *(answer.passages[:3] if answer.abstained else ())]
                if all(engine.source_text(s.source)[s.start:s.end] == s.text for s in spans):
                    return (_bubble(answer, engine.source_text, name),
                            render_cards(answer, engine.source_text, collection=name))
            except QAError:
                pass
        text = ('<div class="qa-abstain">The documents have changed since this answer; it is shown as saved.</div>'
                f'<pre class="qa-saved">{escape(answer_markdown(answer))}</pre>')
        return text + _copy_tools(answer), text

    def open_saved(conversation_id: str):
        """Reopen a saved conversation: its bubbles, the last answer's sources, its collection, and the turns
        follow-ups are resolved against, all read from the store by id."""
        found = load_conversation(saved, conversation_id)
        if found is None:
            gr.Warning("That conversation is no longer saved.")
            return (gr.update(),) * 8
        name = found.collection
        try:
            engine = library.get(name)
        except QAError as exc:
            gr.Warning(f"{exc}; its answers are shown as saved")
            engine = None
        shown, cards = [], render_cards(None, qa.source_text)
        for turn in found.turns[-MAX_SHOWN_MESSAGES // 2:]:
            bubble, cards = restore(turn.answer, engine, name)
            shown += [{"role": "user", "content": escape(turn.question)}, {"role": "assistant", "content": bubble}]
        state = {"shown": shown, "turns": [(t.question, t.answer.answer) for t in found.turns][-FOLLOWUP_TURNS:],
                 "collection": name, "id": found.id}
        same = engine is None
        return (shown, cards, state, "", gr.update() if same else gr.update(value=name),
                gr.update() if same else _title(engine, name), _export_link(found.id),
                gr.update() if same else _examples_update(engine))

    def delete_open(conversation: dict | None, confirmed: bool = True):
        """Delete the open conversation (once the browser's confirm() said yes) and start a new one in the same
        collection."""
        if not (conversation or {}).get("id"):
            gr.Info("Nothing to delete: a conversation is saved once a question in it is answered.")
            return (gr.update(),) * 4
        if not confirmed:
            return (gr.update(),) * 4
        try:
            delete_conversation(saved, (conversation or {}).get("id"))
        except QAError as exc:
            gr.Warning(str(exc))
        return clear(conversation)

    with gr.Blocks(title="Grounded QA", analytics_enabled=False) as demo:
        title = gr.HTML(_title(qa, collection), elem_id="qa-header")
        conversation = gr.State(_new_conversation(collection))
        # Three columns on a desktop: what to ask about (collection, conversations, settings, documents), the
        # conversation, the latest answer's sources. On a phone the conversation comes first, each answer with
        # its own sources under it, and the controls follow (CSS).
        with gr.Row(elem_id="qa-main"):
            with gr.Column(scale=1, min_width=270, elem_id="qa-side"):
                picker = gr.Dropdown([c.name for c in library.collections()], value=collection,
                                     label="Collection", elem_id="qa-collection", interactive=True)
                clear_btn = gr.Button("+ New conversation", size="sm", elem_id="qa-clear")
                saved_list = gr.Dropdown([], value=None, label="Saved conversations", elem_id="qa-saved",
                                         interactive=True)
                with gr.Row(elem_id="qa-saved-tools"):
                    export = gr.HTML(_export_link(None), elem_id="qa-export")
                    delete_btn = gr.Button("Delete", size="sm", variant="secondary", elem_id="qa-delete", scale=0,
                                           min_width=72)
                    confirmed = gr.Checkbox(value=True, visible=False)  # set by the Delete button's confirm()
                backend = gr.Dropdown([EXTRACTIVE, *llms], value=EXTRACTIVE, label="Answer with", visible=bool(llms),
                                      elem_id="qa-llm", interactive=True,
                                      info="an LLM's sentences are kept only where the cited sources support them")
                with gr.Accordion("Retrieval settings", open=False):
                    k = gr.Slider(1, 10, value=5, step=1, label="Passages to retrieve (k)", elem_id="qa-k")
                    mode = gr.Radio(["hybrid", "dense", "lexical"], value="hybrid", label="Retrieval mode",
                                    elem_id="qa-mode")
                build_documents(library, picker, collection)  # ui/documents.py: upload, list, remove
            with gr.Column(scale=3, min_width=340, elem_id="qa-center"):
                # Gradio's own copy buttons would copy the bubble's HTML; each answer has its own (COPY_JS).
                # (The label names the /chat endpoint's output for API clients; it is not shown.)
                chatbot = gr.Chatbot(label="Conversation", show_label=False, height="calc(100vh - 300px)",
                                     min_height=340, render_markdown=False, sanitize_html=True, elem_id="qa-chat",
                                     feedback_options=None, buttons=[],
                                     placeholder="Ask a question about these documents: each sentence of the "
                                                 "answer cites the exact passage it comes from.")
                with gr.Row(elem_id="qa-ask-row"):
                    box = gr.Textbox(placeholder="Ask a question\u2026", label="Question", show_label=False, scale=8,
                                     elem_id="qa-input", max_length=2000, lines=1)
                    ask = gr.Button("Ask", variant="primary", scale=0, min_width=88, elem_id="qa-ask")
                # Examples of the collection shown (none when its questions would not be answered).
                try_these = gr.Examples(examples=[[e] for e in examples] or [[""]], inputs=[box], label="Try",
                                        visible=bool(examples))
            with gr.Column(scale=2, min_width=300, elem_id="qa-sources-col"):
                gr.HTML('<h2 class="qa-panel-title">Sources</h2>')
                # (labels name the /chat endpoint's outputs for API clients; they are not shown)
                cards = gr.HTML(render_cards(None, qa.source_text), elem_id="qa-cards", label="Sources")
        inputs = [box, conversation, k, mode]  # the chatbot is display only: never an input
        outputs = [chatbot, cards, conversation, box]
        answer_fn = respond
        if llms:  # the extractive-only chat keeps its plain (non-generator) handler
            inputs, answer_fn = [*inputs, backend], respond_streaming
        listing = {"fn": list_saved, "inputs": [conversation], "outputs": [saved_list, export], "api_name": False}
        # Gradio runs one call of an event at a time by default: one user waiting on a slow LLM held every
        # other user's question in the queue. Answers share one limit (BLAS is one thread per call).
        answering = {"concurrency_limit": CHAT_CONCURRENCY, "concurrency_id": "answer"}
        ask.click(answer_fn, inputs, outputs, api_name="chat", **answering)
        box.submit(answer_fn, inputs, outputs, api_name=False, **answering)
        clear_btn.click(clear, [conversation], outputs, api_name=False)
        chatbot.clear(clear, [conversation], outputs, api_name=False)  # the chatbot's own trash icon resets the state too
        picker.input(switch, [picker], [*outputs, title, try_these.dataset], api_name=False)
        demo.load(on_load, None, [title, try_these.dataset], api_name=False)
        # Only the chosen id comes from the browser; the conversation is read from the store.
        saved_list.input(open_saved, [saved_list], [*outputs, picker, title, export, try_these.dataset],
                         api_name=False)
        delete_btn.click(delete_open, [conversation, confirmed], outputs, api_name=False, js=CONFIRM_DELETE_JS)
        # Whatever changed the conversation (an answer; a new, opened or deleted one), the list and link follow.
        conversation.change(**listing)
        demo.load(**listing)
        picker.focus(list_collections, None, [picker], api_name=False)  # collections made since the page loaded
        demo.load(list_collections, None, [picker], api_name=False)
        gr.api(api_ask(library), api_name="ask")
    return demo


def api_ask(library: Library):
    """The typed endpoint for programmatic clients (`Client(url).predict(..., api_name="/ask")`)."""

    def ask(question: str, history: list[list[str]] = [], k: int = 5,  # noqa: B006 (never mutated)
            mode: Literal["hybrid", "dense", "lexical"] = "hybrid", collection: str = DEFAULT_COLLECTION) -> AnswerJSON:
        """Answer a question with exact citations. history: earlier [user, assistant] turns, oldest first.
        Returns the Answer JSON, as POST /api/ask does."""
        try:  # the same limits and strict types as the REST API
            request = AskRequest.model_validate({"question": question, "history": history, "k": k, "mode": mode,
                                                 "collection": collection})
            qa = library.get(request.collection)
            answer = qa.ask(request.question, history=request.history, k=request.k, mode=request.mode)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise gr.Error(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
        except QAError as exc:
            raise gr.Error(str(exc)) from None
        return answer.to_json()  # the dict AnswerJSON describes; Gradio sends it as JSON, unprocessed

    # gr.api reads the return type through inspect.signature, which leaves postponed annotations as strings.
    ask.__annotations__ = get_type_hints(ask)
    return ask
