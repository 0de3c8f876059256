"""GDPR erasure and export, across the sessions, files and audit domains."""
