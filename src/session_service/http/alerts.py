"""An admin alert from an unexpected error in a request (SPEC §7.2).

The alert names the error by its type and the innermost frame of application code (the
service's package, or anything outside the installed libraries), so one bug is one
distinct error however many requests hit it. Its message is left out:
exception messages can quote personal data; the request id finds the full traceback.
"""

from __future__ import annotations

import sysconfig
import traceback
from datetime import datetime
from pathlib import Path

from starlette.types import Scope

from session_service.http.deps import authenticated_session
from session_service.notify.alert import Alert
from session_service.observability.metrics import route_template

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
LIBRARY_ROOTS = tuple(
    {Path(sysconfig.get_paths()[name]).resolve() for name in ("stdlib", "purelib", "platlib")}
)


def request_alert(
    scope: Scope, exc: BaseException, *, now: datetime, templates: dict[int, str]
) -> Alert:
    """The alert for `exc`, raised while answering the request in `scope`."""
    template = route_template(scope, templates)
    where = _origin(exc)
    name = type(exc).__name__
    return Alert(
        key=f"{type(exc).__module__}.{type(exc).__qualname__}@{where}",
        summary=f"{name} at {where} on {scope['method']} {template}",
        occurred_at=now,
        source="request",
        request_id=scope.get("state", {}).get("request_id"),
        session_id=_session_id(scope),
        details={"method": scope["method"], "route": template, "status": 500},
    )


def _origin(exc: BaseException) -> str:
    """`module/file.py:line (function)` of the innermost frame of application code."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [frame for frame in frames if _is_application(Path(frame.filename))]
    if not (ours or frames):
        return "unknown"
    frame = (ours or frames)[-1]
    path = Path(frame.filename)
    shown = (
        path.relative_to(PACKAGE_ROOT.parent) if path.is_relative_to(PACKAGE_ROOT) else path.name
    )
    return f"{shown}:{frame.lineno} ({frame.name})"


def _is_application(path: Path) -> bool:
    if path.is_relative_to(PACKAGE_ROOT):
        return True
    return not any(path.is_relative_to(root) for root in LIBRARY_ROOTS)


def _session_id(scope: Scope) -> str | None:
    """The session the request was for: the holder's, once proven, or a service route's path."""
    holder = authenticated_session(scope)
    if holder is not None:
        return str(holder)
    path_id = scope.get("path_params", {}).get("session_id")
    return str(path_id) if path_id is not None else None
