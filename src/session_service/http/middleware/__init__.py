"""Pure ASGI middleware: body cap, CORS, client address."""
