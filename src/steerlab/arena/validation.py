"""Checks on what people submit: handle pattern, text caps, control characters, duplicate key.

Every rejection is a `SubmissionRejected` with an HTTP status, a stable machine code, the
field at fault and a message that says how to fix it; the web layer turns it into JSON
`{"error": {"code", "message", "field"}}` (or a form message on the HTML page).

    normalized_key("  Be   KIND ") == normalized_key("be kind")     # NFKC, case-folded, spaces collapsed
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

HANDLE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
HANDLE_RULE = "1-32 characters: letters, digits, '_', '.', '-', starting with a letter or digit"

# bidirectional overrides and isolates (Cf) can disguise text on a board, so they count as control characters
_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


@dataclass
class Limits:
    """Caps on one submission."""

    max_chars: int = 300
    max_tokens: int = 64
    max_body_bytes: int = 16_384  # whole HTTP request body


class SubmissionRejected(Exception):
    """A submission that breaks a rule; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.retry_after = retry_after

    def to_json(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        if self.retry_after is not None:
            error["retry_after"] = self.retry_after
        return {"error": error}


def normalized_key(text: str) -> str:
    """The duplicate key: NFKC, case-folded, runs of whitespace collapsed to one space, trimmed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split())


def check_handle(handle: object) -> str:
    if not isinstance(handle, str) or not handle:
        raise SubmissionRejected(422, "handle_missing", f"'handle' is required: {HANDLE_RULE}", "handle")
    if not HANDLE_PATTERN.match(handle):
        shown = handle if len(handle) <= 40 else handle[:40] + "..."
        raise SubmissionRejected(422, "handle_invalid", f"handle {shown!r} is not allowed; use {HANDLE_RULE}", "handle")
    return handle


def control_characters(text: str) -> list[str]:
    """Code points (as U+XXXX) of control characters in text: category Cc, surrogates, bidi controls."""
    found = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or char in _BIDI_CONTROLS:
            code = f"U+{ord(char):04X}"
            if code not in found:
                found.append(code)
    return found


def check_text(text: object, limits: Limits, count_tokens: Callable[[str], int]) -> str:
    """The text as stored (surrounding whitespace trimmed), or a rejection saying which rule failed."""
    if not isinstance(text, str):
        raise SubmissionRejected(422, "text_missing", "'text' is required and must be a string", "text")
    bad = control_characters(text)
    if bad:
        raise SubmissionRejected(
            422, "text_control_characters",
            f"text contains control characters ({', '.join(bad[:5])}); remove them (newlines and tabs included)", "text",
        )
    text = text.strip()
    if not text:
        raise SubmissionRejected(422, "text_empty", "text is empty; submit at least one visible character", "text")
    if len(text) > limits.max_chars:
        raise SubmissionRejected(
            422, "text_too_long", f"text has {len(text)} characters; the limit is {limits.max_chars}", "text",
        )
    tokens = count_tokens(text)
    if tokens > limits.max_tokens:
        raise SubmissionRejected(
            422, "text_too_many_tokens", f"text is {tokens} tokens long; the limit is {limits.max_tokens} tokens", "text",
        )
    return text
