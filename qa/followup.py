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
_ELLIPSIS_RE = re.compile(r"^\s*(and|what about|how about|and what about)\s+(.+?)\s*\??\s*$", re.I)


def _last_entity(history: list[tuple[str, str]]) -> str | None:
    """The most recent name mentioned in the history: the user's questions first, then the answers."""
    for user, assistant in reversed(history):
        for text in (user, assistant):
            names = question_names(text or "")
            if names:
                return names[0]
    return None


def resolve_followup(question: str, history: list[tuple[str, str]] | None) -> str:
    """The question with pronouns and ellipsis filled in from history; unchanged when it stands alone."""
    history = [(u or "", a or "") for u, a in (history or [])]
    if not history:
        return question
    previous = resolve_followup(history[-1][0], history[:-1])
    ellipsis = _ELLIPSIS_RE.match(question)
    if ellipsis:
        subject = ellipsis.group(2)
        names = question_names(previous)
        if names:
            return previous.replace(names[0], subject, 1)
        return f"{previous.rstrip('?')} {subject}?"
    entity = _last_entity([(previous, history[-1][1])])
    if entity and not question_names(question):
        def swap(m: re.Match) -> str:
            word = m.group().lower()
            # "her" is an object ("told her") or a possessive ("her son"): treat as possessive before a noun.
            if word == "her":
                after = question[m.end():].lstrip()
                return f"{entity}'s" if after[:1].isalpha() and not after.lower().startswith(("and", "?")) else entity
            return _PRONOUNS[word].format(entity)

        for tier in _PRONOUN_TIERS:
            resolved, count = tier.subn(swap, question, count=1)
            if count:
                return resolved
    return question
