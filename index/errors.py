"""One error family for the whole tool.

QAError                 a problem the user can fix; the message says how
 +-- UsageError         bad input from the user (CLI exit 2, HTTP 400/422)
 +-- NotFoundError      an unknown source or a missing path (CLI exit 2, HTTP 404)
 +-- IndexMissingError  no index where one was expected (CLI exit 1)
"""


class QAError(Exception):
    """A failure with a one-line message written for the user."""


class UsageError(QAError):
    """The user asked for something malformed: empty question, bad option value."""


class NotFoundError(QAError):
    """A path or source that does not exist (or is not indexed)."""


class IndexMissingError(QAError):
    """No usable index in the index folder."""
