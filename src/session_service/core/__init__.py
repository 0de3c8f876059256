"""The core beneath every domain: settings, clock, ids, errors, the database."""
