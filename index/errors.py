"""One error family for the whole tool.

QAError                 a problem the user can fix; the message says how
 +-- UsageError         bad input from the user (CLI exit 2, HTTP 400/422)
 +-- NotFoundError      an unknown source or a missing path (CLI exit 2, HTTP 404)
 +-- IndexMissingError  no index where one was expected (CLI exit 1)
 +-- IndexDamagedError  an index whose files fail their checks (CLI exit 1, HTTP 503)
 +-- IndexBusyError     another `qa index` holds the index folder (CLI exit 1)
"""


class QAError(Exception):
    """A failure with a one-line message written for the user."""


class UsageError(QAError):
    """The user asked for something malformed: empty question, bad option value."""


class NotFoundError(QAError):
    """A path or source that does not exist (or is not indexed)."""


class IndexMissingError(QAError):
    """No usable index in the index folder."""


class IndexDamagedError(QAError):
    """Index files that fail their checks (truncated, corrupted, or written by something else)."""

    def __init__(self, index_dir, detail: str = ""):
        super().__init__(f"the index at {index_dir} is damaged{f' ({detail})' if detail else ''}: "
                         "run qa index --rebuild")


class IndexBusyError(QAError):
    """Another `qa index` run is writing the same index folder."""

    # What a web client is told: the process id and the index folder are the host's business.
    public = "this collection is being indexed right now: try again when that finishes"


def said(exc: QAError) -> str:
    """An error as a web client is told it: without the host's process ids and paths where it has them."""
    return getattr(exc, "public", None) or str(exc)
