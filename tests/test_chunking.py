import pytest

from index.build import unique_chunks
from index.chunk import chunk_document, sentence_units, split_sentences
from index.formats import read_md
from index.load import Document, load_corpus

from .conftest import SEEDS


def _doc(text: str, source: str = "t.txt") -> Document:
    return Document(source=source, doc_hash="h", text=text)


@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith went home. He slept.", ["Mr. Smith went home.", "He slept."]),
    ("It cost 3.5 million. Then it fell!", ["It cost 3.5 million.", "Then it fell!"]),
    ('She said: "No." Then left.', ['She said: "No."', "Then left."]),
    ("J. R. Smith wrote it. Done.", ["J. R. Smith wrote it.", "Done."]),
])
def test_split_sentences(text, expected):
    assert [text[s:e] for s, e in split_sentences(text)] == expected


def test_the_answerer_never_reads_a_two_word_piece_of_a_reference_alone():
    # Issue 23: a bibliography read as "1996." and "Commun." units, a quarter of a PDF's units were such fragments.
    entry = "[16] David Harel. 1979. First-Order Dynamic Logic. Springer-Verlag, Berlin. Vol. 68."
    units = [entry[s:e] for s, e in sentence_units(entry)]
    assert units == [entry]  # one reference, one unit
    prose = "The bridge opened in 1932. It cost four million pounds. Done."
    assert [prose[s:e] for s, e in sentence_units(prose)] == ["The bridge opened in 1932.",
                                                             "It cost four million pounds. Done."]
    assert [entry[s:e] for s, e in split_sentences(entry)][1] == "1979."  # sentences themselves stay as they are


def test_every_chunk_slices_its_document_exactly():
    docs, _ = load_corpus(SEEDS)
    for doc in docs:
        chunks = chunk_document(doc)
        assert chunks
        for chunk in chunks:
            assert doc.text[chunk.start:chunk.end] == chunk.text
            assert len(chunk.text) <= 500


def test_chunks_do_not_cross_paragraphs_but_follow_hard_wrapped_lines():
    text = "Title line\nFirst sentence wraps\nonto this line. Second one.\n\nA new paragraph starts here."
    chunks = chunk_document(_doc(text))
    assert [c.text for c in chunks] == ["First sentence wraps\nonto this line. Second one.",
                                        "A new paragraph starts here."]
    assert [c.headings for c in chunks] == ["Title line", "Title line"]  # the title is context, not a chunk


def test_a_fragment_paragraph_joins_a_neighbour_and_is_never_read_alone():
    # Issue 23: chart labels, lone numbers and code lines were chunks of their own, 11.6% of the units the answerer
    # read on the blind PDFs; found by nothing, answering nothing.
    text = ("# Pump manual\n\nsee figure 3\n\nThe pump delivers forty litres a minute at full speed.\n\n2013\n\n"
            "The valve closes when the pressure drops below two bar. It opens again at three.\n\n"
            "| Part | Weight |\n|---|---|\n| Pump | 4 kg |\n\nok\n\n## Limits\n\nrated 2013")
    parsed = read_md(text)
    doc = Document("t.md", "h", parsed.text, tuple(parsed.blocks))
    chunks = chunk_document(doc)
    assert [c.text for c in chunks] == [
        "see figure 3\n\nThe pump delivers forty litres a minute at full speed.\n\n2013",
        "The valve closes when the pressure drops below two bar. It opens again at three.",
        "| Part | Weight |\n|---|---|\n| Pump | 4 kg |",  # a table's rows stay rows: "ok" is not one of them
        "ok",
        "rated 2013"]  # not across the heading "Limits", which it sits under
    assert [c.headings for c in chunks] == ["Pump manual"] * 4 + ["Pump manual > Limits"]
    assert all(doc.text[c.start:c.end] == c.text for c in chunks)
    # Units never run across a blank line, except a fragment joined to its neighbour.
    merged = "The pump delivers forty litres a minute.\n\nThe valve closes at two bar\n\nfigure 3"
    assert [merged[s:e] for s, e in sentence_units(merged)] == [
        "The pump delivers forty litres a minute.", "The valve closes at two bar\n\nfigure 3"]


def test_identical_chunks_are_stored_once():
    docs, _ = load_corpus(SEEDS)
    all_chunks = [c for d in docs for c in chunk_document(d)]
    kept = unique_chunks(docs)
    assert len(kept) == len(all_chunks) - 1  # seed 000 repeats its first sentence
    assert max(copies for _, copies in kept.values()) == 2


def test_chunk_ids_are_stable_and_depend_on_content():
    a = chunk_document(_doc("One. Two."))
    assert [c.chunk_id for c in a] == [c.chunk_id for c in chunk_document(_doc("One. Two."))]
    changed = Document(source="t.txt", doc_hash="other", text="One. Two.")
    assert a[0].chunk_id != chunk_document(changed)[0].chunk_id


def _units_of_markdown(text: str) -> list[list[str]]:
    parsed = read_md(text)
    chunks = chunk_document(Document("t.md", "h", parsed.text, tuple(parsed.blocks)))
    return [[c.text[s:e] for s, e in sentence_units(c.text, c.table)] for c in chunks]


def test_joined_paragraphs_never_turn_into_a_table_that_hides_a_line():
    # Hostile round: two pieces joined into "| ... |\n\n|---|\n7 |" read as a table, its first line a header that
    # no unit holds: "Revenue was five million dollars" could never be cited.
    units = [u for chunk in _units_of_markdown("# H\n\n| Revenue was five million dollars |\n\n|---|\n7 |\n")
             for u in chunk]
    assert any("Revenue was five million dollars" in u for u in units)


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_line_endings_do_not_change_what_is_read(newline):
    # A Markdown file with "\r" line ends was one heading and no chunks at all; with "\r\n" a blank line did not
    # end a unit.
    lines = ["# Data", "", "Revenue by region in millions of euros for the year.", "", "1 2 3 4 5", "",
             "| Region | Revenue |", "|---|---|", "| North | 4 |", "", "The south grew fastest of all regions."]
    plain = _units_of_markdown("\n".join(lines))
    other = _units_of_markdown(newline.join(lines))
    assert [[u.replace(newline, "\n") for u in chunk] for chunk in other] == plain
    assert plain == [["Revenue by region in millions of euros for the year.\n\n1 2 3 4 5"], ["North | 4"],
                     ["The south grew fastest of all regions."]]
