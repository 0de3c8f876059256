"""`Content-Disposition: attachment` naming a file, for both backends (RFC 6266, 5987).

`filename` carries a sanitised ASCII fallback; `filename*` the exact UTF-8 name, which
modern browsers prefer. Control characters reach neither; quotes, backslashes and `;`
never reach the fallback, so no name can end the parameter early.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote


def content_disposition(filename: str) -> str:
    """An attachment header value that no file name can break out of."""
    name = "".join(char for char in filename if unicodedata.category(char) != "Cc")
    decomposed = unicodedata.normalize("NFKD", name)
    fallback = "".join(
        char if char.isascii() else "_"
        for char in decomposed
        if not unicodedata.combining(char) and char not in '"\\;'
    ).strip()
    fallback = fallback or "download"
    return (
        f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name or fallback, safe='')}"
    )
