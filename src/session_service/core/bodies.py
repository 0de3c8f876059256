"""The base of every JSON request body: exactly the declared fields, exactly their types."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """Unknown fields and type coercion refused (`422 validation_error`).

    Pydantic's lax mode reads `true` as 1, `"12"` as 12 and `12.0` as 12; a client that
    sends those has a bug the answer should show, not hide. Values JSON can only carry as
    strings (enums, UUIDs, times) opt out per field with `Field(strict=False)` or are parsed
    by a validator that takes any input.
    """

    model_config = ConfigDict(extra="forbid", strict=True)
