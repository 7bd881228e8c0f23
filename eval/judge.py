"""The deterministic support judge: does a premise support a sentence?

The rules live in qa/support.py, shared with the grounding guard of generated answers (qa/guard.py), so
the eval scores answers by the same test the guard applies. Checked against eval/data/judge_fixture.jsonl.
"""

from qa.support import DEFAULT_THRESHOLD, content_stems, strip_markers, supports

__all__ = ["DEFAULT_THRESHOLD", "content_stems", "strip_markers", "supports"]
