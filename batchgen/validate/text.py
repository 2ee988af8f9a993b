"""Text that can be written as UTF-8, which the results file and the API both need.

A Python string can hold a lone surrogate (a YAML escape such as ``"\\udc81"``) that no
UTF-8 file or HTTP form can carry. Found only when the results file is written, it would
stop a run midway, and every rerun at the same row, so it is a validation error.
"""

from __future__ import annotations

import re

#: The only code points a ``str`` can hold that UTF-8 cannot encode.
_SURROGATE = re.compile("[\ud800-\udfff]")


def first_unwritable(text: str) -> int | None:
    """The index of the first character of ``text`` UTF-8 cannot encode, or None."""
    if text.isascii():  # constant time: most cells need no search
        return None
    match = _SURROGATE.search(text)
    return None if match is None else match.start()


def escaped(text: str) -> str:
    """``text`` safe to print and write: unencodable characters as ``\\udc81`` escapes."""
    if first_unwritable(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def unwritable_message(text: str) -> str | None:
    """Why ``text`` cannot be written as UTF-8, for a ``file:row: column: message``; None if
    it can."""
    index = first_unwritable(text)
    if index is None:
        return None
    char = escaped(text[index])
    return (
        f"character {index + 1} ({char}) cannot be written as UTF-8 (a lone surrogate, "
        "e.g. from a \\u escape): retype this text"
    )
