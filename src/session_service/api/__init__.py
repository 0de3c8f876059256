"""The router assembly and the operations routes (health, metrics)."""
