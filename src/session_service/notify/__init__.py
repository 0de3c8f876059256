"""Admin alerts for unexpected errors, by email and webhook, sent off the request path."""
