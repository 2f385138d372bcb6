"""Showing stored text literally. Facts, user ids and messages come from the people whose
conversations are stored: they may contain rich markup ('[/bold]', '[link=...]') or
terminal control sequences (ESC, OSC 8 hyperlinks, bidi overrides). The CLI prints them as
text objects (never parsed as markup) with control characters made visible, so stored
text can neither crash a command nor restyle or spoof the terminal."""

from __future__ import annotations

import unicodedata

from rich.text import Text


def visible(value: object) -> str:
    """The text with every control or format character (except newline and tab) shown as
    an escape: '\\x1b[2J' prints as the six characters, not as a screen clear."""
    out = []
    for ch in str(value):
        if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"):
            out.append(ch)
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(f"\\u{ord(ch):04x}")
    return "".join(out)


def literal(value: object, style: str = "") -> Text:
    """A rich Text that is shown exactly as stored (made visible), never parsed as markup."""
    return Text(visible(value), style=style)
