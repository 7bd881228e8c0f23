"""The eval's data and metrics, checked with hand-built answers whose scores are known."""

import json
import subprocess
import sys

import pytest

from eval.judge import supports
from eval.metrics import EvalItem, aggregate, is_correct, load_set, normalise, score_item
from eval.run import DATA_DIR, judge_accuracy, load_config

from .conftest import ROOT, SEEDS

TEXT = "Alpha Corp was founded in 1990 by Ann Lee. It makes red bicycles.\n\nIt employs 40 people in Leeds."
TEXTS = {"doc.txt": TEXT}
SENT1 = "Alpha Corp was founded in 1990 by Ann Lee."
SENT2 = "It employs 40 people in Leeds."


def span(text: str) -> tuple[int, int]:
    start = TEXT.index(text)
    return start, start + len(text)


def citation(n: int, text: str) -> dict:
    s, e = span(text)
    return {"n": n, "source": "doc.txt", "start": s, "end": e, "text": text, "chunk_id": f"c{n}", "score": 1.0,
            "line": 1}


def passage(text: str) -> dict:
    s, e = span(text)
    return {"chunk_id": text[:5], "source": "doc.txt", "start": s, "end": e, "text": text, "line": 1, "score": 1.0,
            "dense": None, "lexical": None}


def answer(prose: str, citations: list[dict], passages: list[dict], abstained: bool = False) -> dict:
    return {"question": "q", "search_query": "q", "answer": prose, "abstained": abstained, "citations": citations,
            "passages": passages, "timings_ms": {}}


ITEM = EvalItem("t1", "When was Alpha Corp founded?", ("1990",), False, True, (("doc.txt", "founded in 1990"),),
                "date")
UNANSWERABLE = EvalItem("t2", "Who is the CEO?", (), False, False, (), "unanswerable")
PASSAGES = [passage("It makes red bicycles."), passage(SENT1), passage(SENT2)]


def score(item, ans):
    return score_item(item, ans, TEXTS, k=5, threshold=0.8, latency_ms=1.0)


def test_a_correct_cited_answer_scores_full_marks():
    s = score(ITEM, answer("Alpha Corp was founded in 1990 by Ann Lee [1].", [citation(1, SENT1)], PASSAGES))
    assert (s.correct, s.citation_recall, s.citation_precision, s.support, s.truthfulness) == (True, 1, 1, 1, 1)
    assert (s.hit, s.recall, s.rr, s.evidence_overlap) == (1.0, 1.0, 0.5, 1.0)


def test_an_irrelevant_extra_citation_lowers_precision_not_recall():
    s = score(ITEM, answer("Alpha Corp was founded in 1990 by Ann Lee [1][2].",
                           [citation(1, SENT1), citation(2, SENT2)], PASSAGES))
    assert s.citation_recall == 1.0 and s.citation_precision == 0.5


def test_an_uncited_sentence_lowers_citation_recall():
    s = score(ITEM, answer("Alpha Corp was founded in 1990 by Ann Lee [1]. It employs 40 people in Leeds.",
                           [citation(1, SENT1)], PASSAGES))
    assert s.citation_recall == 0.5 and s.support == 1.0


def test_a_wrong_citation_scores_zero_precision():
    s = score(ITEM, answer("Alpha Corp was founded in 1990 by Ann Lee [1].", [citation(1, SENT2)], PASSAGES))
    assert s.citation_precision == 0.0 and s.citation_recall == 0.0 and s.evidence_overlap == 0.0


def test_a_missed_evidence_span_lowers_retrieval_recall():
    item = EvalItem("t3", "q", ("1990", "40"), True, True,
                    (("doc.txt", "founded in 1990"), ("doc.txt", "employs 40 people")), "multi-doc")
    s = score(item, answer("Alpha Corp was founded in 1990 by Ann Lee [1].", [citation(1, SENT1)],
                           [passage(SENT1)]))
    assert s.recall == 0.5 and s.hit == 1.0 and s.rr == 1.0 and not s.correct and s.evidence_overlap == 0.5


def test_answering_an_unanswerable_counts_against_abstention():
    answered = score(UNANSWERABLE, answer("Alpha Corp was founded in 1990 by Ann Lee [1].", [citation(1, SENT1)],
                                          PASSAGES))
    abstained = score(UNANSWERABLE, answer("The documents don't say.", [], PASSAGES, abstained=True))
    false_abstain = score(ITEM, answer("The documents don't say.", [], PASSAGES, abstained=True))
    agg = aggregate([answered, abstained, false_abstain])
    assert answered.truthfulness == -1 and abstained.truthfulness == 0
    assert agg["abstention_recall"] == 0.5 and agg["abstention_precision"] == 0.5 and agg["false_abstention"] == 1.0
    assert agg["correctness"] == 0.0 and agg["truthfulness"] == pytest.approx(-1 / 3, abs=1e-3)


def test_squad_normalisation_and_all_answers():
    assert normalise("The  G.H.B., an   Drug!") == "ghb drug"
    assert is_correct("Killed by GHB in 2014.", ("ghb",), False)
    assert not is_correct("Gabriel Kovari and Jack Taylor", ("Gabriel Kovari", "Anthony Walgate"), True)


@pytest.mark.parametrize("premise, sentence, expected", [
    (SENT1, SENT1, True), (SENT1, "Alpha Corp was founded in 1991 by Ann Lee.", False),
    (SENT1, 'Ann Lee said "we build rockets".', False), (SENT2, "It does not employ 40 people in Leeds.", False),
])
def test_support_judge_rules(premise, sentence, expected):
    assert supports(premise, sentence) is expected


def test_every_evidence_quote_is_an_exact_substring():
    """Of the canonical text the loader makes (for HTML: the extracted main content), as DESIGN.md says."""
    from index.load import read_document

    config = load_config()
    for conf in config["sets"].values():
        if not conf.get("exact_quotes", True):
            continue  # quoted as their writers read the documents (blind2): see eval.metrics.evidence_spans
        corpus = (DATA_DIR / conf["corpus"]).resolve()
        for item in load_set(DATA_DIR / conf["file"]):
            for source, quote in item.evidence:
                document, _ = read_document(corpus / source, source)
                assert quote in document.text, (item.id, quote)


def test_reference_set_has_the_required_mix():
    items = load_set(DATA_DIR / "reference.jsonl")
    types = [i.type for i in items]
    assert len(items) >= 60 and sum(i.answerable for i in items) >= 35
    assert types.count("unanswerable") >= 12 and sum(bool(i.history) for i in items) >= 8
    assert {"factoid", "numeric", "date", "quote", "paraphrase", "list", "multi-doc", "conflict"} <= set(types)
    assert len(load_set(DATA_DIR / "harbour.jsonl")) >= 20


def test_support_judge_accuracy_on_the_hand_labelled_fixture():
    result = judge_accuracy(load_config()["judge"]["support_threshold"])
    assert result["pairs"] >= 50 and result["accuracy"] >= 0.9


@pytest.mark.slow
def test_qa_eval_writes_reports_and_gates(tmp_path, seed_settings):
    out = tmp_path / "reports"
    env = {**__import__("os").environ, "QA_INDEX_DIR": str(tmp_path / "idx"), "QA_CORPUS": str(SEEDS)}
    result = subprocess.run([sys.executable, "-m", "qa", "eval", "--set", str(DATA_DIR / "harbour.jsonl"),
                             "--baselines", "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "latest.json").read_text())
    systems = report["runs"]["harbour"]["systems"]
    assert set(systems) == {"ours (hybrid)", "without the reader", "sentence ranker", "reranker top sentence",
                            "bm25 only", "dense only", "plain langchain"}
    assert (out / "latest.md").read_text().startswith("# Grounding eval")
    assert (out / "latest.png").read_bytes()[:4] == b"\x89PNG"
    assert "| ours (hybrid) |" in result.stdout
    assert f"Reports: {out / 'latest.md'}" in result.stdout and "Gate: passed" in result.stdout


@pytest.mark.slow
def test_qa_eval_leaves_the_committed_reports_alone_and_says_where_it_wrote(tmp_path):
    # Issue 24: `qa eval` rewrote the tracked eval/reports/latest.* (a fresh clone became dirty) and said neither
    # where it wrote nor whether the gate passed.
    committed = {p.name: p.read_bytes() for p in (ROOT / "eval" / "reports").glob("latest.*")}
    env = {**__import__("os").environ, "QA_INDEX_DIR": str(tmp_path / "idx"), "QA_CORPUS": str(SEEDS),
           "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "qa", "eval", "--set", str(DATA_DIR / "harbour.jsonl")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "eval-reports" / "latest.json").exists()
    assert "Reports: eval-reports/latest.md (also latest.json, latest.png)" in result.stdout
    assert "Gate: passed (floors; no baseline for these sets)" in result.stdout
    assert {p.name: p.read_bytes() for p in (ROOT / "eval" / "reports").glob("latest.*")} == committed


def test_a_changed_test_split_is_refused(tmp_path):
    import hashlib

    from eval.run import resolve_sets
    from index.errors import UsageError

    frozen = tmp_path / "x.test.jsonl"
    frozen.write_text('{"id": "a"}\n')
    conf = {"file": str(frozen), "corpus": str(tmp_path), "split": "test",
            "sha256": hashlib.sha256(frozen.read_bytes()).hexdigest()}
    assert [name for name, *_ in resolve_sets({"sets": {"x-test": conf}}, None)] == ["x-test"]
    frozen.write_text('{"id": "a", "edited": true}\n')
    with pytest.raises(UsageError, match="has changed"):
        resolve_sets({"sets": {"x-test": conf}}, None)


def test_the_committed_test_splits_match_their_hashes():
    from eval.run import load_config, resolve_sets

    sets = resolve_sets(load_config(), None)  # raises if a frozen file was edited
    assert sum(1 for _, _, _, conf in sets if conf.get("split") == "test") == 8  # blind: 5, blind2 (by document): 3
