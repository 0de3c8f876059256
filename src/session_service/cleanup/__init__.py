"""Cleanup: expired sessions, abandoned uploads, orphaned objects and old audit events."""
