"""Checks of text that both indexing and the `qa` command run; this module imports nothing, so a cold
`qa ask` need not load index.load (its parsers and subprocess isolation) for them."""


def is_utf8(name: str) -> bool:
    """False for a text with bytes that are not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
