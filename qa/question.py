"""What a question asks for: the kind of answer it expects and the words it is about."""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.lexical import STOPWORDS, stem, words

# Question words and light verbs that say nothing about the topic ("Who is the solicitor
# speaking for ..." is about the solicitor, not about speaking).
QUESTION_WORDS = frozenset("""what which who whom whose when where why how name named kind type happen happened
did do does was were is are many much old long speak speaks speaking spoke spoken talk talked talking say
saying use used using get got make made go went take took""".split())

_NUMBER_WORDS = ("one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                 "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|hundred|thousand|million|"
                 "dozens?|several|numerous")
# "May" is a month next to a number or after "in" ("in May", "3 May 2020"), not in "you may escalate".
_MONTHS = ("january|february|march|april|(?<=in )may|(?<=\\d )may|may(?= \\d)|june|july|august|september|october|"
           "november|december")
PATTERNS = {
    "number": re.compile(rf"\b(\d[\d,.]*|{_NUMBER_WORDS})\b", re.I),
    # Dates and times of day: "when does the ferry leave?" is answered by "at 9:40 every morning".
    "date": re.compile(rf"\b((1[89]|20)\d\d|{_MONTHS}|monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
                       r"yesterday|today|tomorrow|spring|summer|autumn|winter|last (week|month|year)|"
                       r"(this|next) (week|month|year)|end of the year|ago|\d{1,2}:\d\d(\s*[ap]\.?m\b\.?)?|"
                       r"\d{1,2}(\.\d\d)?\s*[ap]\.?m\b\.?|\d{1,2} o'clock|noon|midday|midnight|"
                       r"(every|each) (morning|afternoon|evening|night|day|week|month|year)|daily|weekly|monthly|"
                       r"annually|\d{1,2}(st|nd|rd|th))\b", re.I),
    "duration": re.compile(rf"\b(\d[\d,.]*|a|an|{_NUMBER_WORDS}|several|few)\s+((whole|full|entire|further)\s+)?(seconds?|minutes?|hours?|days?|"
                           r"weeks?|fortnights?|months?|years?|decades?)\b", re.I),
    # Two or more capitalised words, an honorific and a name, or an acronym.
    "name": re.compile(r"\b((Mr|Mrs|Ms|Dr|Sir|Lady|Lord)\.? [A-Z][\w'-]+|[A-Z][\w'-]+(?: [A-Z][\w'-]+)+|[A-Z]{2,}|"
                       r"(?<=[a-z,] )[A-Z][a-z][\w'-]*)\b"),
}
# Soft answer kinds, features for the fitted selector only (the hand rules use answer_type): the many ways a
# question asks for an amount, a span of time, a version or a reason. A question may ask for several.
SOFT_KINDS = ("number", "date", "duration", "name", "version", "reason")
_SOFT_RULES = {
    "number": re.compile(r"\bhow (many|much|old|far|often|big|large|small|long)\b|\b(what|which) (number|age|percentage|"
                         r"amount|share|proportion|fraction|ratio|size|limit|cap|maximum|minimum|count|rate|price|"
                         r"cost|level|depth|length)\b|\bnumber of\b|\bhow (few|high|low)\b", re.IGNORECASE),
    "date": re.compile(r"^\s*when\b|\bwhat (year|month|date|day|time)\b|\bwhich (years?|months?|days?|dates?)\b|"
                       r"\bby when\b|\bwhen (did|was|were|is|will|does|do)\b|\bsince when\b|\buntil when\b",
                       re.IGNORECASE),
    "duration": re.compile(r"\bhow long\b|\b(what|which) (period|interval|delay|duration|timeout|span|length of "
                           r"time)\b|\bafter how\b|\bhow (soon|quickly)\b|\bhow many (seconds|minutes|hours|days|"
                           r"weeks|months|years)\b", re.IGNORECASE),
    "name": re.compile(r"^\s*who\b|\bwho(m|se)?\b|\bname\b|\bwhich\s+[a-z]+|\bwhat (organi[sz]ation|company|"
                       r"body|project|tool|program|package|command|file|option|person|group)\b", re.IGNORECASE),
    "version": re.compile(r"\bversion\b|\brelease\b|\bwhich [\w+-]+ (version|release)\b", re.IGNORECASE),
    "reason": re.compile(r"^\s*why\b|\bwhy\b|\breason\b|\bwhat (would|could|will) (go wrong|happen|break)\b|"
                         r"\bpurpose\b|\bwhat for\b|\bcaus", re.IGNORECASE),
}
_VALUE_PATTERNS = {
    "version": re.compile(r"\b\d+\.\d+(\.\d+)*[a-z]?\b|\b(v|version|release)\s*\d+\b", re.IGNORECASE),
    "reason": re.compile(r"\b(because|due to|since|so that|in order to|to (avoid|prevent|allow|ensure|make sure)|"
                         r"otherwise|as a result|therefore|which means|(doesn't|does not|don't|do not|won't|will not|"
                         r"cannot|can't) (allow|work|let)|prevents?|causes?|breaks?|the reason)\b", re.IGNORECASE),
}


def soft_kinds(question: str) -> tuple[float, ...]:
    """1.0 for each of SOFT_KINDS the question's wording asks for (none: any text may answer)."""
    return tuple(float(bool(_SOFT_RULES[kind].search(question))) for kind in SOFT_KINDS)


def kinds_in(text: str, exclude: str = "") -> tuple[float, ...]:
    """1.0 for each of SOFT_KINDS the text holds a value of (values the question itself has left out)."""
    out = []
    for kind in SOFT_KINDS:
        if kind in _VALUE_PATTERNS:
            found = [m.group() for m in _VALUE_PATTERNS[kind].finditer(text)]
            out.append(float(any(v.lower() not in exclude.lower() for v in found)))
        else:
            out.append(float(bool(typed_values(kind, text, exclude))))
    return tuple(out)


_TYPE_RULES = (
    ("duration", re.compile(r"\bhow long\b|\bfor how long\b", re.I)),
    ("number", re.compile(r"\bhow (many|much|old|far|often)\b|\bwhat (number|age|percentage|amount)\b|"
                          r"\bwhat was the (number|age)\b", re.I)),
    ("date", re.compile(r"^\s*when\b|\bwhat (year|month|date|day|time)\b|\bwhich (years?|months?|days?|dates?)\b|"
                        r"\bby when\b|\bwhat time\b|\bwhen (did|was|were|is|will)\b", re.I)),
    ("name", re.compile(r"^\s*who\b|\bwho (is|was|were|are)\b|\bwhose\b|\bwhat (is|was) the name\b|\bname of\b|"
                        # "which X" asks to pick out a particular X: answered by a name (dates matched above)
                        r"\bwhich\s+[a-z]+", re.I)),
)


_HEAD_RE = re.compile(r"\b(which|what)\s+([a-z]+)(?:\s+([a-z]+))?", re.I)
# "What time/year/age ..." names the kind of answer (see _TYPE_RULES), not a category the answer must name.
TYPE_NOUNS = frozenset("time times year years month months date dates day days age number percentage amount".split())


def head_noun(question: str) -> str | None:
    """The noun of "which X" / "what X" ("which dating website" -> website, "which BBC programme" -> programme)."""
    m = _HEAD_RE.search(question)
    if not m or m.group(2).lower() in STOPWORDS | QUESTION_WORDS | TYPE_NOUNS:
        return None
    first, second = m.group(2), m.group(3)
    # An acronym, a name ("which Debian release") or a participle qualifies the noun after it.
    modifier = first.isupper() or first[0].isupper() or first.lower().endswith("ing")
    if modifier and second and second.lower() not in STOPWORDS | QUESTION_WORDS:
        return stem(second.lower())
    return stem(first.lower())


@dataclass(frozen=True)
class QuestionSpec:
    text: str
    answer_type: str | None  # "number", "date", "name", or None when any text may answer
    focus: tuple[str, ...]  # stemmed topic terms, in order
    names: tuple[str, ...]  # capitalised names the question mentions
    head: str | None = None  # stemmed noun of "which X" / "what X": the category the answer must belong to

    def groups(self) -> list[tuple[str, ...]]:
        """Focus terms to match, the words of one name grouped: "Mr Whitworth" matches "Daniel Whitworth"."""
        grouped, used = [], set()
        for name in self.names:
            members = tuple(t for t in (stem(w.lower()) for w in name.split()) if t in self.focus)
            if len(members) > 1:
                grouped.append(members)
                used.update(members)
        return grouped + [(t,) for t in self.focus if t not in used]


def answer_type(question: str) -> str | None:
    """The kind of answer the question expects, from its wording."""
    for kind, rule in _TYPE_RULES:
        if rule.search(question):
            return kind
    return None


def question_names(question: str) -> tuple[str, ...]:
    """Capitalised names in the question (the first word is a name only when another follows)."""
    found = []
    for m in PATTERNS["name"].finditer(question):
        name = m.group()
        first = name.split()[0].lower()
        if first in QUESTION_WORDS or first in STOPWORDS:
            name = " ".join(name.split()[1:])
        name = re.sub(r"['\u2019]s$", "", name)
        if name and (" " in name or name.isupper() or m.start() > 0):
            found.append(name)
    return tuple(found)


def analyse(question: str) -> QuestionSpec:
    focus = []
    for _, _, word in words(question):
        low = word.lower()
        if low in STOPWORDS or low in QUESTION_WORDS:
            continue
        term = stem(low.replace(",", ""))
        if term not in focus:
            focus.append(term)
    return QuestionSpec(question, answer_type(question), tuple(focus), question_names(question), head_noun(question))


def typed_values(kind: str, text: str, exclude: str = "") -> list[str]:
    """Values of the given kind in text (numbers, dates or names), leaving out those the question already has."""
    excluded = {v.lower() for v in (m.group() for m in PATTERNS[kind].finditer(exclude))}
    excluded |= {w.lower() for _, _, w in words(exclude)}
    out = []
    for m in PATTERNS[kind].finditer(text):
        value = m.group()
        if kind == "name":
            if PATTERNS["date"].fullmatch(value):
                continue  # "November" is a date, not a name
            parts = [p for p in value.split() if p.lower() not in excluded]
            value = " ".join(parts) if parts else ""
            if not value or value.lower() in STOPWORDS:
                continue
        elif value.lower() in excluded:
            continue
        out.append(value)
    return out
