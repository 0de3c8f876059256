"""`python -m session_service` runs the CLI."""

from session_service.cli import main

main()
