"""Adapters for agent frameworks, each behind an optional extra; they call the service over
HTTP and import nothing of the server."""
