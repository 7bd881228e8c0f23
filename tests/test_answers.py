import pytest

from index.build import build_index
from index.config import load_settings
from qa.engine import QA

from .conftest import SEEDS

VARIED_QUESTIONS = [
    "Which drug killed Daniel Whitworth?", "How old was Daniel Whitworth?", "How many officers are being investigated?",
    "What sentence did Port receive?", "Who is Daniel Whitworth's stepmother?", "Where were the bodies dumped?",
    "How many pages of material has the IPCC compiled?", "What did the forged suicide note say?",
    "Who are the families suing?", "When is the final report expected?", "What was the weather in Barking?",
    "Port", "?", "BTW", "<script>alert(1)</script>", "How old was he?", "x" * 1500,
]


def _source_text(name: str) -> str:
    return (SEEDS / name).read_bytes().decode("utf-8")


@pytest.mark.parametrize("question", VARIED_QUESTIONS)
def test_citation_slices_source_exactly(seed_qa, question):
    answer = seed_qa.ask(question)
    for citation in answer.citations:
        assert _source_text(citation.source)[citation.start:citation.end] == citation.text
        assert f"[{citation.n}]" in answer.answer
    for passage in answer.passages:
        assert _source_text(passage.source)[passage.start:passage.end] == passage.text
    assert answer.abstained == (not answer.citations)


@pytest.mark.parametrize("question, expected", [
    ("Which drug killed Daniel Whitworth?", "GHB"),
    ("How old was Daniel Whitworth?", "21"),
    ("How many unexplained deaths is the MPS re-examining?", "58"),
    ("How many pages of material has the IPCC compiled?", "7,000"),
    ("Who is the IPCC commissioner?", "Cindy Butts"),
    ("Where were the victims' bodies dumped?", "Barking"),
    ("Who is the solicitor for the families?", "Neil Hudgell"),
])
def test_factual_questions_are_answered(seed_qa, question, expected):
    answer = seed_qa.ask(question)
    assert not answer.abstained
    assert expected in answer.answer


@pytest.mark.parametrize("question", [
    "What was the weather in Barking?",
    "How old was Jack Taylor's mother?",
    "What is Stephen Port's favourite food?",
    # The reader answers this near miss with Port's conviction: the rule that declined it (the "which X" noun
    # must be in the passage) cost 0.05 dev truthfulness as a gate on the reader and was dropped (docs/reader.md).
    pytest.param("Which judge sentenced Port?", marks=pytest.mark.xfail(strict=True, reason="reader: known near miss")),
])
def test_unanswerable_questions_abstain_and_show_closest_passages(seed_qa, question):
    answer = seed_qa.ask(question)
    assert answer.abstained and answer.answer.startswith("The documents don't say")
    assert answer.passages and not answer.citations


def test_conflicting_counts_are_both_shown(seed_qa):
    answer = seed_qa.ask("How many officers are being investigated by the IPCC?")
    assert "17" in answer.answer and "19" in answer.answer


def test_a_compound_question_answered_with_two_values_is_not_a_conflict(seed_qa):
    answer = seed_qa.ask("How many unexplained deaths is the MPS re-examining, and how old was Daniel Whitworth?")
    assert "58" in answer.answer and "21" in answer.answer
    assert not answer.conflict  # each part's value answers its own part; no source disagrees


def test_follow_up_is_resolved_from_history(seed_qa):
    history = [("Which drug killed Daniel Whitworth?", "GHB")]
    answer = seed_qa.ask("How old was he?", history=history)
    assert answer.search_query == "How old was Daniel Whitworth?"
    assert "21" in answer.answer


def test_elliptical_follow_up_swaps_the_subject(seed_qa):
    answer = seed_qa.ask("And Jack Taylor?", history=[("How old was Anthony Walgate?", "23")])
    assert answer.search_query == "How old was Jack Taylor?"
    assert "25" in answer.answer


@pytest.mark.parametrize("question, k, message", [
    ("", 5, "empty"), ("   ", 5, "empty"), ("x" * 2001, 5, "limit is 2000"), ("ok?", 0, "k must be"),
])
def test_bad_requests_raise_usage_errors(seed_qa, question, k, message):
    from index.errors import UsageError

    with pytest.raises(UsageError, match=message):
        seed_qa.ask(question, k=k)


HYBRID_CORPUS = {f"code{i}.txt": f"Error code {code} on the washing machine means {fault}."
                 for i, (code, fault) in enumerate([("BR-2210", "the water tank is empty"),
                                                    ("LM-9034", "the filter needs cleaning"),
                                                    ("KP-6602", "the drum is overloaded")])}
HYBRID_CORPUS |= {
    "roses.txt": "Prune climbing roses in late winter and feed them in spring; catalogue entry QZ-7741.",
    "clinic.txt": "The physician prescribed medication for the patient's elevated blood pressure.",
    "doctor.txt": "Doctor Who is a television series about a time traveller.",
}


@pytest.mark.slow
def test_hybrid_finds_what_either_side_alone_misses(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in HYBRID_CORPUS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = load_settings(corpus=corpus, index_dir=tmp_path / "index")
    build_index(settings)
    qa = QA(settings, build_if_missing=False)
    # An exact identifier (dense embeddings blur codes) and a paraphrase sharing no word with its answer.
    cases = [("error code QZ-7741", "roses.txt"), ("What did the doctor give to treat hypertension?", "clinic.txt")]

    def hits(mode: str) -> int:
        return sum(want in [p.source for p in qa.retrieve(q, k=2, mode=mode)] for q, want in cases)

    assert hits("hybrid") == 2
    assert hits("dense") < 2
    assert hits("lexical") < 2


@pytest.mark.slow
def test_sentences_of_one_paragraph_are_scored_separately(tmp_path):
    from qa.answer import candidates, term_weights
    from qa.question import analyse

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ferry.txt").write_text("The ferry crossing takes forty minutes in calm weather. Bicycles are carried "
                                      "for a small fee. The cafe on board sells tea and cake.", encoding="utf-8")
    settings = load_settings(corpus=corpus, index_dir=tmp_path / "index")
    build_index(settings)
    qa = QA(settings, build_if_missing=False)
    question = "How long is the boat trip?"
    passages = qa.retrieve(question, k=1)
    spec = analyse(question)
    scored = candidates(spec, passages, term_weights(spec, qa.index.document_frequency, qa.index.n_chunks),
                        qa.index.embed(question), qa.index.sentence_vectors([passages[0].chunk_id]))
    assert len(scored) == 3 and len({round(c.dense, 4) for c in scored}) == 3
    assert max(scored, key=lambda c: c.dense).text.startswith("The ferry crossing takes forty minutes")


REPORTS = {
    "rye.md": "# Rye harbour report\n\nThe harbour master counted 41 boats in March.\n\n"
              "The ferry to Camber leaves at 9:40 every morning.\n",
    "camber.md": "# Camber sands report\n\nThe lifeguards counted 12 boats in March.\n\n"
                 "Maria Lopez ran the survey for the council.\n\nShe and two volunteers walked the dunes in April.\n",
}


@pytest.fixture(scope="module")
def reports_qa(tmp_path_factory):
    root = tmp_path_factory.mktemp("reports")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in REPORTS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    settings = load_settings(corpus=corpus, index_dir=root / "index")
    build_index(settings)
    return QA(settings, build_if_missing=False)


def test_a_question_naming_a_document_is_answered_from_it(reports_qa):
    camber = reports_qa.ask("How many boats were counted according to the Camber sands report?")
    assert {p.source for p in camber.passages} == {"camber.md"} and "41" not in camber.answer
    rye = reports_qa.ask("How many boats did the Rye harbour report count?")
    assert [c.source for c in rye.citations] == ["rye.md"] and not rye.conflict
    both = reports_qa.ask("How many boats were counted in March?")  # names neither: both accounts
    assert {c.source for c in both.citations} == {"rye.md", "camber.md"} and both.conflict


def test_a_question_about_a_name_the_documents_never_mention_abstains(reports_qa):
    assert reports_qa.ask("How many boats did the Dover report count?").abstained


def test_a_clock_time_answers_when_and_what_time(reports_qa):
    for question in ("When does the ferry to Camber leave?", "What time does the Camber ferry leave?"):
        answer = reports_qa.ask(question)
        assert "9:40" in answer.answer and answer.citations[0].source == "rye.md", question


def test_a_sentence_opening_with_a_pronoun_brings_its_antecedent(reports_qa):
    answer = reports_qa.ask("Who walked the dunes in April?")
    text = REPORTS["camber.md"]
    citation = answer.citations[0]
    assert citation.text.startswith("Maria Lopez ran the survey") and citation.text.endswith("dunes in April.")
    assert text[citation.start:citation.end] == citation.text  # still exact, across the paragraph break
    assert answer.answer.count("[1]") == 2  # each sentence carries its marker


def test_the_shipped_selector_matches_the_features_the_answerer_computes():
    # A feature added without refitting would silently switch the answerer back to the hand rules.
    from qa.answer import SELECTOR_FEATURES, load_selector

    model = load_selector()
    assert model is not None and tuple(model["features"]) == SELECTOR_FEATURES
    assert len(model["weights"]) == len(SELECTOR_FEATURES) and 0 < model["threshold"] < 1


def test_the_selector_answers_what_the_rules_decline_only_when_confident(tmp_path, monkeypatch):
    import qa.answer as answer_module
    from qa.answer import candidates, load_selector, qualifies, select_evidence, selector_probability, term_weights
    from qa.question import analyse

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "gcc.txt").write_text(
        "The compiler symlinks in /usr/bin are not handled by the alternatives system.\n\n"
        "Having the symlinks managed by alternatives does not allow reliable builds.\n", encoding="utf-8")
    settings = load_settings(corpus=corpus, index_dir=tmp_path / "index")
    build_index(settings)
    qa = QA(settings, build_if_missing=False)
    question = "What would go wrong if the alternatives mechanism chose the compiler?"
    spec = analyse(question)
    passages = qa.retrieve(question, k=2)
    args = (spec, passages, term_weights(spec, qa.index.document_frequency, qa.index.n_chunks),
            qa.index.embed(question), qa.index.sentence_vectors([p.chunk_id for p in passages]))
    model = load_selector()
    pool = candidates(*args)
    assert not any(qualifies(spec, c) for c in pool)  # the hand rules alone would abstain
    best = max(selector_probability(model, c.features) for c in pool)
    for threshold, answers in ((best - 0.01, True), (best + 0.01, False)):
        monkeypatch.setattr(answer_module, "load_selector", lambda t=threshold: {**model, "threshold": t})
        assert bool(select_evidence(*args, use_reader=False)) is answers  # the selector the reader falls back to


def test_soft_kinds_read_the_many_ways_a_question_asks_for_a_value():
    from qa.question import SOFT_KINDS, kinds_in, soft_kinds

    asked = lambda q: {k for k, v in zip(SOFT_KINDS, soft_kinds(q)) if v}
    assert "number" in asked("What share of the tests broke?")
    assert "duration" in asked("After what period of inactivity is a member removed?")
    assert "reason" in asked("Why are the symlinks not managed by alternatives?")
    assert "version" in asked("Which apt release removed old kernels?")
    assert asked("Describe the harbour.") == set()
    held = {k for k, v in zip(SOFT_KINDS, kinds_in("Since 2.1.16, kernels are removed after 12 months "
                                                    "because disks fill up.", "which version")) if v}
    assert {"number", "duration", "version", "reason"} <= held


def test_a_question_about_one_table_cell_is_answered_from_its_row(tmp_path):
    """Issue 23: "How tall is the lighthouse?" from the row "Height | 38 metres" of a Markdown table, and an
    option's default from an HTML table whose header row names the columns; the citation is the row alone."""
    from .test_formats import TABLE_MD

    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "light.md").write_text(TABLE_MD, encoding="utf-8")
    (corpus / "opts.html").write_text(
        "<html><body><main><h1>fetchd configuration</h1><p>fetchd reads its options from fetchd.conf.</p><table>"
        "<tr><th>Option</th><th>Default</th><th>Meaning</th></tr>"
        "<tr><td>timeout</td><td>30 s</td><td>seconds to wait for a reply before giving up</td></tr>"
        "<tr><td>retries</td><td>5</td><td>how many times a failed request is sent again</td></tr>"
        "<tr><td>workers</td><td>4</td><td>parallel downloads</td></tr></table></main></body></html>",
        encoding="utf-8")
    settings = load_settings(corpus=corpus, index_dir=tmp_path / "index")
    build_index(settings)
    qa = QA(settings, build_if_missing=False)
    for question, row in [("How tall is the lighthouse?", "Height | 38 metres"),
                          ("What is the default timeout of fetchd?", "timeout | 30 s | seconds to wait for a reply"
                                                                     " before giving up"),
                          ("How many parallel downloads does fetchd run by default?", "workers | 4 | parallel downloads")]:
        answer = qa.ask(question)
        assert [c.text for c in answer.citations] == [row], question
        for c in answer.citations:
            assert qa.index.document_text(c.source)[c.start:c.end] == c.text
