"""What a question asks for, and how follow-ups are resolved (pure functions, no index)."""

import pytest

from index.lexical import stem
from qa.engine import split_question
from qa.followup import resolve_followup
from qa.question import analyse, answer_type, head_noun, typed_values


@pytest.mark.parametrize("question, kind", [
    ("How many officers were investigated?", "number"), ("How old was he?", "number"),
    ("When is the report due?", "date"), ("Between which dates were they killed?", "date"),
    ("Who chaired the meeting?", "name"), ("Which drug killed him?", "name"),
    ("How long does the crossing take?", "duration"), ("What did the note say?", None),
])
def test_answer_type(question, kind):
    assert answer_type(question) == kind


@pytest.mark.parametrize("question, head", [
    ("Which dating website did he use?", "websit"), ("Which BBC programme was it?", "programm"),
    ("Which judge sentenced Port?", "judg"), ("What did he say?", None),
])
def test_head_noun(question, head):
    assert head_noun(question) == head


def test_typed_values_leave_out_what_the_question_has_and_months_are_not_names():
    assert typed_values("number", "Mr Whitworth, 21, was one of 4.", "How old was Mr Whitworth?") == ["21", "one", "4"]
    assert typed_values("name", "Port was sentenced in November by Judge Amy Ray.", "Who sentenced Port?") == [
        "Judge Amy Ray"]


def test_irregular_verbs_share_a_stem():
    assert stem("met") == stem("meet") and stem("told") == stem("tell") and stem("killed") == stem("kills")


@pytest.mark.parametrize("question, history, resolved", [
    ("How old was he?", [("Which drug killed Daniel Whitworth?", "GHB")], "How old was Daniel Whitworth?"),
    ("When did they meet her?", [("Which commissioner did the lawyers meet?", "They met commissioner Cindy Butts.")],
     "When did they meet Cindy Butts?"),
    ("What did she say?", [("Who was Daniel Whitworth's stepmother?", "Mandy Pearson, his stepmother.")],
     "What did Mandy Pearson say?"),
    ("And Jack Taylor?", [("How old was Anthony Walgate?", "23")], "How old was Jack Taylor?"),
    ("Did Jack Taylor know him?", [("Who is Port?", "A killer.")], "Did Jack Taylor know him?"),
    ("What is GHB?", [("Which drug killed Daniel Whitworth?", "GHB")], "What is GHB?"),
    # A leading conjunction joins the follow-up to the last turn; what follows is a question of its own
    # (issue 24: "and how old was he?" was searched as "Which drug killed how old was he?").
    ("and how old was he?", [("Which drug killed Daniel Whitworth?", "GHB")], "How old was Daniel Whitworth?"),
    ("And where was his body found?", [("Which drug killed Daniel Whitworth?", "GHB")],
     "Where was Daniel Whitworth's body found?"),
    ("but, when was she appointed?", [("Who is the harbour master?", "The harbour master is Ines Carvalho.")],
     "When was Ines Carvalho appointed?"),
    ("and Jack Taylor?", [("How old was Anthony Walgate?", "23")], "How old was Jack Taylor?"),
    ("and the bus?", [("When does the ferry to Camber leave?", "At 9:40.")], "When does the bus leave?"),
    # "it" is the thing the last question asked about, not a place it named
    ("and how long does it take?", [("When does the ferry to Camber leave?", "At 9:40.")],
     "How long does the ferry to Camber take?"),
    # a name only the last answer gave
    ("How long has he held the post?", [("Who is the harbour master?", "Tom Reed has been harbour master for years.")],
     "How long has Tom Reed held the post?"),
])
def test_follow_ups(question, history, resolved):
    assert resolve_followup(question, history) == resolved


def test_compound_questions_split_into_parts():
    assert split_question("How many deaths are re-examined, and which drug was used?") == [
        "How many deaths are re-examined?", "which drug was used?"]
    assert split_question("Who met Ann and Bob?") == ["Who met Ann and Bob?"]
    # a later part that points back at an earlier one is that part's follow-up
    assert split_question("Which drug killed Daniel Whitworth, and how old was he?") == [
        "Which drug killed Daniel Whitworth?", "how old was Daniel Whitworth?"]


def test_names_group_so_a_surname_matches_the_full_name():
    spec = analyse("How old was Daniel Whitworth?")
    assert ("daniel", "whitworth") in spec.groups()
