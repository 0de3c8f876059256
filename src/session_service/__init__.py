"""session-service: persistent anonymous sessions and session-bound uploads."""

__version__ = "0.1.0"
