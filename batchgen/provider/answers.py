"""Reading a provider's answers as relays really send them.

Relays keep the ``/v1/videos`` shape but not its details (shared/reference/relays.md): the
progress may be ``"100%"``, the video's link may sit at ``metadata.url``, and an error may be
OpenAI's ``{"error": {…}}``, new-api's flat ``{"code", "message", "data"}``, LiteLLM's
``{"error": {"message": "litellm.BadRequestError: …", "code": "400"}}`` or an HTML page.
Everything here is a pure function of the answer's text or JSON.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

EXCERPT_CHARS = 160
#: Longest provider text (an error's message or code) kept whole: the rest is cut, so a
#: provider cannot grow the results file (and every later line of the row) without limit.
STORED_CHARS = 2000
#: A code named inside a message, as LiteLLM quotes its upstream: ``'code': 'moderation_blocked'``.
_EMBEDDED_CODE = re.compile(r"""["']code["']\s*:\s*["']([A-Za-z][\w.-]{1,80})["']""")
_PERCENT = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%?\s*")


def progress_of(value: Any) -> int | None:
    """A progress of ``42``, ``42.5``, ``"42"`` or ``"42%"`` as a whole number; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    match = _PERCENT.fullmatch(value) if isinstance(value, str) else None
    return int(float(match[1])) if match else None


def field_at(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path (``metadata.url``) of a JSON object; None when absent."""
    value: Any = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def first_link(data: Mapping[str, Any], paths: Iterable[str]) -> str:
    """The first ``http(s)://`` link found at ``paths`` (tried in order); "" when none."""
    for path in paths:
        value = field_at(data, path)
        if isinstance(value, str) and value.strip().lower().startswith(("http://", "https://")):
            return value.strip()
    return ""


def error_details(body: str) -> tuple[str, str]:
    """The provider's own error message and code, or a short excerpt of whatever it sent."""
    try:
        data = json.loads(body)
    except ValueError:
        return excerpt(body), ""
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, str) and isinstance(data, dict):
        error = {**data, "message": error}  # {"error": "text", "code": …}
    if not isinstance(error, dict):
        return excerpt(str(error)), ""
    message = error.get("message") or error.get("msg") or json.dumps(error, ensure_ascii=False)
    code = str(error.get("code") or error.get("type") or "")
    return bounded(str(message)), bounded(_real_code(code, str(message)))


def _real_code(code: str, message: str) -> str:
    """A code that is only the HTTP status again (LiteLLM's ``"400"``) gives way to a real
    one quoted in the message, which says more (``moderation_blocked``)."""
    if code and not code.isdigit():
        return code
    embedded = _EMBEDDED_CODE.search(message)
    return embedded[1] if embedded else code


def excerpt(text: str) -> str:
    """A short, single-line, tag-free excerpt of a body, for an error message."""
    plain = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    plain = html.unescape(re.sub(r"<[^>]+>", " ", plain))
    plain = " ".join(plain.split())
    return plain if len(plain) <= EXCERPT_CHARS else plain[: EXCERPT_CHARS - 1] + "…"


def bounded(text: str) -> str:
    """``text`` itself, or its first :data:`STORED_CHARS` characters and its full length."""
    if len(text) <= STORED_CHARS:
        return text
    return f"{text[:STORED_CHARS]}… (cut: {len(text):,} characters in all)"
