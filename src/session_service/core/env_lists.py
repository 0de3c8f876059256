"""List settings as people type them: a JSON list, or items separated by commas.

`CORS_ORIGINS=https://a.example,https://b.example` is what a person writes first; JSON
(`["https://a.example"]`) stays the form for items that hold a comma. A value is read as
JSON when it is a JSON list. One that starts with `[` and has a double quote but is not
valid JSON is refused rather than split: it was meant as JSON, and splitting it would
keep brackets and quotes inside the items. Anything else is split on commas, each item
trimmed and empty items dropped, so the empty string is the empty list and `[::1]` (an
IPv6 host, no quotes) is an item.
"""

from __future__ import annotations

import json
from typing import Final

FORMS: Final = 'a JSON list (["a", "b"]) or comma-separated items (a,b)'
"""The accepted forms, as refused settings name them (`settings_errors`)."""


def parse_list(raw: str) -> list[object]:
    """The items of a list setting's text; ValueError for JSON that is not valid."""
    text = raw.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            if '"' in text:
                raise ValueError(
                    f"not valid JSON ({error.msg.lower()} at character {error.pos + 1})"
                ) from None
        else:
            if isinstance(value, list):
                return value
    return [item.strip() for item in text.split(",") if item.strip()]
