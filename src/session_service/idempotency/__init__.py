"""`Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header): a retried request is
answered with the first answer, never executed twice (docs/idempotency.md)."""
