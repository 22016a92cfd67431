"""Template context every page needs."""

from __future__ import annotations

from django.conf import settings


def websocket_origin(request) -> dict[str, str]:
    """``websocket_origin``: where the page's scripts open websockets ('' = the page's origin).

    base.html passes it to the scripts as ``data-websocket-origin`` on ``<body>`` (no inline
    script, so a Content-Security-Policy needs no exception for it).
    """
    return {"websocket_origin": settings.WEBSOCKET_ORIGIN}
