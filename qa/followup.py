"""Resolve a follow-up question ("How old was he?") against the chat history before searching."""

from __future__ import annotations

import re

from .question import question_names

_PRONOUNS = {
    "he": "{}", "him": "{}", "his": "{}'s", "she": "{}", "hers": "{}'s",
    "they": "{}", "them": "{}", "their": "{}'s", "it": "{}", "its": "{}'s",
}
# Tried in this order: a person ("he", "her") is likelier to be the named entity than "they" or "it".
_PRONOUN_TIERS = [re.compile(rf"\b({words})\b", re.I) for words in ("he|him|his|she|her|hers", "they|them|their",
                                                                      "it|its")]
_ASKS_FOR_PERSON = re.compile(r"^\s*who\b|\bwhose\b", re.I)
_ELLIPSIS_RE = re.compile(r"^\s*(?:and\s+)?(?:what|how)\s+about\s+(.+?)\s*\??\s*$", re.IGNORECASE)
# A follow-up often opens with a conjunction that joins it to the last turn ("and how old was he?"); what
# follows it is either a question of its own, or only the thing the last question is now asked about
# ("and Jack Taylor?").
_LEADING_CONJUNCTION = re.compile(r"^\s*(?:and|but|so|also|then|plus|or|ok|okay)\b[\s,]*(?:(?:also|then|so)\b[\s,]*)?",
                                  re.IGNORECASE)
# A clause that opens with a question word, an auxiliary verb or a request is a question of its own.
_OPENS_A_QUESTION = re.compile(
    r"^(?:who|whom|whose|what|when|where|why|how|which|is|are|was|were|am|do|does|did|can|could|has|have|had|will|"
    r"would|should|shall|may|might|must|tell|list|name|give|describe|explain|show|in|on|at|for|from|to|with|by)\b",
    re.IGNORECASE)


def _last_entity(history: list[tuple[str, str]], person: bool = False) -> str | None:
    """The most recent name in the history, the user's question before the answer.

    For "he"/"she" a full name ("Cindy Butts") is preferred to an acronym or a single word ("IPCC").
    """
    for user, assistant in reversed(history):
        asked, answered = question_names(user or ""), question_names(assistant or "")
        names = list(asked) + list(answered)
        if person and _ASKS_FOR_PERSON.search(user or ""):
            # After "Who was X's stepmother?", "she" is the person the answer named, not X.
            names = [n for n in answered if n not in asked] + names
        if person:
            names = [n for n in names if " " in n] or names
        if names:
            return names[0]
    return None


# "the ferry", "the ferry to Camber": a definite noun, and the name it is of or to.
_THING_RE = re.compile(r"\bthe\s+(?!same\b|other\b)[a-z][\w'-]*(?:\s+(?:of|to|at|in|for|from|on)\s+"
                       r"[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)?")
FOLLOWUP_TURNS = 6  # a follow-up refers to the last few turns; older ones cannot change what it means


def resolve_followup(question: str, history: list[tuple[str, str]] | None) -> str:
    """The question with pronouns and ellipsis filled in from history; unchanged when it stands alone.

    Each earlier question of the last few turns is resolved in turn (oldest first), so a chain of
    follow-ups carries its subject forward; the cost does not grow with the length of the chat.
    """
    history = [(u or "", a or "") for u, a in (history or [])][-FOLLOWUP_TURNS:]
    previous = None
    for i, (user, _) in enumerate(history):
        previous = _resolve_against(user, history[:i], previous)
    return _resolve_against(question, history, previous)


def _resolve_against(question: str, history: list[tuple[str, str]], previous: str | None) -> str:
    """Resolve question against the last turn of history, whose question resolved to previous."""
    if not history:
        return question
    ellipsis = _ELLIPSIS_RE.match(question)
    subject = ellipsis.group(1) if ellipsis else None
    rest = _LEADING_CONJUNCTION.sub("", question, count=1).strip()
    if not ellipsis and rest and rest != question.strip():
        if _OPENS_A_QUESTION.match(rest):  # "and how old was he?" asks "How old was he?" of the same subject
            question = rest[0].upper() + rest[1:]
        else:
            subject = rest.rstrip("?").strip()
    if subject:
        names, thing = question_names(previous), _THING_RE.search(previous)
        if thing and not question_names(subject):  # "and the bus?" after "When does the ferry leave?"
            return previous[:thing.start()] + subject + previous[thing.end():]
        if names:
            return previous.replace(names[0], subject, 1)
        return f"{previous.rstrip('?')} {subject}?"
    if any(" " in name for name in question_names(question)):
        return question  # a full name in the question is what its pronouns refer to
    for tier_number, tier in enumerate(_PRONOUN_TIERS):
        entity = _last_entity([(previous, history[-1][1])], person=tier_number == 0)
        thing = _THING_RE.search(previous or "") if tier_number == 2 else None
        if thing:  # "it" is the thing the last question asked about ("the ferry to Camber"), not a place it named
            entity = thing.group()
        if not entity or not tier.search(question):
            continue

        def swap(m: re.Match, entity: str = entity) -> str:
            word = m.group().lower()
            # "her" is an object ("told her") or a possessive ("her son"): treat as possessive before a noun.
            if word == "her":
                after = question[m.end():].lstrip()
                return f"{entity}'s" if after[:1].isalpha() and not after.lower().startswith(("and", "?")) else entity
            return _PRONOUNS[word].format(entity)

        return tier.sub(swap, question, count=1)
    return question
