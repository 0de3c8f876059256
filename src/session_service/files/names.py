"""Safe object names and storage keys, built only from server-made ids and a sanitised name.

A key is `uploads/{storage_id}/{file_id}/{safe_name}`. `storage_id` is the session's public
id (a random one for sessions from before ids and tokens were apart, whose objects keep
their keys); it grants nothing, so it may appear in download URLs. The safe name keeps
Unicode letters and digits (NFKC-normalised), `-`, `_`, `.`, `(`, `)`; anything else, path
separators and control characters included, becomes `_`. It never starts with a dot, is at
most `MAX_NAME_LENGTH` characters, and keeps a short alphanumeric extension.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

MAX_NAME_LENGTH = 100
MAX_EXTENSION_LENGTH = 10
UPLOADS_PREFIX = "uploads/"

_ALLOWED_PUNCTUATION = frozenset("-_.()")
_UNDERSCORES = re.compile(r"_{2,}")
_EXTENSION = re.compile(rf"\.([A-Za-z0-9]{{1,{MAX_EXTENSION_LENGTH}}})$")


def _keep(char: str) -> bool:
    return char.isalnum() or char in _ALLOWED_PUNCTUATION


def safe_name(original: str) -> str:
    """A name that is safe as the last segment of a storage key and in a header."""
    normalised = unicodedata.normalize("NFKC", original)
    cleaned = "".join(char if _keep(char) else "_" for char in normalised)
    cleaned = _UNDERSCORES.sub("_", cleaned).strip("._ ")
    match = _EXTENSION.search(cleaned)
    extension = f".{match.group(1).lower()}" if match else ""
    stem = cleaned[: match.start()] if match else cleaned
    stem = stem.strip("._ ")[: MAX_NAME_LENGTH - len(extension)].rstrip("._ ")
    return (stem or "file") + extension


def session_prefix(storage_id: uuid.UUID) -> str:
    """Every object of a session lives under this prefix (its storage id, never its id)."""
    return f"{UPLOADS_PREFIX}{storage_id}/"


def storage_key(storage_id: uuid.UUID, file_id: uuid.UUID, original_name: str) -> str:
    """The object key of a file: server-made ids plus the sanitised name."""
    return f"{session_prefix(storage_id)}{file_id}/{safe_name(original_name)}"
