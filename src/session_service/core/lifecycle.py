"""The process's own state in its life: draining once it was told to stop.

Set by the server on SIGTERM (`serving.DrainingServer`), read by readiness: a process-wide
fact about this process, not about any request, so a module-level flag is the right home.
"""

from __future__ import annotations

import threading

draining = threading.Event()
"""Set once the process has been told to stop: readiness fails, requests are still served."""
