"""Untrusted text made safe to show: program-supplied names and messages reach terminals, logs, reports and
prompts only through :func:`escape_control`, so they cannot move the cursor, erase a line, recolour the
terminal or reorder text (bidirectional overrides)."""

from __future__ import annotations

import unicodedata

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Control, format (bidi overrides, zero-width), surrogate, private-use, unassigned, line/paragraph separators."""


def _escape(character: str) -> str:
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape_control(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control or format character written as a visible escape (``\\x1b``, ``\\u202e``).

    Tabs are kept; newlines too when ``keep_newlines`` (multi-line program text in a prompt or report),
    else they are escaped so that the result stays on one line.
    """
    kept = "\t\n" if keep_newlines else "\t"
    if text.isascii() and text.isprintable():  # the common case, without a per-character loop
        return text
    return "".join(
        character
        if character in kept or unicodedata.category(character) not in _UNSAFE_CATEGORIES
        else _escape(character)
        for character in text
    )


def is_printable_identifier(name: object) -> bool:
    """A Python identifier made of printable characters only (component and parameter names)."""
    return isinstance(name, str) and name.isidentifier() and name.isprintable()
