"""The process's own state in its life: draining once it was told to stop, then stopping.

Set by the server (`serving.DrainingServer`): `draining` on SIGTERM, read by readiness;
`stop()` once the server stops accepting and waits for the answers in flight, which answers
that never end by themselves (live streams) hear through `on_stop`. Process-wide facts
about this process, not about any request, so module-level state is the right home.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

draining = threading.Event()
"""Set once the process has been told to stop: readiness fails, requests are still served."""

stopping = threading.Event()
"""Set once the server has stopped accepting and waits for the answers in flight to end."""

_on_stop: list[Callable[[], None]] = []


def on_stop(callback: Callable[[], None]) -> Callable[[], None]:
    """Call `callback` (in the event loop's thread) when the server stops; returns the
    function that forgets it again. Registered after the stop, it is called at once."""
    if stopping.is_set():
        callback()
        return lambda: None
    _on_stop.append(callback)

    def forget() -> None:
        if callback in _on_stop:
            _on_stop.remove(callback)

    return forget


def stop() -> None:
    """The server stops accepting: tell every registered callback, once."""
    if stopping.is_set():
        return
    stopping.set()
    for callback in list(_on_stop):
        callback()
