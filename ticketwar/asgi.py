"""The ASGI application: websockets (Channels), run by uvicorn as the Procfile's ``ws`` process.

Pages are served by the ``web`` process (granian, ``ticketwar.wsgi``); in production a proxy
routes ``/ws/`` here (deploy/nginx/), in development the pages open their websockets on this
process's own port (``settings.WEBSOCKET_ORIGIN``). The origin check accepts a page served from
any host in ``ALLOWED_HOSTS``, whatever its port: the page and this process differ by port in
development.

It still answers HTTP, through Django's *WSGI* handler on a fixed pool of ``WEB_THREADS``
threads (a2wsgi), so one uvicorn process can serve a whole test or a small deployment: Django's
ASGI handler runs each request's synchronous code in a thread created for that request, which
cost twice the CPU per request (docs/BENCHMARKS.md, "Web server").
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ticketwar.settings")
django_wsgi_app = get_wsgi_application()

from a2wsgi import WSGIMiddleware  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.conf import settings  # noqa: E402

from accounts.revocation import WebsocketAuthMiddleware  # noqa: E402 - needs Django set up first
from monitoring.websockets import ActiveStudentsMiddleware  # noqa: E402
from ticketwar.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": WSGIMiddleware(django_wsgi_app, workers=settings.WEB_THREADS),
        # Channels' session and auth stack, refusing ended sessions as the pages do; inside it,
        # the student behind an open socket is counted active (the user is known there).
        "websocket": AllowedHostsOriginValidator(
            SessionMiddlewareStack(WebsocketAuthMiddleware(ActiveStudentsMiddleware(URLRouter(websocket_urlpatterns))))
        ),
    }
)
