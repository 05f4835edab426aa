"""Counts in messages: "1 column", "2 columns"."""

from __future__ import annotations


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """`n` with the noun (or noun and verb) that agrees with it: counted(1, "id occurs",
    "ids occur") is "1 id occurs"; the plural defaults to the singular with an s."""
    return f"{n:,} {singular if n == 1 else plural or singular + 's'}"
